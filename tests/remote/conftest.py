"""Loopback servers for the remote tests, started and stopped by the tests themselves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.remote.servers import RangeServer, range_server


@pytest.fixture
def http() -> Iterator[RangeServer]:
    with range_server() as server:
        yield server
