"""The Gradio app driven end to end through its API with gradio_client, as a Space visitor's browser would."""

import json
import re
import time
from pathlib import Path

import pytest

gradio = pytest.importorskip("gradio")
from gradio_client import Client  # noqa: E402

from mirage_viz.app import build_demo, launch  # noqa: E402


@pytest.fixture(scope="module")
def served(backbone):
    demo = build_demo()
    _, url, _ = launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    yield demo, url
    demo.close()
    demo.mirage_sessions.shutdown()


@pytest.fixture(scope="module")
def app_url(served):
    return served[1]


def wait_for(condition, timeout=60.0, what="the condition"):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def idle(demo) -> bool:
    """No rollout runs or waits (a cancelled run finishes its current steps on the server first)."""
    return demo.mirage_sessions.stats()["running"] == 0


def test_run_streams_a_rollout_and_leaves_downloads(app_url):
    client = Client(app_url, verbose=False)
    job = client.submit("room", "move_right", 0.0, 2, 128, 0, api_name="/run")
    outputs = job.result(timeout=120)
    statuses = [o[6] for o in job.outputs()]
    assert any(s.startswith("Step 0 of 2") for s in statuses) and statuses[-1].startswith("Done: 2 steps")
    cache, panels, frames, metrics, table, slider, status, downloads = outputs
    assert table["headers"][0] == "memory" and [row[0] for row in table["data"]] == ["latent", "rgb", "none"]
    names = sorted(Path(d).name for d in downloads)
    assert names == ["latent_cache_step002.ply", "rgb_cache_step002.ply", "rollout.gif", "summary.json"]
    summary = json.loads(Path(next(d for d in downloads if d.endswith("summary.json"))).read_text())
    assert len(summary["memories"]["latent"]["steps"]) == 3
    # The 3D plot carries the PCA-coloured latent cache.
    figure = json.loads(cache["plot"])
    assert any(trace.get("name", "").startswith("latent cache") for trace in figure["data"])

    # Scrubbing back in the same session redraws step 0 from this session's own rollout.
    scrubbed = client.predict(0, api_name="/scrub")
    assert [row[1] for row in scrubbed[4]["data"]] == [0, 0, 0]


def test_sessions_keep_their_own_rollouts(app_url):
    first, second = Client(app_url, verbose=False), Client(app_url, verbose=False)
    first.predict("room", "push_in", 0.0, 1, 128, 0, api_name="/run")
    second.predict("studio", "pan_left", 0.0, 2, 128, 3, api_name="/run")
    assert [row[1] for row in first.predict(1, api_name="/scrub")[4]["data"]] == [1, 1, 1]
    assert [row[1] for row in second.predict(2, api_name="/scrub")[4]["data"]] == [2, 2, 2]
    assert second.predict(2, api_name="/scrub")[2] != first.predict(1, api_name="/scrub")[2]  # other frames
    fresh = Client(app_url, verbose=False)
    assert fresh.predict(0, api_name="/scrub")[4]["data"] in ([], [[]])  # nothing of the others reaches it


@pytest.mark.parametrize(
    "args, message",
    [
        (("room", "spiral", 0.0, 2, 128, 0), "spiral is not in the list of choices"),
        (("room", "loop", -1.0, 2, 128, 0), "less than minimum value 0"),
        (("room", "loop", 0.0, 0, 128, 0), "less than minimum value 1"),
        (("room", "loop", 0.0, 2.5, 128, 0), "steps must be a whole number"),
        (("room", "loop", 0.0, 2, 100, 0), "not in the list of choices: \\[128, 256\\]"),
        (("castle", "loop", 0.0, 2, 128, 0), "castle is not in the list of choices"),
    ],
)
def test_bad_input_gets_a_message_and_the_server_survives(app_url, args, message):
    client = Client(app_url, verbose=False)
    with pytest.raises(Exception, match=message):
        client.predict(*args, api_name="/run")
    assert client.predict("room", "push_in", 0.0, 1, 128, 0, api_name="/run")[6].startswith("Done")


def test_one_rollout_per_session_scrub_mid_run_and_abandon_a_run_the_server_survives(app_url):
    client = Client(app_url, verbose=False)
    first = client.submit("room", "loop", 0.0, 6, 128, 0, api_name="/run")
    wait_for(first.outputs, what="the first step")
    with pytest.raises(Exception, match="a rollout of this session is still running"):
        client.predict("room", "push_in", 0.0, 2, 128, 1, api_name="/run")  # Run pressed again: refused, not doubled
    # Scrub while the run streams: answers from the steps it has, never fails.
    scrubbed = client.predict(0, api_name="/scrub")
    assert [row[1] for row in scrubbed[4]["data"]] == [0, 0, 0]
    assert first.result(timeout=120)[6].startswith("Done: 6 steps")
    assert client.predict("room", "push_in", 0.0, 2, 128, 1, api_name="/run")[6].startswith("Done: 2 steps")
    third = client.submit("room", "loop", 0.0, 6, 128, 0, api_name="/run")
    third.cancel()  # the visitor closes the tab mid-run
    other = Client(app_url, verbose=False)
    assert other.predict("studio", "pan_right", 0.0, 1, 128, 0, api_name="/run")[6].startswith("Done: 1 steps")


