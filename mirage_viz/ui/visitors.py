"""Who a request comes from, and what their uploads hold: a small ASGI middleware in front of the Gradio app.

- :func:`visitor_address` decides, in one place, which visitor a request is (their address).
- :class:`UploadLedger` keeps every upload that went through: who sent it and which sessions used it. Uploads are
  bounded per visitor and for the whole server, freed with the last session that used them, or after
  ``unclaimed_ttl_s`` when no session did (a file posted to the upload route and never used).
- :class:`VisitorMiddleware` refuses an upload past a bound before reading it (HTTP 413 with a plain message),
  records what went through, and tells the session store which sessions have a live heartbeat: an open page, or
  a connected client, whose rollout is never evicted.

Nothing here knows Gradio's internals beyond its two routes' paths (``.../upload`` and ``.../heartbeat/SESSION``).
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["UploadLedger", "UploadRefused", "VisitorMiddleware", "visitor_address"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_HEARTBEAT = re.compile(r"/heartbeat/([^/]+)$")


def visitor_address(peer: str | None, forwarded_for: str | None = None) -> str | None:
    """The visitor's address: the peer's, or, when the peer is a proxy on a loopback or private address (a Hugging
    Face Space's, a local reverse proxy), the last address that proxy added to ``X-Forwarded-For``.

    Only a proxy's word is taken: a visitor connecting directly cannot name themselves someone else.
    """
    if peer is None:
        return None
    try:
        local = ipaddress.ip_address(peer).is_private  # loopback and private ranges alike
    except ValueError:
        local = False
    if local and forwarded_for:
        last = forwarded_for.split(",")[-1].strip()
        if last:
            return last
    return peer


class UploadRefused(ValueError):
    """An upload past a bound: the message says which and what to do."""


def _megabytes(nbytes: float) -> str:
    megabytes = nbytes / 2**20
    return f"{megabytes:.0f} MB" if megabytes >= 10 else f"{megabytes:.1f} MB"


@dataclass(eq=False)
class _Upload:
    visitor: str | None
    nbytes: int
    unclaimed_since: float | None  # when it arrived (or arrived again) with no session using it since; None: claimed
    sessions: set[str] = field(default_factory=set)


class UploadLedger:
    """Every upload held on the server, bounded per visitor and in all, freed with the sessions that used it.

    Args:
        root: the folder uploads land in (Gradio's upload folder); only files inside it are ever removed.
        per_visitor_bytes: what one visitor's uploads may hold at once.
        server_bytes: what all uploads may hold at once.
        unclaimed_ttl_s: an upload no session has used is removed after this long.
    """

    def __init__(self, root: str | Path, per_visitor_bytes: int, server_bytes: int, unclaimed_ttl_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if min(per_visitor_bytes, server_bytes) <= 0 or unclaimed_ttl_s <= 0:
            raise ValueError("the bounds and the time must be > 0")
        self.root = Path(root).resolve()
        self.per_visitor_bytes, self.server_bytes = int(per_visitor_bytes), int(server_bytes)
        self.unclaimed_ttl_s = float(unclaimed_ttl_s)
        self._clock = clock
        self._uploads: dict[Path, _Upload] = {}
        self._reserved: dict[int, tuple[str | None, int]] = {}  # uploads in flight: token -> (visitor, bytes)
        self._next_token = 0
        self._lock = threading.Lock()

    # -- an upload's way in --------------------------------------------------------------------------
    def reserve(self, visitor: str | None, nbytes: int) -> int:
        """Hold ``nbytes`` for an upload of ``visitor`` about to be read; raises :class:`UploadRefused` past a bound."""
        with self._lock:
            self._sweep_locked()
            held = self._held_locked(visitor)
            if held + nbytes > self.per_visitor_bytes:
                raise UploadRefused(
                    f"upload refused: your uploads on this server would hold {_megabytes(held + nbytes)}, and one "
                    f"visitor's hold at most {_megabytes(self.per_visitor_bytes)}; they are freed when you close the tab "
                    f"(unused ones after {self.unclaimed_ttl_s / 60:g} min), so try again then")
            total = self._held_locked()
            if total + nbytes > self.server_bytes:
                raise UploadRefused(
                    f"upload refused: the server holds as many uploads as it takes ({_megabytes(self.server_bytes)} "
                    f"from every visitor together); please try again in a few minutes")
            self._next_token += 1
            self._reserved[self._next_token] = (visitor, int(nbytes))
            return self._next_token

    def record(self, token: int, paths: Iterable[str]) -> None:
        """The upload held by ``token`` is over: these files arrived (none when it failed)."""
        with self._lock:
            visitor, nbytes = self._reserved.pop(token, (None, 0))
            arrived = [p for p in (self._inside(path) for path in paths) if p is not None]
            for path in arrived:
                try:
                    size = path.stat().st_size
                except OSError:  # still being moved into place: count its share of the request
                    size = nbytes // len(arrived)
                upload = self._uploads.get(path)
                if upload is None:
                    self._uploads[path] = _Upload(visitor, size, self._clock())
                else:  # the same content again (Gradio stores uploads by their hash): held until used again
                    upload.unclaimed_since = self._clock()

    # -- what sessions do with uploads ------------------------------------------------------------
    def claim(self, session_id: str, paths: Iterable[str | None]) -> None:
        """``session_id`` uses these files: they stay until the last session using them ends."""
        with self._lock:
            for path in (self._inside(p) for p in paths if p):
                upload = self._uploads.get(path) if path is not None else None
                if upload is not None:
                    upload.sessions.add(session_id)
                    upload.unclaimed_since = None

    def release_session(self, session_id: str) -> None:
        """``session_id`` ended: remove the uploads no other session uses (nor anyone uploaded again meanwhile)."""
        with self._lock:
            for path, upload in list(self._uploads.items()):
                if session_id in upload.sessions:
                    upload.sessions.discard(session_id)
                    if not upload.sessions and upload.unclaimed_since is None:
                        self._remove_locked(path)

    def sweep(self) -> None:
        """Remove uploads that no session used within ``unclaimed_ttl_s`` of arriving."""
        with self._lock:
            self._sweep_locked()

    def held(self, visitor: str | None = None) -> int:
        """Bytes held by ``visitor``'s uploads (all uploads when None), in flight included."""
        with self._lock:
            return self._held_locked(visitor)

    # -- inside the lock ----------------------------------------------------------------------------
    def _held_locked(self, visitor: str | None = None) -> int:
        everyone = visitor is None
        return (sum(u.nbytes for u in self._uploads.values() if everyone or u.visitor == visitor)
                + sum(n for v, n in self._reserved.values() if everyone or v == visitor))

    def _sweep_locked(self) -> None:
        now = self._clock()
        for path, upload in list(self._uploads.items()):
            if not upload.sessions and upload.unclaimed_since is not None and now - upload.unclaimed_since > self.unclaimed_ttl_s:
                self._remove_locked(path)

    def _remove_locked(self, path: Path) -> None:
        del self._uploads[path]
        path.unlink(missing_ok=True)
        if path.parent != self.root:  # Gradio's folder of that one upload (named by its hash), once empty
            try:
                path.parent.rmdir()
            except OSError:
                pass

    def _inside(self, path: str | Path) -> Path | None:
        """``path`` resolved, when it lies inside :attr:`root` (anything else is never ours to track or remove)."""
        try:
            resolved = Path(path).resolve()
        except (OSError, ValueError, TypeError):
            return None
        return resolved if self.root in resolved.parents else None


class VisitorMiddleware:
    """ASGI middleware: bounded uploads (:class:`UploadLedger`) and open pages (``on_page_open`` / ``on_page_close``
    with the session id while one of its heartbeats is connected)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], ledger: UploadLedger,
                 on_page_open: Callable[[str], None], on_page_close: Callable[[str], None]) -> None:
        self.app, self.ledger = app, ledger
        self.on_page_open, self.on_page_close = on_page_open, on_page_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            return await self.app(scope, receive, send)
        path, method = scope.get("path", ""), scope.get("method", "")
        if method == "POST" and path.endswith("/upload"):
            return await self._upload(scope, receive, send)
        heartbeat = _HEARTBEAT.search(path) if method == "GET" else None
        if heartbeat is None:
            return await self.app(scope, receive, send)
        session_id = heartbeat.group(1)
        self.on_page_open(session_id)
        try:
            await self.app(scope, receive, send)
        finally:
            self.on_page_close(session_id)

    async def _upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}
        client = scope.get("client")
        visitor = visitor_address(client[0] if client else None, headers.get("x-forwarded-for"))
        length = headers.get("content-length", "")
        if not length.isdigit():
            return await _plain(send, 411, "upload refused: an upload must state its length (Content-Length)")
        declared = int(length)
        try:
            token = self.ledger.reserve(visitor, declared)
        except UploadRefused as refusal:
            return await _plain(send, 413, str(refusal))
        received, status, body = 0, 0, bytearray()

        async def counted() -> Message:  # never more than was declared (and reserved)
            nonlocal received
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > declared:
                    return {"type": "http.disconnect"}
            return message

        async def captured(message: Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 0))
            elif message.get("type") == "http.response.body" and status == 200 and len(body) < 2**20:
                body.extend(message.get("body", b""))
            await send(message)

        paths: list[str] = []
        try:
            await self.app(scope, counted, captured)
            if status == 200:
                try:
                    answer = json.loads(bytes(body))
                    paths = [p for p in answer if isinstance(p, str)] if isinstance(answer, list) else []
                except ValueError:
                    paths = []
        finally:
            self.ledger.record(token, paths)


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
