"""Map locations as a user types them, as settings store them and as JSON carries them."""

from __future__ import annotations

import pytest

from inspector.core.load_options import (
    AS_SAVED_ELSE_CPU,
    LoadOptions,
    format_map_location,
    is_device_name,
    parse_map_location,
)


@pytest.mark.parametrize(
    "text",
    ["As saved where possible, else cpu", "as saved where possible, else CPU", AS_SAVED_ELSE_CPU],
)
def test_as_saved_else_cpu_parses_from_its_label_and_its_json_name(text: str) -> None:
    assert parse_map_location(text) == AS_SAVED_ELSE_CPU


def test_as_saved_else_cpu_round_trips_through_text_and_json() -> None:
    assert parse_map_location(format_map_location(AS_SAVED_ELSE_CPU)) == AS_SAVED_ELSE_CPU
    options = LoadOptions(map_location=AS_SAVED_ELSE_CPU)
    assert options.to_json()["map_location"] == AS_SAVED_ELSE_CPU
    assert LoadOptions.from_json(options.to_json()) == options
    assert not is_device_name(AS_SAVED_ELSE_CPU)  # never mistaken for a device


def test_as_saved_else_cpu_expects_the_saved_device_until_the_engine_says_what_moved() -> None:
    assert LoadOptions(map_location=AS_SAVED_ELSE_CPU).target_device("cuda:0") == "cuda:0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", None), ("As saved", None), ("cpu", "cpu"), ("cuda:1->cuda:0", {"cuda:1": "cuda:0"})],
)
def test_the_other_map_locations_parse_as_before(text: str, expected: object) -> None:
    assert parse_map_location(text) == expected


def test_a_mistyped_location_says_arrows_work() -> None:
    with pytest.raises(ValueError, match="->"):
        parse_map_location("gpu0")
