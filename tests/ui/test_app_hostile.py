"""The Space under a careless or hostile visitor: bounded uploads, fair places, true messages, a quiet log.

A server of its own with two places for rollouts, so that one visitor's runs meet another's at once.
"""

import re
import time

import httpx
import pytest

gradio = pytest.importorskip("gradio")
import gradio_client  # noqa: E402
from gradio_client import handle_file  # noqa: E402

pytestmark = pytest.mark.slow  # runs the app, a browser, a kernel or a build: the full tier only

MB = 2**20


def visitor(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}  # as a Space's proxy names its visitors


def client(url: str, address: str) -> gradio_client.Client:
    """A visitor with a page open (gradio_client keeps a heartbeat, as a browser tab does)."""
    return gradio_client.Client(url, headers=visitor(address), verbose=False)


def anonymous_run(url: str, address: str, *args) -> tuple[str, str]:
    """A run over Gradio's plain HTTP API, with no page and no heartbeat: ``(event, data)`` of its last message."""
    with httpx.Client(headers=visitor(address), timeout=180) as http:
        event_id = http.post(f"{url}gradio_api/call/run", json={"data": list(args)}).json()["event_id"]
        with http.stream("GET", f"{url}gradio_api/call/run/{event_id}") as response:
            lines = [line for line in response.iter_lines() if line]
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    return events[-1], data[-1]


def post_upload(url: str, address: str, name: str, nbytes: int) -> httpx.Response:
    with httpx.Client(headers=visitor(address), timeout=60) as http:
        return http.post(f"{url}gradio_api/upload", files={"files": (name, bytes(nbytes), "image/png")})


def wait_for(condition, timeout=60.0, what="the condition"):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def small_server(backbone):
    from mirage_viz.ui.app import build_demo, launch

    demo = build_demo(max_rollouts=2)
    _, url, _ = launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    yield demo, url
    demo.close()
    demo.mirage_sessions.shutdown()


ONE_STEP = ("room", "push_in", 0.0, 1, 128, 0)
EVERY_INPUT = (*ONE_STEP, None, 0.0, "embedded", "", "", "", 3.0, False, None, "paper", "", None)  # the plain API takes all


def test_an_open_page_keeps_its_rollout_and_a_full_store_says_busy(small_server):
    demo, url = small_server
    victim = client(url, "10.7.0.1")
    victim.predict(*ONE_STEP, api_name="/run")
    for _ in range(6):  # six runs from one client without a page: each takes the place of its own last
        event, data = anonymous_run(url, "10.7.0.2", *EVERY_INPUT)
        assert event == "complete", data
    scrubbed = victim.predict(1, api_name="/scrub")  # the victim's page still scrubs its own rollout
    assert re.search(r"Step 1 of 1: decoded frames", scrubbed[0])
    second = client(url, "10.7.0.3")
    second.predict(*ONE_STEP, api_name="/run")  # takes the anonymous run's place, not the victim's
    event, data = anonymous_run(url, "10.7.0.2", *EVERY_INPUT)
    assert event == "error" and "the app is busy: all 2 places for rollouts are held by visitors whose pages are open" in data
    assert re.search(r"Step 1 of 1", victim.predict(1, api_name="/scrub")[0])
    with pytest.raises(Exception, match="all 2 places"):
        client(url, "10.7.0.4").predict(*ONE_STEP, api_name="/run")  # a new page is told too
    second.close()  # a page leaves: its place is free again
    wait_for(lambda: demo.mirage_sessions.stats()["rollouts"] == 1, what="the closed page's rollout to go")
    assert anonymous_run(url, "10.7.0.2", *EVERY_INPUT)[0] == "complete"
    victim.close()


