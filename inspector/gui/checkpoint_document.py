"""One opened checkpoint, without Qt: what it is doing, what may reach torch, what a failure offers.

``CheckpointDocument`` is the state machine behind a tab. The static read (peek) and the load in
the engine are each answered by a result that is accepted only when it answers the latest request:
a peek carries a ticket, a load is known by its job, and a reload, a cancel or a close makes every
older answer stale. What is handed to torch is the safety policy's decision
(``inspector.core.safety.load_refusal``), asked with this document's own answers — the globals
the user allowed and whether the user trusted the file — which only the user's answer to a pending
question changes. ``CheckpointTab`` renders the document and forwards the user's actions.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from inspector.core.load_options import LoadOptions
from inspector.core.model import CheckpointIndex, GlobalClass
from inspector.core.safety import (
    FileVerdict,
    Refusal,
    global_class,
    load_refusal,
    refused_names,
    unique_names,
    verdict_of,
    what_would_run,
)
from inspector.engine.protocol import ErrorKind, Failure, LoadReply, LoadRequest

if TYPE_CHECKING:  # read on first download, so the window starts without the readers
    from inspector.remote.download_cache import CachedCopy


def _imports_no_more(copy: CheckpointIndex, shown: CheckpointIndex) -> bool:
    """Whether every global the copy's pickle imports was in the tree the user answered about."""
    return {g.qualname for g in copy.globals} <= {g.qualname for g in shown.globals}


class DocumentState(enum.Enum):
    """Where one opened checkpoint stands."""

    NEW = "new"  # nothing asked yet
    PEEKING = "peeking"  # the static read runs
    UNREADABLE = "unreadable"  # the static read failed: there is no tree
    OPEN_CANCELLED = "open-cancelled"  # the user stopped the static read: there is no tree
    SHOWN = "shown"  # the tree is shown and torch is not asked (there is no engine)
    REFUSED = "refused"  # the safety policy holds the file back from torch
    LOADING = "loading"  # torch loads it in the engine
    LOADED = "loaded"  # "Loaded on" is known
    FAILED = "failed"  # torch, or the engine, could not load it
    CANCELLED = "cancelled"  # the user stopped the load
    DOWNLOADING = "downloading"  # a remote file's whole copy is being fetched for torch
    DOWNLOAD_FAILED = "download-failed"  # it could not be (the tree stays)
    DOWNLOAD_CANCELLED = "download-cancelled"  # the user stopped it; nothing was kept
    CLOSED = "closed"  # the tab is gone: every answer is dropped


class Action(enum.Enum):
    """What the user may do about the state the document is in."""

    OPEN_AGAIN = "open-again"  # run the static read again
    LOAD_AGAIN = "load-again"  # ask torch again with the same options
    LOAD_ON_SUGGESTED = "load-on-suggested"  # load onto the device the engine suggests (cpu)
    ALLOW_OR_TRUST = "allow-or-trust"  # the question that lists what weights-only loading refused
    TRUST = "trust"  # the warning before loading with weights_only=False
    DOWNLOAD = "download"  # fetch a remote file's whole copy into the cache, then load that copy


#: What a failed load (or a refusal of the same kind) offers, by the engine's error kind. A kind
#: not listed offers nothing: the file itself, or the window's options, must change first.
#: ``actions_for`` drops the actions that do not apply to one failure.
OFFERED_ACTIONS: Mapping[ErrorKind, tuple[Action, ...]] = {
    ErrorKind.CUDA_UNAVAILABLE: (Action.LOAD_ON_SUGGESTED,),
    ErrorKind.DEVICE_UNAVAILABLE: (Action.LOAD_ON_SUGGESTED,),
    ErrorKind.WEIGHTS_ONLY: (Action.ALLOW_OR_TRUST, Action.TRUST),
    ErrorKind.REFUSED_GLOBAL: (Action.TRUST,),
    ErrorKind.TORCHSCRIPT: (Action.TRUST,),
    ErrorKind.DANGEROUS: (Action.TRUST,),
    ErrorKind.NOT_FOUND: (Action.LOAD_AGAIN,),
    ErrorKind.CRASHED: (Action.LOAD_AGAIN,),
    ErrorKind.CANCELLED: (Action.LOAD_AGAIN,),
    ErrorKind.OTHER: (Action.LOAD_AGAIN,),
}