def test_stop_over_the_api_ends_the_run_on_the_server_and_keeps_what_ran(served):
    demo, url = served
    client = Client(url, verbose=False)
    wait_for(lambda: idle(demo), what="an idle server")
    job = client.submit("room", "loop", 0.0, 40, 128, 0, api_name="/run")
    wait_for(job.outputs, what="the first step")
    assert client.predict(api_name="/stop") == "Stopping after the current step..."
    outputs = job.result(timeout=60)
    assert re.match(r"Stopped after step (\d+) of 40", outputs[6]) and int(re.match(r"Stopped after step (\d+)", outputs[6])[1]) < 10
    assert any(d.endswith("summary.json") for d in outputs[7])  # the steps that ran can be downloaded
    assert client.predict(api_name="/stop") == "Nothing is running."


def test_the_line_is_bounded_busy_visitors_are_told_and_stop_works_while_waiting(served):
    demo, app_url = served
    wait_for(lambda: idle(demo), what="an idle server")
    clients = [Client(app_url, verbose=False) for _ in range(7)]
    jobs = []
    for client in clients:  # 2 run, 4 wait in line, the 7th is told the app is busy
        jobs.append(client.submit("room", "loop", 0.0, 48, 128, 0, api_name="/run"))
        time.sleep(0.3)
    with pytest.raises(Exception, match=r"the app is busy: 2 rollout\(s\) running and 4 waiting"):
        jobs[-1].result(timeout=60)
    wait_for(jobs[5].outputs, what="the last one in line to hear its place")
    assert "Waiting for a free slot" in jobs[5].outputs()[-1][6]
    for client in clients[:6]:  # Stop reaches the running and the waiting alike
        assert client.predict(api_name="/stop").startswith("Stopping")
    statuses = [job.result(timeout=120)[6] for job in jobs[:6]]
    assert sum(s.startswith("Stopped after step") for s in statuses) == 2
    assert sum(s == "Stopped before it started." for s in statuses) == 4
    for client in clients:
        client.close()


def test_a_session_that_ends_frees_its_rollout_and_downloads(served):
    demo, url = served
    sessions = demo.mirage_sessions
    client = Client(url, verbose=False)
    client.predict("room", "push_in", 0.0, 1, 128, 0, api_name="/run")
    folders = [p for p in sessions.export_root.iterdir()]
    assert folders and all(any(f.iterdir()) for f in folders)
    client.close()  # the heartbeat ends: Gradio's unload runs
    deadline = time.time() + 30
    while time.time() < deadline and any(f.exists() for f in folders):
        time.sleep(0.2)
    assert not any(f.exists() for f in folders)


def test_visitors_cannot_load_server_paths_and_uploads_are_capped(app_url, tmp_path):
    from gradio_client import handle_file

    from mirage_viz.photo import sample_photos

    client = Client(app_url, verbose=False)
    photo = handle_file(str(sample_photos()[0]))
    messages = set()
    for path in ("/etc", "/etc/passwd", "/no/such/folder", "/work"):
        with pytest.raises(Exception) as error:
            client.predict("room", "pan_left", 10.0, 1, 128, 0, photo, 0.0, path, "", "", "", 3.0, api_name="/run")
        messages.add(str(error.value).replace(path, "X"))
    assert len(messages) == 1 and "loads models by hub id" in messages.pop()  # the same answer, exists or not
    # assets/vae is the embedded VAE's folder next to the server: a visitor's "assets/vae" is a hub id, never that folder
    status = client.predict("room", "push_in", 0.0, 1, 128, 0, photo, 0.0, "embedded", "assets/vae", "", "", 3.0,
                            api_name="/run")[6]
    assert "VAE 'assets/vae' (hub id) could not be loaded" in status
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(26 * 2**20))
    with pytest.raises(Exception, match="(?i)file size|too large|exceeds|413"):
        client.predict("room", "push_in", 0.0, 1, 128, 0, handle_file(str(big)), api_name="/run")
    assert client.predict("room", "push_in", 0.0, 1, 128, 0, api_name="/run")[6].startswith("Done")


def test_benchmark_tab_shows_the_shipped_run_and_refuses_a_bad_file(app_url, tmp_path):
    from gradio_client import handle_file

    client = Client(app_url, verbose=False)
    plot, tables = client.predict(None, api_name="/bench")
    assert "## Targets" in tables and "read speedup" in tables
    assert len(json.loads(plot["plot"])["data"]) >= 8
    bad = tmp_path / "bench.json"
    bad.write_text('{"format": "not a benchmark"}')
    with pytest.raises(Exception, match="not a mirage_viz benchmark"):
        client.predict(handle_file(str(bad)), api_name="/bench")
    assert "## Targets" in client.predict(None, api_name="/bench")[1]  # the server still answers


def test_a_photo_runs_as_the_first_frame_and_a_bad_one_gets_a_message(app_url, tmp_path):
    from gradio_client import handle_file

    from mirage_viz.photo import sample_photos

    client = Client(app_url, verbose=False)
    outputs = client.predict("room", "pan_left", 10.0, 1, 128, 0, handle_file(str(sample_photos()[0])), 0.0,
                             "embedded", "", "", "", 3.0, api_name="/run")
    status, downloads = outputs[6], outputs[7]
    assert "First frame: chelsea.png" in status and "depth from embedded" in status
    summary = json.loads(Path(next(d for d in downloads if d.endswith("summary.json"))).read_text())
    assert summary["config"]["photo"] == "chelsea.png" and summary["memories"]["latent"]["steps"][1]["psnr"] is None
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    with pytest.raises(Exception, match="not an image|could not be decoded"):
        client.predict("room", "pan_left", 10.0, 1, 128, 0, handle_file(str(bad)), 0.0, "embedded", "", "", "", 3.0,
                       api_name="/run")
    assert client.predict(None, api_name="/bench")[1].startswith("# mirage_viz benchmark")  # still answering
