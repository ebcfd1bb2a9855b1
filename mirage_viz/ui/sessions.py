"""Visitors' rollouts on a shared server: one running rollout per visitor, a bounded number kept, all freed.

The app keeps each visitor's latest rollout here, keyed by the visitor's session id, not in Gradio's own
per-session state (which Gradio keeps for an hour after a tab closes and drops without a callback when full).
What a session holds (its rollout, its drive and its folders of downloads) is freed when the session ends or when it
has been idle for ``ttl_s``. At most ``max_rollouts`` sessions hold a rollout or a drive, and one visitor (one
address) at most half of them. A new one takes the place of the least recently used idle session whose page is
closed (an API caller without a heartbeat, say); a session whose page is open is never evicted: when every place is
held by open pages, the new run is told the app is busy.
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

__all__ = ["release_freed_memory", "RunSlots", "RunTicket", "ServerBusy", "SessionBusy", "SessionStore", "VisitorBusy",
           "watched"]


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
    """As many rollouts as the server takes are already running and waiting, or held by open pages."""


class VisitorBusy(ServerBusy):
    """This visitor already holds or runs as many rollouts as one visitor may."""


@dataclass(eq=False)
class RunTicket:
    """One rollout of one session: the running code reports through it and checks whether to stop."""

    session_id: str
    visitor: str | None = None  # who asked (an address); None: no per-visitor limit (a local caller)
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
    retired: list[Path] = field(default_factory=list)  # replaced downloads, still served until the run that replaced them ends
    ticket: RunTicket | None = None  # the running rollout or drive press, if any
    visitor: str | None = None  # the address of its latest run
    last_used: float = 0.0

    @property
    def holding(self) -> bool:
        """Holds a place: a rollout, a drive, or a run that will make one."""
        return self.rollout is not None or self.drive is not None or self.ticket is not None


class SessionStore:
    """Thread-safe store of each session's rollout, drive and downloads folders, bounded in count and in time.

    Args:
        export_root: a folder of this store's own; each session's downloads go in subfolders, removed with it.
        max_rollouts: sessions holding a rollout or a drive at once; one visitor holds at most half of them (at
            least one).
        ttl_s: a session idle this long (no run, no scrub) is freed.
        abandon_after_s: a run suspended this long (see :meth:`RunTicket.abandoned`) no longer blocks its session.
        on_close: called with the id of every session freed (closed, idle too long or evicted), outside the lock.
    """

    def __init__(self, export_root: str | Path, max_rollouts: int = 6, ttl_s: float = 1800.0, abandon_after_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, on_close: Callable[[str], None] | None = None) -> None:
        if max_rollouts < 1 or min(ttl_s, abandon_after_s) <= 0:
            raise ValueError("max_rollouts must be >= 1 and the times > 0")
        self.export_root = Path(export_root)
        self.export_root.mkdir(parents=True, exist_ok=True)
        self.max_rollouts, self.ttl_s, self.abandon_after_s = int(max_rollouts), float(ttl_s), float(abandon_after_s)
        self.max_per_visitor = max(1, self.max_rollouts // 2)
        self._clock = clock
        self._on_close = on_close
        self._sessions: OrderedDict[str, _Session] = OrderedDict()  # least recently used first
        self._open_pages: dict[str, int] = {}  # session id -> live heartbeats (an open page or a connected client)
        self._freed: OrderedDict[str, str] = OrderedDict()  # why a session's rollout went (recent ones only)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.sweep_hooks: list[Callable[[], None]] = []  # also run by the sweeper thread (the uploads' clean-up)

    # -- a run -----------------------------------------------------------------------------------
    def begin_run(self, session_id: str, fresh: bool = True, visitor: str | None = None) -> RunTicket:
        """Start a run for ``session_id`` on behalf of ``visitor`` (an address; None: a local caller, no per-visitor limit).

        ``fresh`` (a new rollout): the session's previous rollout is freed first; its downloads stay valid until the
        new run's replace them (:meth:`export_folder`), and its drive stays. ``fresh=False`` (a drive press) frees
        nothing. A session that holds nothing yet takes a place (:meth:`_admit_locked`).
        Raises :class:`SessionBusy` when the session already has a run going, :class:`VisitorBusy` when the visitor
        holds their share and :class:`ServerBusy` when open pages hold every place.
        """
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None:
                self._check_idle_locked(session)
            evicted = [] if session is not None and session.holding else self._admit_locked(session_id, visitor)
            if session is None:
                session = self._sessions[session_id] = _Session()
            freed = fresh and session.rollout is not None
            if fresh:
                self._freed.pop(session_id, None)
                session.rollout = None
            session.ticket = ticket = RunTicket(session_id, visitor)
            session.visitor = visitor
            session.last_used = self._clock()
            self._sessions.move_to_end(session_id)
        self._closed(evicted)
        if freed or evicted:
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
        one replaces the session's previous folder of that kind only, which stays on disk (its links valid) until
        this run ends, by when the new downloads have been handed out. All go with the session.
        """
        if not isinstance(kind, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", kind):
            raise ValueError(f"an export kind is 1 to 32 lowercase letters, digits or '_', got {kind!r}")
        with self._lock:
            session = self._owned_locked(ticket)
            if session is None:
                return None
            if kind in session.exports:
                session.retired.append(session.exports.pop(kind))
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
                self._remove_retired_locked(session)

    # -- a visitor ----------------------------------------------------------------------------
    def running(self, session_id: str) -> bool:
        """Whether the session has a run (or a drive press) going."""
        with self._lock:
            session = self._sessions.get(session_id)
            return session is not None and session.ticket is not None

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

    def page_opened(self, session_id: str) -> None:
        """A heartbeat of ``session_id`` connected: its page (or client) is open, so its rollout is never evicted."""
        with self._lock:
            self._open_pages[session_id] = self._open_pages.get(session_id, 0) + 1

    def page_closed(self, session_id: str) -> None:
        """A heartbeat of ``session_id`` ended (the tab closed, a client went)."""
        with self._lock:
            left = self._open_pages.get(session_id, 0) - 1
            if left > 0:
                self._open_pages[session_id] = left
            else:
                self._open_pages.pop(session_id, None)

    def close(self, session_id: str) -> None:
        """The session ended: stop its run and free its rollout, drive and downloads now."""
        with self._lock:
            session = self._sessions.pop(session_id, None)
            if session is not None:
                self._close_locked(session)
        self._closed([session_id])
        if session is not None:
            release_freed_memory()

    def sweep(self) -> None:
        """Free sessions idle for longer than ``ttl_s``."""
        with self._lock:
            freed = self._sweep_locked()
        self._closed(freed)
        if freed:
            release_freed_memory()

    def _closed(self, session_ids: list[str]) -> None:
        if self._on_close is not None:
            for session_id in session_ids:
                self._on_close(session_id)

    def start_sweeper(self, every_s: float = 60.0) -> None:
        """Sweep every ``every_s`` seconds in a daemon thread, so an idle server frees expired sessions too."""
        def loop() -> None:
            while not self._stopping.wait(every_s):
                self.sweep()
                for hook in self.sweep_hooks:
                    hook()

        threading.Thread(target=loop, name="mirage_viz-session-sweeper", daemon=True).start()

    def shutdown(self) -> None:
        """Free everything and remove the export root (the server is closing)."""
        self._stopping.set()
        with self._lock:
            for session in self._sessions.values():
                self._close_locked(session)
            closed = list(self._sessions)
            self._sessions.clear()
            shutil.rmtree(self.export_root, ignore_errors=True)
        self._closed(closed)

    def stats(self) -> dict[str, int]:
        with self._lock:
            sessions = list(self._sessions.values())
            return {"sessions": len(sessions), "rollouts": sum(s.rollout is not None for s in sessions),
                    "running": sum(s.ticket is not None for s in sessions), "open_pages": len(self._open_pages),
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
        self._remove_retired_locked(session)

    def _remove_retired_locked(self, session: _Session) -> None:
        for folder in session.retired:
            shutil.rmtree(folder, ignore_errors=True)
        session.retired.clear()

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

    def _sweep_locked(self) -> list[str]:
        """Free expired sessions; returns their ids."""
        now, freed = self._clock(), []
        for session_id, session in list(self._sessions.items()):
            running = session.ticket is not None and not session.ticket.abandoned(self.abandon_after_s)
            if not running and now - session.last_used > self.ttl_s:
                self._close_locked(self._sessions.pop(session_id))
                self._remember_locked(session_id, f"freed after {self.ttl_s / 60:g} min without use")
                freed.append(session_id)
        return freed

    def _admit_locked(self, session_id: str, visitor: str | None) -> list[str]:
        """Make a place for ``session_id``, which holds nothing yet: within the visitor's share and the server's
        places, evicting the least recently used idle session whose page is closed where needed (the visitor's own
        first when it is their share that is full). Returns the evicted ids; raises when open pages hold the places."""
        holding = [sid for sid, s in self._sessions.items() if sid != session_id and s.holding]  # least recently used first
        evicted: list[str] = []
        if visitor is not None:
            mine = [sid for sid in holding if self._sessions[sid].visitor == visitor]
            if len(mine) >= self.max_per_visitor:
                if not self._evict_one_locked(mine, evicted):
                    raise VisitorBusy(f"you already hold {len(mine)} rollouts or drives in other open tabs or clients (one "
                                      f"visitor holds at most {self.max_per_visitor} of the app's {self.max_rollouts}); "
                                      "close one of them, or run again in a tab you already use")
                holding.remove(evicted[-1])
        if len(holding) >= self.max_rollouts and not self._evict_one_locked(holding, evicted):
            raise ServerBusy(f"the app is busy: all {self.max_rollouts} places for rollouts are held by visitors whose "
                             "pages are open; please try again in a few minutes")
        return evicted

    def _evict_one_locked(self, candidates: list[str], evicted: list[str]) -> bool:
        """Free the first of ``candidates`` (least recently used first) that is idle and whose page is closed."""
        for session_id in candidates:
            session = self._sessions[session_id]
            if session.ticket is None and session_id not in self._open_pages:
                self._close_locked(self._sessions.pop(session_id))
                self._remember_locked(session_id, f"freed to make room: the server keeps {self.max_rollouts} rollouts "
                                                  "and drives, and frees the least recently used of closed pages first")
                evicted.append(session_id)
                return True
        return False

    def _remember_locked(self, session_id: str, reason: str) -> None:
        self._freed[session_id] = reason
        while len(self._freed) > 10_000:
            self._freed.popitem(last=False)


class RunSlots:
    """At most ``running`` rollouts compute at once; at most ``waiting`` more wait for a slot, first come first served;
    one visitor has at most ``per_visitor`` of them running or waiting (a ticket without a visitor: no such limit).

    A generator-friendly gate: :meth:`wait` yields how many are ahead while the ticket waits (so a streaming
    handler can show it), returns once the ticket holds a slot, and raises :class:`ServerBusy` at once when
    the line is full. A ticket told to stop (Stop, or its session ended) leaves the line; :meth:`wait` then
    returns without a slot (``holds`` says which). Every slot taken is given back with :meth:`release`; the
    slot of a run abandoned by its consumer (:meth:`RunTicket.abandoned`) is taken back, so none leaks.
    """

    def __init__(self, running: int = 2, waiting: int = 4, poll_s: float = 1.0, abandon_after_s: float = 30.0,
                 per_visitor: int = 2) -> None:
        if running < 1 or waiting < 0 or per_visitor < 1:
            raise ValueError("running and per_visitor must be >= 1 and waiting >= 0")
        self.running, self.waiting, self.poll_s = int(running), int(waiting), float(poll_s)
        self.per_visitor = int(per_visitor)
        self.abandon_after_s = float(abandon_after_s)
        self._line: deque[RunTicket] = deque()
        self._holders: set[RunTicket] = set()
        self._changed = threading.Condition()

    def wait(self, ticket: RunTicket) -> Iterator[int]:
        """Yield how many rollouts wait ahead of ``ticket`` while it waits; return when it holds a slot or must stop."""
        with self._changed:
            self._reclaim_locked()
            if ticket.visitor is not None:
                theirs = sum(t.visitor == ticket.visitor for t in (*self._holders, *self._line))
                if theirs >= self.per_visitor:
                    raise VisitorBusy(f"you already have {theirs} rollout(s) running or waiting (at most "
                                      f"{self.per_visitor} per visitor); wait for one to finish or press Stop there")
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