def actions_for(
    kind: ErrorKind, trusted: bool, suggest: str | None = None, names: Sequence[str] = ()
) -> tuple[Action, ...]:
    """What a failure of ``kind`` offers: its kind's actions, less a device move the engine did
    not ``suggest``, an allowlist without ``names``, and trust once given (or asked by the allowlist)."""
    offered: list[Action] = []
    for action in OFFERED_ACTIONS.get(kind, ()):
        if action is Action.LOAD_ON_SUGGESTED and not suggest:
            continue
        if action is Action.ALLOW_OR_TRUST and not names:
            continue
        if action is Action.TRUST and (trusted or Action.ALLOW_OR_TRUST in offered):
            continue
        offered.append(action)
    return tuple(offered)


@dataclass(frozen=True)
class AllowQuestion:
    """Weights-only loading refused ``names``: allow exactly them for this tab, or trust the file."""

    needed: tuple[tuple[str, GlobalClass], ...]  # each name with the static read's verdict on it
    never_allowed: tuple[str, ...]  # the names no allowlist may hold

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.needed)

    @property
    def can_allow(self) -> bool:
        return bool(self.needed) and not self.never_allowed


@dataclass(frozen=True)
class TrustQuestion:
    """The warning before ``weights_only=False``: what the file's pickle will import and may call."""

    will_run: tuple[tuple[str, GlobalClass], ...]
    holds_code: bool  # TorchScript code, which trusting hands to torch.jit.load


Question = AllowQuestion | TrustQuestion


class LoadJob(Protocol):
    """A load running in the engine, as the document holds it."""

    def discard(self) -> None:
        """Stop it; its answer, if one still comes, is for no one."""


#: Starts the static read of the file; its answer comes back with the ticket it was given.
StartPeek = Callable[[int], None]
#: Starts a load in the engine and returns its job (the window's engine bridge, or a test's fake).
SubmitLoad = Callable[[LoadRequest], LoadJob]
#: Starts downloading a remote file's whole copy; its answer comes back with the ticket it was given.
StartDownload = Callable[[int], None]


