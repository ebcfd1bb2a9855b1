"""Visitors' rollouts on a shared server: one running rollout per visitor, a bounded number kept, all freed.

The app keeps each visitor's latest rollout here, keyed by the visitor's session id, not in Gradio's own
per-session state (which Gradio keeps for an hour after a tab closes and drops without a callback when full).
What a session holds (its rollout, its drive and its folders of downloads) is freed when the session ends, when it
has been idle for ``ttl_s``, or, least recently used first, when more than ``max_rollouts`` sessions hold a rollout
or a drive.
Stop is a flag the running rollout checks between steps, so it works for API callers as for the browser.
:class:`RunSlots` lets a few rollouts compute at once and a few more wait in arrival order; one more is told
the server is busy, at once, instead of waiting behind an unbounded line.

Nothing here knows Gradio: the app passes session ids in and arranges what comes back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import re
import secrets
import shutil
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from mirage_viz.rollout.records import Rollout

T = TypeVar("T")

__all__ = ["release_freed_memory", "RunSlots", "RunTicket", "ServerBusy", "SessionBusy", "SessionStore", "watched"]


def release_freed_memory() -> None:
    """Hand memory freed by dropped rollouts back to the operating system.

    A rollout is hundreds of tensors freed from several worker threads: glibc keeps such memory in its
    per-thread arenas, so the server's footprint only ever grew. ``malloc_trim`` returns the free pages
    (glibc only; elsewhere nothing to do).
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


class SessionBusy(ValueError):
    """The session already has a rollout running or waiting."""


class ServerBusy(ValueError):
    """As many rollouts as the server takes are already running and waiting."""


@dataclass(eq=False)
class RunTicket:
    """One rollout of one session: the running code reports through it and checks whether to stop."""

    session_id: str
    stop: threading.Event = field(default_factory=threading.Event)
    closed: bool = False  # the session ended or was evicted: keep nothing more for it
    suspended_since: float | None = None  # handed an update to its consumer and not resumed since (time.monotonic)

    @property
    def should_stop(self) -> bool:
        return self.stop.is_set() or self.closed

    def abandoned(self, after_s: float) -> bool:
        """Closed, or suspended for longer than ``after_s``: a streaming consumer resumes a run within moments of
        each update, so a run left suspended that long has no consumer and will never finish by itself."""
        return self.closed or (self.suspended_since is not None and time.monotonic() - self.suspended_since > after_s)


def watched(ticket: RunTicket, updates: Iterator[T]) -> Iterator[T]:
    """Yield from ``updates``, marking ``ticket`` suspended while its consumer holds each update."""
    for update in updates:
        ticket.suspended_since = time.monotonic()
        try:
            yield update
        finally:
            ticket.suspended_since = None


@dataclass(eq=False)
class _Session:
    rollout: Rollout | None = None
    drive: object | None = None  # the visitor's drive (a DriveSession), kept beside the rollout
    exports: dict[str, Path] = field(default_factory=dict)  # downloads folder of each kind ("rollout", "drive", ...)
    ticket: RunTicket | None = None  # the running rollout or drive press, if any
    last_used: float = 0.0


