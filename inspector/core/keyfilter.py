"""Matching keys by substring, glob or regex: the tree's filter box and export's include/exclude."""

from __future__ import annotations

import enum
import fnmatch
import re

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

    def matches(self, key: str) -> bool:
        if not self.pattern:
            return True
        if self.mode is MatchMode.SUBSTRING:
            return self._needle in key.lower()
        if self.mode is MatchMode.GLOB:
            return self._regex.match(key) is not None
        return self._regex.search(key) is not None


def visible_nodes(root: Node, matcher: KeyMatcher) -> set[int]:
    """``id()`` of every node a filter keeps: nodes whose key matches, everything below them,
    and their ancestors (so parents of matches stay visible). One pass, no recursion.
    """
    keep: set[int] = set()
    hits: list[Node] = []
    stack: list[tuple[Node, bool]] = [(child, False) for child in root.children]
    matches = matcher.matches
    while stack:
        node, inherited = stack.pop()
        hit = inherited or matches(node.key)
        if hit:
            keep.add(id(node))
            if not inherited:
                hits.append(node)
        for child in node.children:
            stack.append((child, hit))
    for node in hits:
        up = node.parent
        while up is not None and id(up) not in keep:
            keep.add(id(up))
            up = up.parent
    return keep
