"""Matching keys by substring, glob or regex: the tree's filter box and export's include/exclude."""

from __future__ import annotations

import enum
import fnmatch
import operator
import re
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate, compress, repeat

from .collector import collector_paused
from .model import Node


class MatchMode(enum.Enum):
    SUBSTRING = "substring"
    GLOB = "glob"
    REGEX = "regex"


class KeyMatcher:
    """A compiled filter. Substring matching ignores case; glob and regex are as typed.

    Raises ValueError with a sentence for an invalid regex.
    """

    def __init__(self, pattern: str, mode: MatchMode = MatchMode.SUBSTRING) -> None:
        self.pattern = pattern
        self.mode = mode
        if mode is MatchMode.SUBSTRING:
            self._needle = pattern.lower()
        elif mode is MatchMode.GLOB:
            glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
            self._regex = re.compile(fnmatch.translate(glob))
        else:
            try:
                self._regex = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"“{pattern}” is not a valid regular expression: {exc}.") from exc

    def key_test(self) -> Callable[[str], object]:
        """For glob and regex: the compiled pattern's test of one key (truthy where it matches)."""
        return self._regex.match if self.mode is MatchMode.GLOB else self._regex.search

    def matches(self, key: str) -> bool:
        if not self.pattern:
            return True
        if self.mode is MatchMode.SUBSTRING:
            return self._needle in key.lower()
        if self.mode is MatchMode.GLOB:
            return self._regex.match(key) is not None
        return self._regex.search(key) is not None


#: A substring filter finds its matches by searching all keys as one text; past this many matches
#: outside the subtrees already kept, one C-speed loop over the remaining keys is faster.
_MAX_SEARCHED_HITS = 2000
_SEPARATOR = "\x00"


_KEY = operator.attrgetter("key")
_CHILDREN = operator.attrgetter("children")


def _preorder(root: Node) -> tuple[list[Node], list[int], list[int]]:
    """Every node below ``root`` in display order, each one's parent position (-1 at the top) and
    where its subtree ends (a subtree is a contiguous run in pre-order). The children of a row are
    taken in one step when none of them has children of its own: the work in Python is per row
    with children, not per tensor."""
    nodes: list[Node] = []
    parent_of: list[int] = []
    end: list[int] = []
    stack: list[tuple[int, Iterator[Node]]] = [(-1, iter(root.children))]
    while stack:
        parent, rest = stack[-1]
        node = next(rest, None)
        if node is None:
            stack.pop()
            if parent >= 0:
                end[parent] = len(nodes)
            continue
        me = len(nodes)
        nodes.append(node)
        parent_of.append(parent)
        end.append(me + 1)
        children = node.children
        if not children:
            continue
        if any(map(_CHILDREN, children)):
            stack.append((me, iter(children)))
            continue
        n = len(children)
        nodes.extend(children)
        parent_of.extend(repeat(me, n))
        end.extend(range(me + 2, me + 2 + n))
        end[me] = me + 1 + n
    return nodes, parent_of, end