class SessionStore:
    """Thread-safe store of each session's rollout, drive and downloads folders, bounded in count and in time.

    Args:
        export_root: a folder of this store's own; each session's downloads go in subfolders, removed with it.
        max_rollouts: sessions holding a rollout or a drive at once; beyond it the least recently used idle one
            is freed.
        ttl_s: a session idle this long (no run, no scrub) is freed.
        abandon_after_s: a run suspended this long (see :meth:`RunTicket.abandoned`) no longer blocks its session.
    """

    def __init__(self, export_root: str | Path, max_rollouts: int = 6, ttl_s: float = 1800.0, abandon_after_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_rollouts < 1 or min(ttl_s, abandon_after_s) <= 0:
            raise ValueError("max_rollouts must be >= 1 and the times > 0")
        self.export_root = Path(export_root)
        self.export_root.mkdir(parents=True, exist_ok=True)
        self.max_rollouts, self.ttl_s, self.abandon_after_s = int(max_rollouts), float(ttl_s), float(abandon_after_s)
        self._clock = clock
        self._sessions: OrderedDict[str, _Session] = OrderedDict()  # least recently used first
        self._freed: OrderedDict[str, str] = OrderedDict()  # why a session's rollout went (recent ones only)
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    # -- a run -----------------------------------------------------------------------------------
    def begin_run(self, session_id: str, fresh: bool = True) -> RunTicket:
        """Start a run for ``session_id``.

        ``fresh`` (a new rollout): the session's previous rollout and its downloads (kind ``"rollout"``) are freed
        first; its drive and the drive's downloads stay. ``fresh=False`` (a drive press) frees nothing.
        Raises :class:`SessionBusy` when the session already has a run going.
        """
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None:
                self._check_idle_locked(session)
            else:
                session = self._sessions[session_id] = _Session()
            freed = fresh and session.rollout is not None
            if fresh:
                self._freed.pop(session_id, None)
                session.rollout = None
                self._remove_exports_locked(session, "rollout")
            session.ticket = ticket = RunTicket(session_id)
            session.last_used = self._clock()
            self._sessions.move_to_end(session_id)
            freed += self._evict_locked()
        if freed:
            release_freed_memory()
        return ticket

    def publish(self, ticket: RunTicket, rollout: Rollout) -> None:
        """The run's rollout so far (scrubbable while it streams); ignored once the ticket is closed."""
        with self._lock:
            if (session := self._owned_locked(ticket)) is not None:
                session.rollout = rollout
                session.last_used = self._clock()

    def publish_drive(self, ticket: RunTicket, drive: object | None) -> None:
        """The session's drive (kept until the session goes, or replaced); ignored once the ticket is closed."""
        with self._lock:
            if (session := self._owned_locked(ticket)) is not None:
                session.drive = drive
                session.last_used = self._clock()

    def export_folder(self, ticket: RunTicket, kind: str = "rollout") -> Path | None:
        """A fresh, empty downloads folder of ``kind`` for the run's session; None once closed.

        Each kind (``"rollout"``, ``"drive"``, ...: lowercase letters, digits and ``_``) has its own folder: a new
        one replaces the session's previous folder of that kind only. All go with the session.
        """
        if not isinstance(kind, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", kind):
            raise ValueError(f"an export kind is 1 to 32 lowercase letters, digits or '_', got {kind!r}")
        with self._lock:
            session = self._owned_locked(ticket)
            if session is None:
                return None
            self._remove_exports_locked(session, kind)
            folder = session.exports[kind] = self.export_root / f"{kind}-{secrets.token_hex(8)}"
            folder.mkdir()
            return folder

    def end_run(self, ticket: RunTicket) -> None:
        """The run is over (done, stopped or failed): the session may run again."""
        with self._lock:
            session = self._sessions.get(ticket.session_id)
            if session is not None and session.ticket is ticket:
                session.ticket = None
                session.last_used = self._clock()

    # -- a visitor ----------------------------------------------------------------------------
    def rollout(self, session_id: str) -> Rollout | None:
        """The session's latest rollout (None when it has none or it was freed); counts as a use."""
        session = self._use(session_id)
        return None if session is None else session.rollout

    def drive(self, session_id: str) -> object | None:
        """The session's drive (None when it has none or it was freed); counts as a use."""
        session = self._use(session_id)
        return None if session is None else session.drive

    def _use(self, session_id: str) -> _Session | None:
        """The session, marked as just used (most recently used last), or None."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None:
                session.last_used = self._clock()
                self._sessions.move_to_end(session_id)
            return session

    def freed_reason(self, session_id: str) -> str | None:
        """Why the session's rollout was freed (idle too long, or to make room), if it was."""
        with self._lock:
            return self._freed.get(session_id)

    def request_stop(self, session_id: str) -> bool:
        """Ask the session's rollout to stop after its current step (or, waiting for a slot, now); False when none runs."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.ticket is None:
                return False
            session.ticket.stop.set()
            return True

    def close(self, session_id: str) -> None:
        """The session ended: stop its run and free its rollout, drive and downloads now."""
        with self._lock:
            session = self._sessions.pop(session_id, None)
            if session is not None:
                self._close_locked(session)
        if session is not None:
            release_freed_memory()

    def sweep(self) -> None:
        """Free sessions idle for longer than ``ttl_s``."""
        with self._lock:
            freed = self._sweep_locked()
        if freed:
            release_freed_memory()

    def start_sweeper(self, every_s: float = 60.0) -> None:
        """Sweep every ``every_s`` seconds in a daemon thread, so an idle server frees expired sessions too."""
        def loop() -> None:
            while not self._stopping.wait(every_s):
                self.sweep()

        threading.Thread(target=loop, name="mirage_viz-session-sweeper", daemon=True).start()

    def shutdown(self) -> None:
        """Free everything and remove the export root (the server is closing)."""
        self._stopping.set()
        with self._lock:
            for session in self._sessions.values():
                self._close_locked(session)
            self._sessions.clear()
            shutil.rmtree(self.export_root, ignore_errors=True)

    def stats(self) -> dict[str, int]:
        with self._lock:
            sessions = list(self._sessions.values())
            return {"sessions": len(sessions), "rollouts": sum(s.rollout is not None for s in sessions),
                    "running": sum(s.ticket is not None for s in sessions),
                    "export_folders": sum(1 for p in self.export_root.iterdir() if p.is_dir())}

    # -- inside the lock --------------------------------------------------------------------------
    def _owned_locked(self, ticket: RunTicket) -> _Session | None:
        """The ticket's session while the ticket is still its live run; None once closed or replaced."""
        session = self._sessions.get(ticket.session_id)
        if ticket.closed or session is None or session.ticket is not ticket:
            return None
        return session

    def _check_idle_locked(self, session: _Session) -> None:
        """Raise :class:`SessionBusy` when ``session`` has a live rollout running or waiting."""
        if session.ticket is not None:
            if not session.ticket.abandoned(self.abandon_after_s):
                raise SessionBusy("a rollout of this session is still running: press Stop or wait for it to finish "
                                  "(one rollout per visitor at a time)")
            session.ticket.closed = True  # a vanished run: never let it store anything again
            session.ticket = None

    def _free_locked(self, session: _Session) -> None:
        session.rollout = session.drive = None
        for kind in list(session.exports):
            self._remove_exports_locked(session, kind)

    def _remove_exports_locked(self, session: _Session, kind: str) -> None:
        folder = session.exports.pop(kind, None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def _close_locked(self, session: _Session) -> None:
        if session.ticket is not None:
            session.ticket.closed = True
            session.ticket.stop.set()
            session.ticket = None
        self._free_locked(session)

    def _sweep_locked(self) -> int:
        """Free expired sessions; returns how many."""
        now, freed = self._clock(), 0
        for session_id, session in list(self._sessions.items()):
            running = session.ticket is not None and not session.ticket.abandoned(self.abandon_after_s)
            if not running and now - session.last_used > self.ttl_s:
                self._close_locked(self._sessions.pop(session_id))
                self._remember_locked(session_id, f"freed after {self.ttl_s / 60:g} min without use")
                freed += 1
        return freed

    def _evict_locked(self) -> int:
        """Free the least recently used idle sessions holding a rollout or a drive beyond ``max_rollouts``; returns how many."""
        holding = [(sid, s) for sid, s in self._sessions.items()
                   if s.rollout is not None or s.drive is not None or s.ticket is not None]
        excess, evicted = len(holding) - self.max_rollouts, 0
        for session_id, session in holding:  # least recently used first; a running rollout is never evicted
            if evicted >= excess:
                break
            if session.ticket is None:
                self._close_locked(self._sessions.pop(session_id))
                self._remember_locked(session_id, f"freed to make room: the server keeps the {self.max_rollouts} most "
                                                  "recently used rollouts and drives")
                evicted += 1
        return evicted

    def _remember_locked(self, session_id: str, reason: str) -> None:
        self._freed[session_id] = reason
        while len(self._freed) > 10_000:
            self._freed.popitem(last=False)


class RunSlots:
    """At most ``running`` rollouts compute at once; at most ``waiting`` more wait for a slot, first come first served.

    A generator-friendly gate: :meth:`wait` yields how many are ahead while the ticket waits (so a streaming
    handler can show it), returns once the ticket holds a slot, and raises :class:`ServerBusy` at once when
    the line is full. A ticket told to stop (Stop, or its session ended) leaves the line; :meth:`wait` then
    returns without a slot (``holds`` says which). Every slot taken is given back with :meth:`release`; the
    slot of a run abandoned by its consumer (:meth:`RunTicket.abandoned`) is taken back, so none leaks.
    """

    def __init__(self, running: int = 2, waiting: int = 4, poll_s: float = 1.0, abandon_after_s: float = 30.0) -> None:
        if running < 1 or waiting < 0:
            raise ValueError("running must be >= 1 and waiting >= 0")
        self.running, self.waiting, self.poll_s = int(running), int(waiting), float(poll_s)
        self.abandon_after_s = float(abandon_after_s)
        self._line: deque[RunTicket] = deque()
        self._holders: set[RunTicket] = set()
        self._changed = threading.Condition()

    def wait(self, ticket: RunTicket) -> Iterator[int]:
        """Yield how many rollouts wait ahead of ``ticket`` while it waits; return when it holds a slot or must stop."""
        with self._changed:
            self._reclaim_locked()
            if len(self._holders) >= self.running and len(self._line) >= self.waiting:
                raise ServerBusy(f"the app is busy: {len(self._holders)} rollout(s) running and {len(self._line)} "
                                 "waiting; please try again in a minute")
            self._line.append(ticket)
        try:
            while True:
                with self._changed:
                    self._reclaim_locked()
                    if ticket.should_stop:
                        return
                    if self._line[0] is ticket and len(self._holders) < self.running:
                        self._line.popleft()
                        self._holders.add(ticket)
                        self._changed.notify_all()
                        return
                    ahead = self._line.index(ticket)
                    self._changed.wait(self.poll_s)
                yield ahead
        finally:
            with self._changed:
                if ticket in self._line:
                    self._line.remove(ticket)
                    self._changed.notify_all()

    def _reclaim_locked(self) -> None:
        """Give back the slots of abandoned runs (a consumer that vanished without closing its run)."""
        for holder in [t for t in self._holders if t.abandoned(self.abandon_after_s)]:
            holder.closed = True
            self._holders.discard(holder)

    def holds(self, ticket: RunTicket) -> bool:
        with self._changed:
            return ticket in self._holders

    def release(self, ticket: RunTicket) -> None:
        with self._changed:
            self._holders.discard(ticket)
            self._changed.notify_all()

    def stats(self) -> dict[str, int]:
        with self._changed:
            return {"running": len(self._holders), "waiting": len(self._line)}
