"""A tab's document without Qt: its states, the safety gate before torch, stale answers dropped,
and what each failure offers the user."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch

from inspector.core.load_options import LoadOptions
from inspector.core.model import CheckpointIndex, GlobalClass
from inspector.core.peek import peek
from inspector.engine.protocol import ErrorKind, Failure, LoadReply, LoadRequest
from inspector.gui.checkpoint_document import (
    Action,
    AllowQuestion,
    CheckpointDocument,
    DocumentState,
    TrustQuestion,
)
from tests import checkpoints, hostile, hostile_globals

SYSTEM = f"{os.system.__module__}.system"


class FakeJob:
    """A load the fake engine was asked for; ``discarded`` once the document moved on."""

    def __init__(self, request: LoadRequest) -> None:
        self.request = request
        self.discarded = False

    def discard(self) -> None:
        self.discarded = True


class FakeEngine:
    """Records every load request; answers only when a test says so."""

    def __init__(self) -> None:
        self.jobs: list[FakeJob] = []

    def submit(self, request: LoadRequest) -> FakeJob:
        job = FakeJob(request)
        self.jobs.append(job)
        return job

    @property
    def requests(self) -> list[LoadRequest]:
        return [job.request for job in self.jobs]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _document(
    path: Path, engine: FakeEngine | None, clock: Clock | None = None, peeks: list[int] | None = None
) -> CheckpointDocument:
    """A document of ``path``; the tickets of the static reads it starts go to ``peeks``."""
    started = peeks if peeks is not None else []
    return CheckpointDocument(
        str(path),
        path.name,
        started.append,
        engine.submit if engine is not None else None,
        clock=clock or Clock(),
    )


def _opened(
    path: Path, engine: FakeEngine | None, options: LoadOptions | None = None, clock: Clock | None = None
) -> CheckpointDocument:
    """A document that read ``path`` with the static reader and went on as it says."""
    doc = _document(path, engine, clock)
    ticket = doc.open(options or LoadOptions())
    assert doc.state is DocumentState.PEEKING
    assert doc.peek_finished(ticket, peek(str(path)))
    return doc


def _reply() -> LoadReply:
    return LoadReply(devices={("weight",): "cpu"}, seconds=0.5)


def _dangerous(folder: Path) -> Path:
    return hostile_globals.payload_checkpoint(
        folder, "evil.pth", os.system.__module__, "system", hostile_globals.touch_command(folder)
    )


# -- the safety gate ----------------------------------------------------------------------------


def test_a_dangerous_file_never_reaches_the_load_request_until_the_user_trusts_it(tmp_path: Path) -> None:
    engine = FakeEngine()
    path = _dangerous(tmp_path)
    # The window's weights_only switch is off: it still does not let a dangerous file through.
    doc = _opened(path, engine, LoadOptions(weights_only=False))
    assert doc.state is DocumentState.REFUSED and doc.held_back
    assert doc.refusal is not None and doc.refusal.kind == "dangerous" and SYSTEM in doc.refusal.message
    assert doc.actions == (Action.TRUST,)
    doc.reload(LoadOptions(map_location="cpu", weights_only=False))
    assert doc.state is DocumentState.REFUSED

    # Allowing the name is not possible, and no answer but the trust warning's trusts the file.
    doc.ask_allow([SYSTEM])
    assert isinstance(doc.question, AllowQuestion) and not doc.question.can_allow
    assert doc.question.never_allowed == (SYSTEM,)
    doc.allow()
    doc.trust("pickle")
    assert not doc.trusted and engine.requests == []

    # Cancelling the warning changes nothing; accepting it is the one way to torch.
    doc.ask_trust()
    assert isinstance(doc.question, TrustQuestion)
    assert doc.question.will_run == ((SYSTEM, GlobalClass.DANGEROUS),)
    doc.dismiss()
    assert doc.question is None and engine.requests == []
    doc.ask_trust()
    doc.trust("pickle")
    [request] = engine.requests
    assert request.options.weights_only is False and request.options.pickle_module == "pickle"
    assert doc.state is DocumentState.LOADING and doc.trusted
    assert not hostile_globals.marker(tmp_path).exists()


def test_a_file_another_reader_reads_differently_is_not_handed_to_torch(tmp_path: Path) -> None:
    state = hostile.torch_zip_bytes({"w": torch.ones(2)})
    data_pkl = next(body for name, body in hostile.zip_entries(state) if name.endswith(b"/data.pkl"))
    path = tmp_path / "two_folders.pt"
    path.write_bytes(hostile.zip_two_folders(state, data_pkl))  # both pickles harmless, but two of them
    engine = FakeEngine()
    doc = _opened(path, engine)
    assert doc.verdict is not None and doc.verdict.differentials and not doc.verdict.dangerous
    assert doc.state is DocumentState.REFUSED
    assert doc.refusal is not None and "may not be what torch would read" in doc.refusal.message
    assert doc.actions == (Action.TRUST,)
    assert engine.requests == []


def test_a_torchscript_archive_is_loaded_only_when_trusted(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 3)), str(path))
    engine = FakeEngine()
    doc = _opened(path, engine)
    assert doc.state is DocumentState.REFUSED and doc.refusal is not None
    assert doc.refusal.kind == ErrorKind.TORCHSCRIPT
    assert doc.actions == (Action.TRUST,) and engine.requests == []
    doc.ask_trust()
    assert isinstance(doc.question, TrustQuestion) and doc.question.holds_code
    doc.trust("pickle")
    assert [r.options.weights_only for r in engine.requests] == [False]


def test_a_safe_file_is_loaded_weights_only_with_the_window_options(tmp_path: Path) -> None:
    engine = FakeEngine()
    path = checkpoints.build_state_dict(tmp_path).path
    doc = _opened(path, engine, LoadOptions(map_location="meta"))
    [request] = engine.requests
    assert request == LoadRequest(str(path), LoadOptions(map_location="meta"))
    assert doc.state is DocumentState.LOADING and doc.is_loading


def test_without_an_engine_the_tree_is_shown_and_nothing_is_asked(tmp_path: Path) -> None:
    doc = _opened(checkpoints.build_state_dict(tmp_path).path, None)
    assert doc.state is DocumentState.SHOWN and doc.index is not None and doc.actions == ()


# -- allowing what weights-only loading refused -------------------------------------------------


def test_a_weights_only_refusal_asks_to_allow_exactly_those_globals_for_this_document(tmp_path: Path) -> None:
    engine = FakeEngine()
    path = checkpoints.build_namespace(tmp_path).path
    doc = _opened(path, engine)
    refused = Failure(1, ErrorKind.WEIGHTS_ONLY, "", extra={"globals": ["argparse.Namespace"]})
    assert doc.load_failed(engine.jobs[0], refused)
    assert doc.state is DocumentState.FAILED and doc.actions == (Action.ALLOW_OR_TRUST,)
    question = doc.question
    assert isinstance(question, AllowQuestion) and question.can_allow
    assert question.needed == (("argparse.Namespace", GlobalClass.UNKNOWN),)
    doc.allow()
    assert engine.requests[-1].options.allowed_globals == ("argparse.Namespace",)
    assert engine.requests[-1].options.weights_only is True
    doc.reload(LoadOptions(map_location="meta"))  # another map location keeps the answer
    assert engine.requests[-1].options.allowed_globals == ("argparse.Namespace",)

    # A new document of the same file starts from nothing.
    again = _opened(path, engine)
    assert engine.requests[-1].options.allowed_globals == ()
    assert again.question is None


def test_trusting_from_the_allow_question_names_what_the_engine_reported(tmp_path: Path) -> None:
    engine = FakeEngine()
    doc = _opened(checkpoints.build_state_dict(tmp_path).path, engine)
    names = ["argparse.Namespace", SYSTEM]  # as if the static read had missed them
    doc.load_failed(engine.jobs[0], Failure(1, ErrorKind.WEIGHTS_ONLY, "", extra={"globals": names}))
    assert isinstance(doc.question, AllowQuestion) and not doc.question.can_allow
    doc.allow()
    assert len(engine.requests) == 1
    doc.ask_trust()
    assert isinstance(doc.question, TrustQuestion)
    assert [name for name, _ in doc.question.will_run] == [SYSTEM, "argparse.Namespace"]  # dangerous first
    doc.trust("dill")
    options = engine.requests[-1].options
    assert (options.weights_only, options.pickle_module, options.allowed_globals) == (False, "dill", ())


# -- stale answers ------------------------------------------------------------------------------


def test_a_static_read_answered_after_a_new_open_a_cancel_or_a_close_is_dropped(tmp_path: Path) -> None:
    path = checkpoints.build_state_dict(tmp_path).path
    index = peek(str(path))
    changes: list[DocumentState] = []
    peeks: list[int] = []
    engine = FakeEngine()
    doc = CheckpointDocument(
        str(path), path.name, peeks.append, engine.submit, on_change=lambda: changes.append(doc.state)
    )
    first = doc.open(LoadOptions())
    second = doc.open(LoadOptions())
    assert peeks == [first, second]  # each open starts a static read, with its own ticket
    assert not doc.peek_finished(first, index) and not doc.peek_failed(first, OSError("late"))
    assert doc.state is DocumentState.PEEKING and doc.index is None
    doc.cancel()
    assert doc.state is DocumentState.OPEN_CANCELLED and doc.actions == (Action.OPEN_AGAIN,)
    assert not doc.peek_finished(second, index) and doc.index is None
    third = doc.open(LoadOptions())
    doc.close()
    changes.clear()
    assert not doc.peek_finished(third, index)
    assert doc.state is DocumentState.CLOSED and doc.index is None and engine.requests == []
    assert changes == []  # a closed document tells no one anything


def test_a_load_answered_after_a_reload_a_cancel_or_a_close_is_dropped(tmp_path: Path) -> None:
    engine = FakeEngine()
    doc = _opened(checkpoints.build_state_dict(tmp_path).path, engine)
    first = engine.jobs[0]
    doc.reload(LoadOptions(map_location="meta"))
    second = engine.jobs[1]
    assert first.discarded and not second.discarded
    assert not doc.load_finished(first, _reply())
    assert not doc.load_failed(first, Failure(1, ErrorKind.CRASHED, "late"))
    assert doc.state is DocumentState.LOADING and doc.loaded is None and doc.failure is None

    doc.cancel()
    assert second.discarded and doc.state is DocumentState.CANCELLED
    assert doc.actions == (Action.LOAD_AGAIN,)
    assert not doc.load_finished(second, _reply()) and doc.state is DocumentState.CANCELLED

    doc.reload(doc.options)
    third = engine.jobs[2]
    doc.close()
    assert third.discarded
    assert not doc.load_finished(third, _reply()) and not doc.load_cancelled(third)
    assert doc.state is DocumentState.CLOSED and doc.loaded is None
    doc.reload(LoadOptions())
    assert len(engine.requests) == 3


def test_a_load_answer_fills_in_how_long_the_user_waited_and_settles_the_question(tmp_path: Path) -> None:
    engine = FakeEngine()
    clock = Clock()
    doc = _opened(checkpoints.build_namespace(tmp_path).path, engine, clock=clock)
    doc.ask_allow(["argparse.Namespace"])
    clock.now += 2.5
    assert doc.load_finished(engine.jobs[0], _reply())
    assert doc.state is DocumentState.LOADED and doc.loaded == _reply()
    assert doc.waited == pytest.approx(2.5)
    assert doc.question is None and not doc.is_loading


# -- what each failure offers --------------------------------------------------------------------

#: Every kind the engine may report for a load, and what the user is offered (nothing is trusted).
EXPECTED_ACTIONS: dict[ErrorKind, tuple[Action, ...]] = {
    ErrorKind.CUDA_UNAVAILABLE: (Action.LOAD_ON_SUGGESTED,),
    ErrorKind.DEVICE_UNAVAILABLE: (Action.LOAD_ON_SUGGESTED,),
    ErrorKind.WEIGHTS_ONLY: (Action.ALLOW_OR_TRUST,),
    ErrorKind.NOT_FOUND: (Action.LOAD_AGAIN,),
    ErrorKind.UNREADABLE: (),
    ErrorKind.NOT_A_CHECKPOINT: (),
    ErrorKind.CORRUPT: (),
    ErrorKind.TORCHSCRIPT: (Action.TRUST,),
    ErrorKind.REFUSED_GLOBAL: (Action.TRUST,),
    ErrorKind.MISSING_GLOBAL: (),
    ErrorKind.BAD_OPTIONS: (),
    ErrorKind.DANGEROUS: (Action.TRUST,),
    ErrorKind.UNSAFE: (),
    ErrorKind.REFUSED: (),
    ErrorKind.DISK_FULL: (),
    ErrorKind.VERIFY_FAILED: (),
    ErrorKind.FAILED: (),
    ErrorKind.CANCELLED: (Action.LOAD_AGAIN,),
    ErrorKind.ENGINE_UNAVAILABLE: (),
    ErrorKind.CRASHED: (Action.LOAD_AGAIN,),
    ErrorKind.BAD_REQUEST: (),
    ErrorKind.OTHER: (Action.LOAD_AGAIN,),
}


def test_every_error_kind_has_a_decided_offer() -> None:
    assert set(EXPECTED_ACTIONS) == set(ErrorKind)


@pytest.fixture(scope="module")
def safe_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CheckpointIndex]:
    path = checkpoints.build_state_dict(tmp_path_factory.mktemp("safe")).path
    return path, peek(str(path))


def _failed_with(
    safe_index: tuple[Path, CheckpointIndex], failure: Failure, trusted: bool = False
) -> CheckpointDocument:
    path, index = safe_index
    engine = FakeEngine()
    doc = _document(path, engine)
    doc.peek_finished(doc.open(LoadOptions()), index)
    if trusted:
        doc.ask_trust()
        doc.trust("pickle")
    assert doc.load_failed(engine.jobs[-1], failure)
    return doc


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_each_failure_kind_offers_its_actions(
    safe_index: tuple[Path, CheckpointIndex], kind: ErrorKind
) -> None:
    extra = {"globals": ["argparse.Namespace"], "suggest": "cpu"}
    doc = _failed_with(safe_index, Failure(1, kind, "", extra=extra))
    assert doc.state is DocumentState.FAILED
    assert doc.actions == EXPECTED_ACTIONS[kind]


@pytest.mark.parametrize(
    ("kind", "extra", "trusted", "expected"),
    [
        (ErrorKind.CUDA_UNAVAILABLE, {}, False, ()),  # no device to suggest
        (ErrorKind.WEIGHTS_ONLY, {}, False, (Action.TRUST,)),  # no names to allow
        (ErrorKind.REFUSED_GLOBAL, {}, True, ()),  # trust was given already
        (ErrorKind.WEIGHTS_ONLY, {}, True, ()),
        (ErrorKind.CRASHED, {}, True, (Action.LOAD_AGAIN,)),
    ],
)
def test_an_action_that_cannot_help_is_not_offered(
    safe_index: tuple[Path, CheckpointIndex],
    kind: ErrorKind,
    extra: dict[str, object],
    trusted: bool,
    expected: tuple[Action, ...],
) -> None:
    doc = _failed_with(safe_index, Failure(1, kind, "", extra=extra), trusted=trusted)
    assert doc.actions == expected


def test_a_failed_static_read_offers_to_read_again(tmp_path: Path) -> None:
    engine = FakeEngine()
    peeks: list[int] = []
    doc = _document(tmp_path / "gone.pth", engine, peeks=peeks)
    ticket = doc.open(LoadOptions())
    error = FileNotFoundError("gone.pth")
    assert doc.peek_failed(ticket, error)
    assert doc.state is DocumentState.UNREADABLE and doc.read_error is error
    assert doc.actions == (Action.OPEN_AGAIN,) and engine.requests == []
    doc.reload(LoadOptions())  # with no tree, a reload reads again
    assert doc.state is DocumentState.PEEKING and peeks == [ticket, ticket + 1]
