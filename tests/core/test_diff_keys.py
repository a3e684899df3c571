"""Key matching for diffs: plain keys, wrapper prefixes on either side, rename candidates."""

from __future__ import annotations

from inspector.core.diff import KeyMatch, TensorSpec, match_keys, rename_candidates


def _specs(*keys: str, shape: tuple[int, ...] = (2, 3), dtype: str = "float32") -> dict[str, TensorSpec]:
    return {k: TensorSpec(k, shape, dtype) for k in keys}


BASE = ("embed.weight", "layers.0.weight", "layers.0.bias", "head.weight")


def test_same_keys_match_as_they_are() -> None:
    match = match_keys(_specs(*BASE), _specs(*BASE))
    assert match.common == [(k, k) for k in BASE]
    assert (match.only_a, match.only_b, match.prefix_a, match.prefix_b) == ([], [], "", "")
    assert match.prefix_note is None


def test_data_parallel_prefix_on_either_side() -> None:
    wrapped = _specs(*(f"module.{k}" for k in BASE))
    match = match_keys(wrapped, _specs(*BASE))
    assert match.prefix_a == "module." and match.prefix_b == ""
    assert match.common == [(f"module.{k}", k) for k in BASE]
    assert match.only_a == match.only_b == []
    assert match.prefix_note is not None and "module." in match.prefix_note
    back = match_keys(_specs(*BASE), wrapped)
    assert (back.prefix_a, back.prefix_b) == ("", "module.")


def test_compile_and_lightning_prefixes() -> None:
    compiled = _specs(*(f"_orig_mod.{k}" for k in BASE))
    lightning = _specs(*(f"model.{k}" for k in BASE))
    match = match_keys(compiled, lightning)
    assert (match.prefix_a, match.prefix_b) == ("_orig_mod.", "model.")
    assert len(match.common) == len(BASE)


def test_any_shared_dotted_prefix_with_changes_besides() -> None:
    a = _specs(*(f"net.backbone.{k}" for k in BASE))
    b = _specs(*BASE[:-1], "extra.weight")
    match = match_keys(a, b)
    assert match.prefix_a == "net.backbone."
    assert match.only_a == ["net.backbone.head.weight"]
    assert match.only_b == ["extra.weight"]


def test_no_prefix_when_it_does_not_help() -> None:
    a = _specs("model.a", "model.b")
    b = _specs("x", "y")
    match = match_keys(a, b)
    assert (match.prefix_a, match.prefix_b, match.common) == ("", "", [])


def test_rename_candidates_group_by_shape_and_dtype() -> None:
    a = {**_specs("old.w"), **_specs("old.b", shape=(3,)), **_specs("gone", dtype="int64")}
    b = {**_specs("new.w"), **_specs("new.b", shape=(3,)), **_specs("new.e", shape=(0, 3))}
    match = KeyMatch(only_a=list(a), only_b=list(b))
    groups = rename_candidates(match, a, b)
    assert sorted(groups) == [(["old.b"], ["new.b"]), (["old.w"], ["new.w"])]
