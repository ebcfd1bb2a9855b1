"""Who a request comes from and what their uploads hold, on their own (no server): bounds, claims, clean-up."""

import asyncio
import json

import pytest

from mirage_viz.ui.visitors import UploadLedger, UploadRefused, VisitorMiddleware, visitor_address

MB = 2**20


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def upload(ledger: UploadLedger, visitor: str, name: str, nbytes: int) -> str:
    """An upload as Gradio stores it (``ROOT/<hash>/<name>``), reserved and recorded as the middleware does."""
    token = ledger.reserve(visitor, nbytes)
    path = ledger.root / f"hash-{name}" / name
    path.parent.mkdir()
    path.write_bytes(bytes(nbytes))
    ledger.record(token, [str(path)])
    return str(path)


def test_a_visitor_is_their_address_or_the_one_a_local_proxy_names():
    assert visitor_address("93.184.216.34", "10.0.0.9") == "93.184.216.34"  # a direct visitor cannot name another
    assert visitor_address("127.0.0.1", "198.51.100.1, 203.0.113.7") == "203.0.113.7"  # the proxy's own entry
    assert visitor_address("10.0.0.2", None) == "10.0.0.2" and visitor_address(None) is None


def test_uploads_are_bounded_per_visitor_and_for_the_server(tmp_path):
    ledger = UploadLedger(tmp_path, per_visitor_bytes=10 * MB, server_bytes=16 * MB)
    for i in range(2):
        upload(ledger, "a", f"a{i}.png", 4 * MB)
    with pytest.raises(UploadRefused, match="would hold 12 MB, and one visitor's hold at most 10 MB"):
        ledger.reserve("a", 4 * MB)
    upload(ledger, "b", "b0.png", 4 * MB)
    token = ledger.reserve("c", 4 * MB)  # in flight: counted before it is read
    with pytest.raises(UploadRefused, match="the server holds as many uploads as it takes"):
        ledger.reserve("d", 1)
    ledger.record(token, [])  # that upload failed: nothing held for it
    assert ledger.held() == 12 * MB and ledger.held("a") == 8 * MB


def test_uploads_go_with_the_last_session_using_them_or_unused_after_their_time(tmp_path):
    clock = Clock()
    ledger = UploadLedger(tmp_path, 100 * MB, 100 * MB, unclaimed_ttl_s=300, clock=clock)
    shared = upload(ledger, "a", "shared.png", MB)
    upload(ledger, "a", "unused.png", MB)  # never used by a session
    outside = tmp_path.parent / f"{tmp_path.name}-outside.png"
    outside.write_bytes(b"x")
    ledger.claim("s1", [shared, str(outside), None])
    ledger.claim("s2", [shared])
    ledger.release_session("s1")
    assert (tmp_path / "hash-shared.png" / "shared.png").exists()  # s2 still uses it
    ledger.release_session("s2")
    assert not (tmp_path / "hash-shared.png").exists() and outside.exists()  # never anything outside the root
    clock.now = 200
    ledger.sweep()
    assert (tmp_path / "hash-unused.png" / "unused.png").exists()
    clock.now = 301
    ledger.sweep()
    assert list(tmp_path.iterdir()) == [] and ledger.held() == 0
    outside.unlink()


async def _serve(middleware: VisitorMiddleware, path: str, body: bytes = b"", headers=(), method: str = "POST"):
    sent, chunks = [], [body]

    async def receive():
        return {"type": "http.request", "body": chunks.pop(0) if chunks else b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "client": ("127.0.0.1", 5000),
             "headers": [(k.encode(), v.encode()) for k, v in headers]}
    await middleware(scope, receive, send)
    return sent


def test_the_middleware_refuses_past_a_bound_unread_and_records_what_went_through(tmp_path):
    stored = tmp_path / "hash" / "photo.png"
    opened, closed = [], []

    async def gradio(scope, receive, send):  # the upload route: reads the body, answers the stored paths
        body = (await receive())["body"]
        if scope["path"].endswith("/upload"):
            stored.parent.mkdir(exist_ok=True)
            stored.write_bytes(body)
            answer = json.dumps([str(stored)]).encode()
        else:
            answer = b"{}"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer})

    ledger = UploadLedger(tmp_path, per_visitor_bytes=100, server_bytes=1000)
    middleware = VisitorMiddleware(gradio, ledger, opened.append, closed.append)
    forwarded = ("x-forwarded-for", "203.0.113.7")
    sent = asyncio.run(_serve(middleware, "/gradio_api/upload", b"x" * 60, [("content-length", "60"), forwarded]))
    assert sent[0]["status"] == 200 and ledger.held("203.0.113.7") == 60
    refused = asyncio.run(_serve(middleware, "/gradio_api/upload", b"x" * 60, [("content-length", "60"), forwarded]))
    assert refused[0]["status"] == 413 and b"one visitor's hold at most" in refused[1]["body"]
    assert asyncio.run(_serve(middleware, "/gradio_api/upload", b"x"))[0]["status"] == 411  # no length: not read
    asyncio.run(_serve(middleware, "/gradio_api/heartbeat/abc123", method="GET"))
    assert opened == closed == ["abc123"]
