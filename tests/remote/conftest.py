"""Loopback servers for the remote tests, started and stopped by the tests themselves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inspector.remote.download_cache import CACHE_VARIABLE
from tests.remote.servers import RangeServer, range_server


@pytest.fixture
def http() -> Iterator[RangeServer]:
    with range_server() as server:
        yield server


@pytest.fixture
def hub(http: RangeServer, monkeypatch: pytest.MonkeyPatch) -> RangeServer:
    """The Hub: ``HF_ENDPOINT`` pointed at the loopback server, which serves its ``resolve/`` layout;
    ``HF_TOKEN`` set (files added with ``authorization`` demand it)."""
    monkeypatch.setenv("HF_ENDPOINT", http.base)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token")
    return http


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An S3-protocol server (moto) on 127.0.0.1 with one bucket, ``ckpt``; s3fs finds it through
    ``AWS_ENDPOINT_URL``, as any S3-compatible store is given."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", endpoint)):  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="ckpt")
    try:
        yield client
    finally:
        server.stop()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder downloaded copies go to, in the test's own temporary folder."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_VARIABLE, str(folder))
    return folder