class KeyIndex:
    """Every node of a tree in display order, prepared so that a filter runs in C-speed loops.

    Built once per tree; ``visible(matcher)`` then costs a few milliseconds at 100,000 keys. A
    substring searches the lower-cased keys joined into one text and skips the subtree of each
    match it finds (kept whole), so a filter that matches a group costs one search, not one test
    per key below it.
    """

    def __init__(self, root: Node) -> None:
        """The collector is paused meanwhile: each of its lists holds a reference per row, and a
        young pass over them would touch every row of the tree (a fifth of a second at 10^6
        tensors, on the first keystrokes)."""
        with collector_paused():
            self._build(root)

    def _build(self, root: Node) -> None:
        self.root = root
        nodes, parent_of, end = _preorder(root)
        self.nodes = nodes
        self.position = dict(zip(map(id, nodes), range(len(nodes)), strict=True))
        self._parent = parent_of
        self._end = end
        self._keys = list(map(_KEY, nodes))
        self._lower = list(map(str.lower, self._keys))
        self._text = _SEPARATOR.join(self._lower) + _SEPARATOR
        # Where each key begins in the text (and, last, where the text ends).
        self._starts = array("q", accumulate(map(operator.add, map(len, self._lower), repeat(1)), initial=0))

    def _searchable(self, matcher: KeyMatcher) -> str | None:
        """The lower-cased needle when the joined text can be searched for it (substring mode)."""
        if matcher.mode is not MatchMode.SUBSTRING or not matcher.pattern:
            return None
        needle = matcher.pattern.lower()
        return None if _SEPARATOR in needle else needle

    def _searched(self, needle: str, skip_subtrees: bool, limit: int) -> tuple[list[int], int]:
        """Positions of keys holding ``needle``, found by searching the joined text, in order; with
        ``skip_subtrees`` the keys below each one found are not looked at. Stops after ``limit``;
        returns the positions and where the search stopped (``len(nodes)`` when it finished)."""
        text, starts, end = self._text, self._starts, self._end
        find = text.find
        found: list[int] = []
        pos = 0
        while len(found) < limit:
            at = find(needle, pos)
            if at < 0:
                return found, len(self.nodes)
            i = bisect_right(starts, at) - 1
            found.append(i)
            nxt = end[i] if skip_subtrees else i + 1
            pos = starts[nxt]
        return found, (end[found[-1]] if skip_subtrees else found[-1] + 1) if found else 0

    def hits(self, matcher: KeyMatcher) -> list[int]:
        """Positions of the nodes whose own key matches (the loop runs in C: 10^6 keys in ~0.1 s)."""
        every = range(len(self._keys))
        if not matcher.pattern:
            return list(every)
        if matcher.mode is MatchMode.SUBSTRING:
            return list(compress(every, map(operator.contains, self._lower, repeat(matcher.pattern.lower()))))
        return list(compress(every, map(matcher.key_test(), self._keys)))

    def first_hits(self, matcher: KeyMatcher, limit: int) -> list[int]:
        """The first ``limit`` positions of ``hits(matcher)``, found without testing every key."""
        needle = self._searchable(matcher)
        if needle is None:
            return self.hits(matcher)[:limit]
        return self._searched(needle, False, limit)[0]

    def _top_hits(self, matcher: KeyMatcher) -> list[int]:
        """Sorted positions that include every match not below another match (and maybe some below)."""
        needle = self._searchable(matcher)
        if needle is None:
            return self.hits(matcher)
        found, stop = self._searched(needle, True, _MAX_SEARCHED_HITS)
        if stop < len(self.nodes):  # many separate matches: test the remaining keys in one loop
            rest = range(stop, len(self.nodes))
            found.extend(compress(rest, map(operator.contains, self._lower[stop:], repeat(needle))))
        return found

    def kept_children(self, keep: bytearray, parent: Node) -> bytes:
        """The bytes of ``keep`` (from ``visible``) for ``parent``'s children, in their order: what
        a view asks row by row, answered for all of them at once."""
        position = self.position
        return bytes(map(keep.__getitem__, map(position.__getitem__, map(id, parent.children))))

    def node_at(self, node_id: int) -> Node:
        """The node whose ``id`` is ``node_id``; the root for 0 (how a view names the top level)."""
        return self.nodes[self.position[node_id]] if node_id else self.root

    def visible(self, matcher: KeyMatcher, also: Iterable[int] = ()) -> bytearray:
        """One byte per node, 1 where the filter keeps it: matches, their subtrees, their ancestors.

        ``also`` adds positions that match by something other than their key (a label shown beside it).
        """
        keep = bytearray(len(self.nodes))
        hits = self._top_hits(matcher)
        extra = set(also)
        if extra:
            hits = sorted(extra.union(hits))
        k, count = 0, len(hits)
        while k < count:
            i = hits[k]
            e = self._end[i]
            keep[i:e] = b"\x01" * (e - i)
            p = self._parent[i]
            while p >= 0 and not keep[p]:
                keep[p] = 1
                p = self._parent[p]
            k = bisect_left(hits, e, k + 1)  # the hits inside this subtree are kept already
        return keep