class CheckpointDocument:
    """The state of one opened checkpoint and of this tab's answers about it (never remembered)."""

    def __init__(
        self,
        path: str,
        display_name: str,
        start_peek: StartPeek,
        submit_load: SubmitLoad | None,
        on_change: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        remote: bool = False,
        start_download: StartDownload | None = None,
    ) -> None:
        #: what the static read and torch read: the path, or for a URL its local copy once downloaded
        self.path = path
        self.display_name = display_name  # escaped: safe in any sentence
        self._start_peek = start_peek
        self._submit_load = submit_load  # None: there is no engine
        self._start_download = start_download  # None: it cannot be downloaded (local, or several files)
        self.remote = remote  # read where it lives, never handed to torch, until its copy is here
        self.download_error: Exception | None = None  # why the download failed (DOWNLOAD_FAILED)
        self.download_progress: tuple[int, int] = (0, 0)  # bytes written, bytes in all
        #: the static read's stage (``read_progress``), and its bytes done of its bytes where known
        self.read_progress: tuple[str, int, int] = ("", 0, 0)
        self.local_copy: CachedCopy | None = None  # the downloaded copy the file is loaded from
        self._download_ticket = 0
        self._on_change = on_change
        self._clock = clock
        self.state = DocumentState.NEW
        self.options = LoadOptions()  # the window's, as last given to ``open`` or ``reload``
        self.index: CheckpointIndex | None = None  # the static read, once it succeeded
        self.read_error: Exception | None = None  # why the static read failed (UNREADABLE)
        self.refusal: Refusal | None = None  # why the policy holds the file back (REFUSED)
        self.failure: Failure | None = None  # why the last load failed (FAILED)
        self.loaded: LoadReply | None = None  # the last load's answer (LOADED)
        self.waited = 0.0  # seconds the user waited for that answer
        self.question: Question | None = None  # pending until the user answers it
        self._peek_ticket = 0
        self._job: LoadJob | None = None
        self._asked_at: float | None = None  # when the user opened or reloaded
        self._load_asked_at = 0.0
        # This tab's own answers: never saved, never shared with another tab, and changed only by
        # the user's answer to a question (``allow``, ``trust``).
        self._trusted = False
        self._pickle_module: str | None = None
        self._allowed_globals: tuple[str, ...] = ()
        self._reported_globals: tuple[str, ...] = ()  # what weights-only loading refused, as the engine said

    # -- what the document says -------------------------------------------------------------

    @property
    def trusted(self) -> bool:
        """True once the user accepted the trust warning in this tab."""
        return self._trusted

    @property
    def allowed_globals(self) -> tuple[str, ...]:
        """The globals the user allowed for this tab, exactly as the question listed them."""
        return self._allowed_globals

    @property
    def closed(self) -> bool:
        return self.state is DocumentState.CLOSED

    @property
    def verdict(self) -> FileVerdict | None:
        """The scan's verdict, once the static read is there."""
        return verdict_of(self.index) if self.index is not None else None

    @property
    def load_options(self) -> LoadOptions:
        """What the engine is asked for: the window's options with this tab's allow/trust answers."""
        if self.trusted:
            return replace(
                self.options, weights_only=False, allowed_globals=(), pickle_module=self._pickle_module
            )
        return replace(self.options, allowed_globals=self.allowed_globals, pickle_module=None)

    def next_refusal(self) -> Refusal | None:
        """The safety policy's answer for the next load. Only this tab's "Trust" answer trusts the
        file: the window's weights_only switch never lets a dangerous file through."""
        if self.index is None:
            return None
        options = replace(self.load_options, weights_only=not self.trusted)
        return load_refusal(self.display_name, verdict_of(self.index), options)

    @property
    def held_back(self) -> bool:
        """True while the policy does not let torch see the file with this tab's answers."""
        return self.next_refusal() is not None

    @property
    def is_loading(self) -> bool:
        return self._job is not None

    @property
    def actions(self) -> tuple[Action, ...]:
        """What the user may do about the present state."""
        if self.state in (DocumentState.UNREADABLE, DocumentState.OPEN_CANCELLED):
            return (Action.OPEN_AGAIN,)
        if self.state is DocumentState.CANCELLED:
            return (Action.LOAD_AGAIN,)
        if self.can_download and self.state in (
            DocumentState.SHOWN, DocumentState.DOWNLOAD_FAILED, DocumentState.DOWNLOAD_CANCELLED
        ):  # fmt: skip
            return (Action.DOWNLOAD,)
        if self.state is DocumentState.FAILED and self.failure is not None:
            failure = self.failure
            return actions_for(failure.kind, self.trusted, failure.suggest, failure.globals)
        if self.state is DocumentState.REFUSED and self.refusal is not None:
            return actions_for(ErrorKind.of(self.refusal.kind), self.trusted)
        return ()

    @property
    def can_download(self) -> bool:
        """True for a remote file read where it lives, with an engine to load its copy."""
        return self.remote and self._start_download is not None and self._submit_load is not None

    def is_current(self, ticket: int) -> bool:
        """True while ``ticket`` names the latest static read of an open document."""
        return ticket == self._peek_ticket and not self.closed

    # -- opening and loading ----------------------------------------------------------------

    def open(self, options: LoadOptions) -> int:
        """Start over with the static read; returns the ticket its answer must carry."""
        if self.closed:
            return self._peek_ticket
        self.options = options
        self._asked_at = self._clock()
        self._discard_job()
        self._peek_ticket += 1
        self.read_error = self.failure = None
        self.read_progress = ("", 0, 0)
        self.state = DocumentState.PEEKING
        self._changed()
        self._start_peek(self._peek_ticket)
        return self._peek_ticket

    def read_moved(self, ticket: int, stage: str, done: int, total: int) -> None:
        """Where the static read named by ``ticket`` has come (a ``read_progress`` stage)."""
        if self.is_current(ticket) and self.state is DocumentState.PEEKING:
            self.read_progress = (stage, done, total)
            self._changed()

    def peek_finished(self, ticket: int, index: CheckpointIndex) -> bool:
        """The static read's tree; then the load (or the policy's refusal). False when stale."""
        if not self.is_current(ticket) or self.state is not DocumentState.PEEKING:
            return False
        if self.local_copy is not None and self.index is not None and not _imports_no_more(index, self.index):
            self._forget_answers()  # the copy imports what the user never saw: ask again
        self.index = index
        self._load()
        return True

    def peek_failed(self, ticket: int, error: Exception) -> bool:
        """The static read failed with ``error``. False when stale."""
        if not self.is_current(ticket) or self.state is not DocumentState.PEEKING:
            return False
        self.read_error = error
        self.state = DocumentState.UNREADABLE
        self._changed()
        return True

    def reload(self, options: LoadOptions) -> None:
        """Load again with new options; the tree stays, the load's answer is awaited."""
        if self.closed:
            return
        self.options = options
        self._asked_at = self._clock()
        if self.index is None:
            self.open(options)
            return
        self._load()

    def cancel(self) -> None:
        """Stop what runs now: a load is cancelled in the engine, a static read's answer dropped."""
        if self._job is not None:
            self._discard_job()
            self.state = DocumentState.CANCELLED
            self._changed()
        elif self.state is DocumentState.PEEKING:
            self._peek_ticket += 1
            self.state = DocumentState.OPEN_CANCELLED
            self._changed()
        elif self.state is DocumentState.DOWNLOADING:
            self._download_ticket += 1
            self.state = DocumentState.DOWNLOAD_CANCELLED
            self._changed()

    # -- downloading a remote file for torch ------------------------------------------------

    def download(self) -> int:
        """Start fetching the remote file's whole copy; returns the ticket its answer must carry."""
        if Action.DOWNLOAD not in self.actions or self._start_download is None:
            return self._download_ticket
        self._download_ticket += 1
        self.download_error = None
        size = self.index.remote_read[2] if self.index is not None and self.index.remote_read else 0
        self.download_progress = (0, size)
        self.state = DocumentState.DOWNLOADING
        self._changed()
        self._start_download(self._download_ticket)
        return self._download_ticket

    def is_current_download(self, ticket: int) -> bool:
        return ticket == self._download_ticket and self.state is DocumentState.DOWNLOADING

    def download_moved(self, ticket: int, done: int, total: int) -> None:
        """Bytes written so far of the download named by ``ticket``."""
        if self.is_current_download(ticket):
            self.download_progress = (done, total)
            self._changed()

    def download_finished(self, ticket: int, copy: CachedCopy) -> bool:
        """The whole copy is in the cache: read it statically and load it, as a local file is."""
        if not self.is_current_download(ticket):
            return False
        self.path = str(copy.path)
        self.local_copy = copy
        self.remote = False
        self.open(self.options)
        return True

    def download_failed(self, ticket: int, error: Exception) -> bool:
        """The download failed with ``error`` (nothing was kept); the tree stays."""
        if not self.is_current_download(ticket):
            return False
        self.download_error = error
        self.state = DocumentState.DOWNLOAD_FAILED
        self._changed()
        return True

    def close(self) -> None:
        """Drop every pending answer and question, and cancel the load; nothing is said afterwards."""
        self._peek_ticket += 1
        self._download_ticket += 1
        self._discard_job()
        self.question = None
        self.state = DocumentState.CLOSED

    def load_finished(self, job: LoadJob, reply: LoadReply) -> bool:
        """The engine loaded the file. False for an answer to an older load."""
        if not self._is_running(job):
            return False
        self._job = None
        self.loaded = reply
        self.waited = self._clock() - self._load_asked_at
        self.question = None  # whatever it asked about loaded
        self.state = DocumentState.LOADED
        self._changed()
        return True

    def load_failed(self, job: LoadJob, failure: Failure) -> bool:
        """The engine could not load the file; a weights-only refusal asks which globals to allow."""
        if not self._is_running(job):
            return False
        self._job = None
        self.failure = failure
        self.state = DocumentState.FAILED
        if failure.kind is ErrorKind.WEIGHTS_ONLY:
            self._reported_globals = tuple(unique_names([*self._reported_globals, *failure.globals]))
            if failure.globals and self.question is None:
                self.question = self._allow_question(failure.globals)
        self._changed()
        return True

    def load_cancelled(self, job: LoadJob) -> bool:
        """The engine stopped the load without being asked by this document."""
        if not self._is_running(job):
            return False
        self._job = None
        self.state = DocumentState.CANCELLED
        self._changed()
        return True

    def _is_running(self, job: LoadJob) -> bool:
        return job is self._job and not self.closed

    def _load(self) -> None:
        """Hand the file to torch with this tab's options, unless the safety policy refuses."""
        asked, self._asked_at = self._asked_at, None
        self._discard_job()
        self.failure = self.loaded = None
        self.refusal = self.next_refusal()
        if self.refusal is not None:
            self.state = DocumentState.REFUSED  # the file never reaches the engine untrusted
        elif self._submit_load is None or self.remote:
            self.state = DocumentState.SHOWN  # (a remote file: until its copy is downloaded)
        else:
            self._load_asked_at = asked if asked is not None else self._clock()
            self.state = DocumentState.LOADING
            self._job = self._submit_load(LoadRequest(self.path, self.load_options))
        self._changed()

    def _discard_job(self) -> None:
        job, self._job = self._job, None
        if job is not None:
            job.discard()

    # -- allowing globals and trusting the file (this tab only) -----------------------------

    def _forget_answers(self) -> None:
        self._trusted = False
        self._pickle_module = None
        self._allowed_globals = ()
        self._reported_globals = ()
        self.question = None

    def ask_allow(self, names: tuple[str, ...] | list[str]) -> None:
        """Ask whether to allow exactly ``names`` (with those allowed before), or trust the file."""
        if self.index is None or self.closed:
            return
        self.question = self._allow_question(names)
        self._changed()

    def _allow_question(self, names: tuple[str, ...] | list[str]) -> AllowQuestion:
        assert self.index is not None
        wanted = unique_names([*self.allowed_globals, *names])
        needed = tuple((name, global_class(name, self.index)) for name in wanted)
        return AllowQuestion(needed, tuple(refused_names(wanted)))

    def ask_trust(self) -> None:
        """Ask whether to trust the file, naming what a trusted load imports and may call."""
        if self.index is None or self.closed or self.trusted:
            return
        will_run = what_would_run(self.index, [*self._allowed_globals, *self._reported_globals])
        judged = verdict_of(self.index)
        self.question = TrustQuestion(tuple(will_run), judged.torchscript_code)
        self._changed()

    def allow(self) -> None:
        """The user allowed what the pending question lists: load with exactly those globals."""
        question = self.question
        if not isinstance(question, AllowQuestion) or not question.can_allow or self.closed:
            return
        self.question = None
        self._allowed_globals = question.names
        self._load()

    def trust(self, pickle_module: str = "pickle") -> None:
        """The user accepted the trust warning: load with ``weights_only=False`` in this tab."""
        if not isinstance(self.question, TrustQuestion) or self.closed:
            return
        self.question = None
        self._trusted = True
        self._pickle_module = pickle_module
        self._load()

    def dismiss(self) -> None:
        """The user answered the pending question with Cancel: nothing changes."""
        if self.question is not None and not self.closed:
            self.question = None
            self._changed()

    def _changed(self) -> None:
        if not self.closed:
            self._on_change()
