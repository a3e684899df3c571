"""The filter box's semantics, computed by core: matches, everything below them, their ancestors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.core import keyfilter
from inspector.core.keyfilter import KeyIndex, KeyMatcher, MatchMode
from inspector.core.model import Node, NodeKind
from inspector.core.tree import TreeBuilder
from inspector.core.unpickler import PDict
from tests.call_counts import python_calls


def _tree(keys: list[str]) -> Node:
    return TreeBuilder().build(PDict(items=[(k, 1) for k in keys]))


def _brute_force(root: Node, matcher: KeyMatcher) -> set[str]:
    kept: set[str] = set()
    for node in root.walk():
        chain = [node]
        up = node.parent
        while up is not None and up.parent is not None:
            chain.append(up)
            up = up.parent
        if any(matcher.matches(n.key) for n in chain):  # the node or an ancestor matches
            kept.add(node.key)
        if matcher.matches(node.key):
            kept.update(n.key for n in chain)
    return kept


def _kept(root: Node, matcher: KeyMatcher) -> set[str]:
    index = KeyIndex(root)
    visible = index.visible(matcher)
    return {n.key for n, keep in zip(index.nodes, visible, strict=True) if keep}


def test_parents_of_matches_stay_and_subtrees_of_matches_show() -> None:
    root = _tree(["model.layers.0.attn.q_proj.weight", "model.layers.1.mlp.fc.weight", "epoch"])
    kept = _kept(root, KeyMatcher("q_proj"))
    assert "model.layers.0.attn.q_proj.weight" in kept
    assert {"model", "model.layers", "model.layers.0", "model.layers.0.attn"} <= kept
    assert "model.layers.1" not in kept and "epoch" not in kept
    below = _kept(root, KeyMatcher("model.layers.1"))
    assert "model.layers.1.mlp.fc.weight" in below  # everything under a matching group


def test_substring_ignores_case_glob_and_regex_are_as_typed() -> None:
    root = _tree(["Encoder.Weight", "decoder.bias"])
    assert "Encoder.Weight" in _kept(root, KeyMatcher("weight"))
    assert _kept(root, KeyMatcher("*.bias", MatchMode.GLOB)) == {"decoder.bias"}
    assert _kept(root, KeyMatcher(r"^enc", MatchMode.REGEX)) == set()
    assert "Encoder.Weight" in _kept(root, KeyMatcher(r"^Enc", MatchMode.REGEX))


def test_invalid_regex_is_a_sentence() -> None:
    with pytest.raises(ValueError, match="not a valid regular expression"):
        KeyMatcher("layers.(", MatchMode.REGEX)


_part = st.sampled_from(["a", "b", "layers", "0", "1", "weight", "bias"])


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(st.lists(_part, min_size=1, max_size=6).map(".".join), max_size=30),
    needle=st.sampled_from(["a", "layers.0", "weight", "b.1", "x", "0.w"]),
)
def test_key_index_agrees_with_brute_force(keys: list[str], needle: str) -> None:
    root = _tree(keys)
    matcher = KeyMatcher(needle)
    assert _kept(root, matcher) == _brute_force(root, matcher)
    assert all(n.kind in (NodeKind.GROUP, NodeKind.VALUE, NodeKind.REF) for n in root.walk())


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(st.lists(_part, min_size=1, max_size=6).map(".".join), max_size=30),
    needle=st.sampled_from(["a", "layers.0", "weight", "b.1", "x", "0.w", "A"]),
    limit=st.integers(min_value=0, max_value=5),
    searched=st.sampled_from([0, 1, 2, 2000]),
)
def test_searching_the_joined_keys_keeps_and_finds_what_testing_each_key_does(
    keys: list[str], needle: str, limit: int, searched: int
) -> None:
    """However few matches the search of the joined text takes before it tests the remaining keys
    one by one, the rows kept and the first matches revealed are the same."""
    root = _tree(keys)
    matcher = KeyMatcher(needle)
    index = KeyIndex(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keyfilter, "_MAX_SEARCHED_HITS", searched)
        assert _kept(root, matcher) == _brute_force(root, matcher)
    assert index.first_hits(matcher, limit) == index.hits(matcher)[:limit]
    assert index.hits(matcher) == [i for i, n in enumerate(index.nodes) if matcher.matches(n.key)]


def test_a_key_holding_the_separator_or_changing_length_when_lowered_is_matched_as_it_is() -> None:
    root = _tree(["a\x00b.x", "İstanbul.weight", "c.weight"])  # "İ".lower() is two characters
    assert _kept(root, KeyMatcher("\x00b")) == {"a\x00b.x"}
    assert _kept(root, KeyMatcher("weight")) == {"İstanbul.weight", "c.weight"}
    assert _kept(root, KeyMatcher("c.w")) == {"c.weight"}


def test_the_key_index_of_a_large_tree_costs_python_work_per_group_not_per_tensor() -> None:
    """The filter is ready soon after a tree of 10^6 tensors is shown: the index takes the tensors
    of a group in one step (10,000 tensors under 100 groups here)."""
    root = _tree([f"blocks.{i // 100}.experts.{i % 100}.weight" for i in range(10_000)])
    rows = sum(1 for _ in root.walk())
    index, calls = python_calls(lambda: KeyIndex(root))
    assert len(index.nodes) == rows
    assert calls < rows // 10, f"{calls:,} Python calls for {rows:,} rows"


def test_the_key_index_is_not_left_to_the_young_collections() -> None:
    """Its lists hold a reference per row: a young pass over them would touch every row of the tree
    on the first keystrokes of the filter."""
    import gc

    index = KeyIndex(_tree([f"blocks.{i // 100}.experts.{i % 100}.weight" for i in range(2_000)]))
    young = {id(o) for o in gc.get_objects(0)} | {id(o) for o in gc.get_objects(1)}
    assert not {id(index.nodes), id(index.position), id(index._keys), id(index._lower)} & young
    assert gc.isenabled()
