"""A remote tab's document: torch waits for the local copy, and the copy is judged on its own."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime
from pathlib import Path

from inspector.core.load_options import LoadOptions
from inspector.core.peek import peek
from inspector.engine.protocol import LoadRequest
from inspector.gui.checkpoint_document import Action, CheckpointDocument, DocumentState
from inspector.remote.download_cache import CachedCopy
from tests import hostile_globals


class Jobs:
    def __init__(self) -> None:
        self.requests: list[LoadRequest] = []

    def submit(self, request: LoadRequest) -> Jobs:
        self.requests.append(request)
        return self

    def discard(self) -> None:
        pass


def _remote(url: str, jobs: Jobs, peeks: list[int], downloads: list[int]) -> CheckpointDocument:
    return CheckpointDocument(
        url, "m.pth", peeks.append, jobs.submit, remote=True, start_download=downloads.append
    )


def _payload(folder: Path, name: str, module: str, function: str) -> Path:
    folder.mkdir(exist_ok=True)
    return hostile_globals.payload_checkpoint(folder, name, module, function, "true")


def test_trust_given_on_the_remote_tree_does_not_cover_a_copy_that_imports_more(tmp_path: Path) -> None:
    jobs, peeks, downloads = Jobs(), [], []
    shown = _payload(tmp_path / "a", "m.pth", os.system.__module__, "system")
    other = _payload(tmp_path / "b", "m.pth", subprocess.__name__, "check_call")
    doc = _remote("https://example.org/m.pth", jobs, peeks, downloads)
    doc.open(LoadOptions())
    doc.peek_finished(peeks[-1], peek(str(shown)))
    assert doc.state is DocumentState.REFUSED
    doc.ask_trust()
    doc.trust()
    assert doc.state is DocumentState.SHOWN and doc.actions == (Action.DOWNLOAD,) and jobs.requests == []
    doc.download()
    doc.download_finished(downloads[-1], CachedCopy(other, datetime.now(), reused=False))
    assert doc.path == str(other)
    doc.peek_finished(peeks[-1], peek(str(other)))
    assert not doc.trusted and doc.state is DocumentState.REFUSED and jobs.requests == []


def test_the_copy_of_the_file_the_user_trusted_is_loaded_trusted(tmp_path: Path) -> None:
    jobs, peeks, downloads = Jobs(), [], []
    shown = _payload(tmp_path / "a", "m.pth", os.system.__module__, "system")
    doc = _remote("https://example.org/m.pth", jobs, peeks, downloads)
    doc.open(LoadOptions())
    doc.peek_finished(peeks[-1], peek(str(shown)))
    doc.ask_trust()
    doc.trust()
    doc.download()
    doc.download_finished(downloads[-1], CachedCopy(shown, datetime.now(), reused=True))
    doc.peek_finished(peeks[-1], peek(str(shown)))
    assert doc.state is DocumentState.LOADING and doc.trusted
    assert [r.path for r in jobs.requests] == [str(shown)] and not jobs.requests[0].options.weights_only