def test_uploads_are_bounded_per_visitor_and_for_the_server_and_freed_with_the_session(small_server):
    demo, url = small_server
    ledger = demo.mirage_uploads
    before = ledger.held()
    accepted = [post_upload(url, "10.8.0.1", f"photo{i}.png", 24 * MB) for i in range(4)]  # no session at all
    assert all(r.status_code == 200 for r in accepted)
    refused = post_upload(url, "10.8.0.1", "photo4.png", 24 * MB)
    assert refused.status_code == 413 and "one visitor's hold at most 100 MB" in refused.text
    assert ledger.held("10.8.0.1") == 96 * MB and ledger.held() == before + 96 * MB
    assert post_upload(url, "10.8.0.2", "mine.png", MB).status_code == 200  # another visitor is not held up
    # uploads a session uses go with it: a photo run by a page, then the page closes
    from mirage_viz.scenes.photo import sample_photos

    page = client(url, "10.8.0.3")
    page.predict("room", "pan_left", 10.0, 1, 128, 0, handle_file(str(sample_photos()[1])), api_name="/run")
    assert ledger.held("10.8.0.3") > 0
    page.close()
    wait_for(lambda: ledger.held("10.8.0.3") == 0, what="the closed page's upload to go")
    ledger.unclaimed_ttl_s = 0.01  # and those no session used, after their time (minutes on a Space)
    time.sleep(0.05)
    ledger.sweep()
    assert ledger.held() == before
    ledger.unclaimed_ttl_s = 300.0


def test_messages_escape_what_the_visitor_typed_and_show_no_server_path(small_server, tmp_path, caplog, capfd):
    _, url = small_server
    visitor_client = client(url, "10.9.0.1")
    with pytest.raises(Exception) as error:
        visitor_client.predict(*ONE_STEP, None, 0.0, "embedded", "<img src=x onerror=alert(1)>", "", "", 3.0,
                               api_name="/run")
    assert "&lt;img src=x onerror=alert(1)&gt;" in str(error.value) and "<img" not in str(error.value)
    bad_bench = tmp_path / "my_bench.json"
    bad_bench.write_text("[1, 2")
    with pytest.raises(Exception) as error:
        visitor_client.predict(handle_file(str(bad_bench)), api_name="/bench")
    assert "my_bench.json" in str(error.value) and "/tmp" not in str(error.value) and "gradio" not in str(error.value)
    (tmp_path / "cameras.txt").write_text("1 PINHOLE 64 64 nan 50 32 32\n")
    (tmp_path / "images.txt").write_text("1 1 0 0 0 0 0 0 1 a.png\n\n")
    colmap = [handle_file(str(tmp_path / name)) for name in ("cameras.txt", "images.txt")]
    with pytest.raises(Exception) as error:
        visitor_client.predict(*ONE_STEP, None, 0.0, "embedded", "", "", "", 3.0, False, colmap, api_name="/run")
    assert "camera file" in str(error.value) and "mirage_viz-colmap" not in str(error.value)
    assert "/tmp" not in str(error.value)
    # the server's log: one line for each refusal, no traceback
    err = capfd.readouterr().err
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("mirage_viz refused")]
    assert len(refusals) == 3 and "Traceback" not in err
    visitor_client.close()


def test_previous_downloads_stay_valid_while_the_next_run_computes(small_server):
    demo, url = small_server
    page = gradio_client.Client(url, headers=visitor("10.10.0.1"), verbose=False, download_files=False)
    first = page.predict(*ONE_STEP, api_name="/run")
    link = next(d["url"] for d in first[6] if d["orig_name"] == "summary.json")  # the link the page shows
    assert httpx.get(link).status_code == 200
    job = page.submit("room", "loop", 0.0, 6, 128, 0, api_name="/run")
    wait_for(lambda: len(job.outputs()) >= 2, what="the next run to compute")
    assert httpx.get(link).status_code == 200  # the old link still answers while the new run computes
    outputs = job.result(timeout=180)
    assert any(d["orig_name"] == "summary.json" and d["url"] != link for d in outputs[6])
    wait_for(lambda: httpx.get(link).status_code != 200, what="the old downloads to go once replaced")
    page.close()
