"""The Gradio app driven end to end through its API with gradio_client, as a Space visitor's browser would."""

import html
import itertools
import json
import re
import time
from pathlib import Path

import pytest
import torch

gradio = pytest.importorskip("gradio")
import gradio_client  # noqa: E402

pytestmark = pytest.mark.slow  # runs the app, a browser, a kernel or a build: the full tier only

_ADDRESSES = itertools.count(1)


def visitor(address: str | None = None) -> dict[str, str]:
    """The headers of a visitor at ``address`` (default: a new one), as a Space's proxy names them."""
    if address is None:
        n = next(_ADDRESSES)
        address = f"10.1.{n // 256}.{n % 256}"
    return {"X-Forwarded-For": address}


def Client(url: str, address: str | None = None, **kwargs) -> gradio_client.Client:
    """A gradio_client of a visitor of its own (each test's clients would otherwise share 127.0.0.1's share)."""
    return gradio_client.Client(url, headers=visitor(address), **kwargs)


def text(html_status: str) -> str:
    """The words of a status line (the app sends it as HTML with a progress bar)."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", html_status))).strip()


def view_step(view_html: str) -> int:
    """The step a step view shows."""
    return int(re.search(r"Step (\d+) of \d+: decoded frames", view_html)[1])


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
    statuses = [text(o[5]) for o in job.outputs()]
    assert any(s.startswith("Step 0 of 2") for s in statuses) and statuses[-1].startswith("Done: 2 steps")
    view, cache, metrics, table, slider, status, downloads = outputs
    assert view_step(view) == 2 and view.count("<img") == 11  # 4 frames, 3 error maps, 4 conditioning pictures
    assert "data:image/webp;base64," in view and "warped latent, decoded" in view
    assert table["headers"][0] == "memory" and [row[0] for row in table["data"]] == ["latent", "rgb", "none"]
    assert any(s.startswith("Done: 2 steps. Writing the downloads") for s in statuses)  # the panels come first
    names = [Path(d).name for d in downloads]  # the CLI's output folder, main files first, the frames zipped
    assert names == ["rollout.mp4", "report.html", "summary.json", "trajectory.json", "rollout.gif",
                     "latent_cache_step002.ply", "rgb_cache_step002.ply", "cameras.zip", "frames.zip"]
    import av

    with av.open(downloads[0]) as video:  # the labelled step view, one frame per step
        assert sum(1 for _ in video.decode(video=0)) == 3
    summary = json.loads(Path(next(d for d in downloads if d.endswith("summary.json"))).read_text())
    assert len(summary["memories"]["latent"]["steps"]) == 3
    # The 3D plot carries the PCA-coloured latent cache.
    figure = json.loads(cache["plot"])
    assert any(trace.get("name", "").startswith("latent cache") for trace in figure["data"])

    # Scrubbing back in the same session redraws step 0 from this session's own rollout.
    scrubbed = client.predict(0, api_name="/scrub")
    assert view_step(scrubbed[0]) == 0 and [row[0] for row in scrubbed[3]["data"]] == ["latent", "rgb", "none"]


def test_sessions_keep_their_own_rollouts(app_url):
    first, second = Client(app_url, verbose=False), Client(app_url, verbose=False)
    first.predict("room", "push_in", 0.0, 1, 128, 0, api_name="/run")
    second.predict("studio", "pan_left", 0.0, 2, 128, 3, api_name="/run")
    assert view_step(first.predict(1, api_name="/scrub")[0]) == 1
    assert view_step(second.predict(2, api_name="/scrub")[0]) == 2
    assert second.predict(1, api_name="/scrub")[0] != first.predict(1, api_name="/scrub")[0]  # other frames
    fresh = Client(app_url, verbose=False)
    assert fresh.predict(0, api_name="/scrub")[3]["data"] in ([], [[]])  # nothing of the others reaches it


@pytest.mark.parametrize(
    "args, message",
    [
        (("room", "helix", 0.0, 2, 128, 0), "helix is not in the list of choices"),
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
    assert text(client.predict("room", "push_in", 0.0, 1, 128, 0, api_name="/run")[5]).startswith("Done")


def test_one_rollout_per_session_scrub_mid_run_and_abandon_a_run_the_server_survives(app_url):
    client = Client(app_url, verbose=False)
    first = client.submit("room", "loop", 0.0, 6, 128, 0, api_name="/run")
    # the first output is the "Running step 0" status line; wait for a step's panels (a loaded machine is slow to get there)
    wait_for(lambda: any(isinstance(out[0], str) and "decoded frames" in out[0] for out in first.outputs()), what="the first step")
    with pytest.raises(Exception, match="a rollout of this session is still running"):
        client.predict("room", "push_in", 0.0, 2, 128, 1, api_name="/run")  # Run pressed again: refused, not doubled
    # Scrub while the run streams: answers from the steps it has, never fails.
    scrubbed = client.predict(0, api_name="/scrub")
    assert view_step(scrubbed[0]) == 0
    assert text(first.result(timeout=120)[5]).startswith("Done: 6 steps")
    assert text(client.predict("room", "push_in", 0.0, 2, 128, 1, api_name="/run")[5]).startswith("Done: 2 steps")
    third = client.submit("room", "loop", 0.0, 6, 128, 0, api_name="/run")
    third.cancel()  # the visitor closes the tab mid-run
    other = Client(app_url, verbose=False)
    assert text(other.predict("studio", "pan_right", 0.0, 1, 128, 0, api_name="/run")[5]).startswith("Done: 1 steps")


def test_stop_over_the_api_ends_the_run_on_the_server_and_keeps_what_ran(served):
    demo, url = served
    client = Client(url, verbose=False)
    wait_for(lambda: idle(demo), what="an idle server")
    job = client.submit("room", "loop", 0.0, 40, 128, 0, api_name="/run")
    wait_for(job.outputs, what="the first step")
    assert text(client.predict(api_name="/stop")) == "Stopping after the current step..."
    outputs = job.result(timeout=60)
    assert re.match(r"Stopped after step (\d+) of 40", text(outputs[5])) and int(re.match(r"Stopped after step (\d+)", text(outputs[5]))[1]) < 10
    assert any(d.endswith("summary.json") for d in outputs[6])  # the steps that ran can be downloaded
    assert text(client.predict(api_name="/stop")) == "Nothing is running."


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
    assert "Waiting for a free slot" in jobs[5].outputs()[-1][5]
    for client in reversed(clients[:6]):  # Stop reaches the waiting and the running alike (the waiting first, so
        assert text(client.predict(api_name="/stop")).startswith("Stopping")  # no freed slot lets one start)
    statuses = [text(job.result(timeout=120)[5]) for job in jobs[:6]]
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


def test_visitors_can_pick_the_shipped_sharp_decoder(app_url):
    """'embedded-sharp' in the VAE box is the shipped decoder trained for edges: no hub lookup, no fallback notice."""
    client = Client(app_url, verbose=False)
    outputs = client.predict("room", "push_in", 0.0, 1, 128, 0, None, 0.0, "embedded", "embedded-sharp", "", "", 3.0,
                             api_name="/run")
    status = text(outputs[5])
    assert status.startswith("Done") and "Models: vae: embedded-sharp, generator: embedded" in status
    assert "Note:" not in status  # no fallback, no warning about a VAE the generator was not trained with
    summary = json.loads(Path(next(d for d in outputs[6] if d.endswith("summary.json"))).read_text())
    assert summary["config"]["backbone"].startswith("vae: embedded-sharp")


def test_visitors_cannot_load_server_paths_and_uploads_are_capped(app_url, tmp_path):
    from gradio_client import handle_file

    from mirage_viz.scenes.photo import sample_photos

    client = Client(app_url, verbose=False)
    photo = handle_file(str(sample_photos()[0]))
    messages = set()
    for path in ("/etc", "/etc/passwd", "/no/such/folder", "/work"):
        with pytest.raises(Exception) as error:
            client.predict("room", "pan_left", 10.0, 1, 128, 0, photo, 0.0, path, "", "", "", 3.0, api_name="/run")
        messages.add(str(error.value).replace(path, "X"))
    assert len(messages) == 1 and "loads models by hub id" in messages.pop()  # the same answer, exists or not
    # "assets/vae" is shaped like a hub id: a hub id it is (fetched into the cache), never a folder of the server
    status = text(client.predict("room", "push_in", 0.0, 1, 128, 0, photo, 0.0, "embedded", "assets/vae", "", "", 3.0,
                                 api_name="/run")[5])
    assert "VAE 'assets/vae' (hub id) could not be loaded" in status
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(26 * 2**20))
    with pytest.raises(Exception, match="(?i)file size|too large|exceeds|413"):
        client.predict("room", "push_in", 0.0, 1, 128, 0, handle_file(str(big)), api_name="/run")
    assert text(client.predict("room", "push_in", 0.0, 1, 128, 0, api_name="/run")[5]).startswith("Done")


def test_the_memory_setting_keeps_what_memory_holds_and_a_bad_one_gets_a_message(app_url):
    client = Client(app_url, verbose=False)
    returns = {}
    for setting in ("paper", "keep what memory holds", "sharp and close", "closest to the truth"):
        outputs = client.predict(world="room", trajectory="loop", steps=4, size=128, seed=0, memory_setting=setting,
                                 api_name="/run")
        summary = json.loads(Path(next(d for d in outputs[6] if d.endswith("summary.json"))).read_text())
        steps = summary["memories"]["latent"]["steps"]
        returns[setting] = steps[-1]["psnr"] - steps[0]["psnr"]  # the loop's return frame against its first frame
        assert (f"Memory setting: {setting} (" in text(outputs[5])) == (setting != "paper")
        assert summary["config"]["sampler"]["known_cells"] == (setting != "paper")
        if setting == "sharp and close":  # the decoder it asks for is the one that ran
            assert summary["config"]["decoder"]["decoder_sharpness"] == 0.6 and summary["config"]["sampler"]["average_samples"] == 4
            assert summary["config"]["backbone"] == "embedded, decoder sharpness 0.6"
    assert summary["config"]["latent"]["warp"] == "subcell" and summary["config"]["sampler"]["num_inference_steps"] == 1
    assert summary["setup"]["num_inference_steps"] == 1  # what ran, not only what was asked
    # measured at 128 px: the paper's memory loses 2.0 dB on the way back; with seen rays the other three give the first
    # frame back as the VAE reconstructed it (0.0 dB; before seen rays "keep" lost 0.1 and "closest" 0.5)
    assert min(returns[name] for name in ("keep what memory holds", "closest to the truth", "sharp and close")) > -0.01
    assert returns["paper"] < -1.0
    with pytest.raises(Exception, match="'sharp and close' decodes with the embedded VAE's decoder moved towards the "
                                        "sharp one: decoder_sharpness 0.6 .* but VAE 'embedded-sharp' would decode"):
        client.predict(world="room", trajectory="loop", steps=1, size=128, memory_setting="sharp and close",
                       vae="embedded-sharp", api_name="/run")
    # Gradio's Radio answers before the app does; either way the message names what is accepted
    with pytest.raises(Exception, match="'sharpest'.*(paper, keep what memory holds|'paper', 'keep what memory holds')"):
        client.predict(world="room", trajectory="loop", steps=1, size=128, memory_setting="sharpest", api_name="/run")
    client.predict("studio", None, 128, 0, "keep what memory holds", api_name="/drive_start")
    status = text(client.predict(api_name="/drive_forward")[3])  # the replay command keeps the setting
    assert "Memory setting: keep what memory holds" in status
    assert status.endswith("--seed 0 --size 128 --memory-setting 'keep what memory holds'")


def test_a_setting_that_fixes_the_sampler_steps_says_so_with_a_hub_generator():
    from dataclasses import replace

    from mirage_viz.backbone import Backbone
    from mirage_viz.rollout import RolloutConfig
    from mirage_viz.ui.app import _sampler_note

    closest = RolloutConfig().with_memory_setting("closest to the truth")
    embedded = Backbone(vae=None, denoiser=None, depth_estimator=None)
    hub = replace(embedded, generator_name="stable-diffusion-v1-5/stable-diffusion-inpainting", num_inference_steps=20)
    assert _sampler_note(closest, embedded) == "" and _sampler_note(RolloutConfig(), hub) == ""
    note = _sampler_note(closest, hub)
    assert ("runs 1 denoising step per frame, and keeps the mean of 4 draws (each a full run of the generator), as "
            "measured with the embedded generator") in note and "own 20" in note


def test_benchmark_tab_shows_the_shipped_run_and_refuses_a_bad_file(app_url, tmp_path):
    from gradio_client import handle_file

    client = Client(app_url, verbose=False)
    note, *headlines, targets, tables = client.predict(None, api_name="/bench")  # the accordion's label is no output here
    assert note.startswith("Shown: the shipped run") and "read speedup" in targets and "## Speed" in tables
    sentences, plots = headlines[0::2], headlines[1::2]
    assert len(sentences) == len(plots) == 3
    assert sentences[0].startswith("#### How fast each memory is read") and "x faster" in sentences[0]
    assert all(len(json.loads(plot["plot"])["data"]) >= 3 for plot in plots)
    bad = tmp_path / "bench.json"
    bad.write_text('{"format": "not a benchmark"}')
    with pytest.raises(Exception, match="not a mirage_viz benchmark"):
        client.predict(handle_file(str(bad)), api_name="/bench")
    assert "read speedup" in client.predict(None, api_name="/bench")[-2]  # the server still answers


def test_a_photo_runs_as_the_first_frame_and_a_bad_one_gets_a_message(app_url, tmp_path):
    from gradio_client import handle_file

    from mirage_viz.scenes.photo import sample_photos

    client = Client(app_url, verbose=False)
    outputs = client.predict("room", "pan_left", 10.0, 1, 128, 0, handle_file(str(sample_photos()[0])), 0.0,
                             "embedded", "", "", "", 3.0, api_name="/run")
    status, downloads = text(outputs[5]), outputs[6]
    assert "First frame: chelsea.png" in status and "depth from embedded" in status
    summary = json.loads(Path(next(d for d in downloads if d.endswith("summary.json"))).read_text())
    assert summary["setup"]["photo"] == "chelsea.png" and summary["memories"]["latent"]["steps"][1]["psnr"] is None
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    with pytest.raises(Exception, match="not an image|could not be decoded"):
        client.predict("room", "pan_left", 10.0, 1, 128, 0, handle_file(str(bad)), 0.0, "embedded", "", "", "", 3.0,
                       api_name="/run")
    assert client.predict(None, api_name="/bench")[0].startswith("Shown: the shipped run")  # still answering


def test_posed_footage_runs_scored_against_its_frames_and_cannot_name_a_server_path(app_url, tmp_path):
    from gradio_client import handle_file

    from mirage_viz.ui.app import FOOTAGE

    client = Client(app_url, verbose=False)
    (label,) = FOOTAGE
    outputs = client.predict(world="room", trajectory="loop", steps=2, size=128, seed=0, depth_model="embedded",
                             footage=label, api_name="/run")
    status, downloads = text(outputs[5]), outputs[6]
    assert "Footage: transforms.json (nerfstudio, 3 frames)" in status and "scored against its real frames" in status
    summary = json.loads(Path(next(d for d in downloads if d.endswith("summary.json"))).read_text())
    assert summary["setup"]["first_frame"] == "sequence" and summary["setup"]["fov_source"] == "file"
    step = summary["memories"]["latent"]["steps"][2]
    assert isinstance(step["psnr"], float) and isinstance(step["consistency"]["flow_agreement"], float)
    assert "reprojection" in outputs[0]  # the step view's captions carry the scores that need no truth
    for footage in ("/etc/passwd", "../transforms.json"):
        with pytest.raises(Exception, match="unknown footage|is not in the list of choices"):  # Gradio's or the app's
            client.predict(world="room", trajectory="loop", steps=1, size=128, footage=footage, api_name="/run")
    photo = handle_file(str(Path(__file__).resolve().parents[2] / "mirage_viz" / "assets" / "photos" / "chelsea.png"))
    with pytest.raises(Exception, match="posed footage brings its first frame and its cameras"):
        client.predict(world="room", trajectory="loop", steps=1, size=128, photo_path=photo, footage=label, api_name="/run")
    # a visitor's own footage, zipped: as the shipped one, subsampled to the steps asked for
    import zipfile

    shipped = FOOTAGE[label].parent
    with zipfile.ZipFile(tmp_path / "mine.zip", "w") as archive:
        for path in sorted(shipped.rglob("*")):
            if path.is_file():
                archive.write(path, f"capture/{path.relative_to(shipped).as_posix()}")
    outputs = client.predict(world="room", trajectory="loop", steps=1, size=128, depth_model="embedded",
                             footage_zip=handle_file(str(tmp_path / "mine.zip")), api_name="/run")
    summary = json.loads(Path(next(d for d in outputs[6] if d.endswith("summary.json"))).read_text())
    assert summary["setup"]["sequence"] == "transforms.json (nerfstudio, 2 frames)"
    (tmp_path / "bad.zip").write_bytes(b"PK not really")
    with pytest.raises(Exception, match="footage: bad.zip is not a zip file"):
        client.predict(world="room", trajectory="loop", steps=1, size=128, footage_zip=handle_file(str(tmp_path / "bad.zip")),
                       api_name="/run")


def drive_state(outputs) -> tuple[int, int]:
    """(step, latent cache points) from a drive press's status line."""
    found = re.search(r"Step (\d+) of at most 48; the latent cache holds ([\d,]+) points", text(outputs[3]))
    return int(found[1]), int(found[2].replace(",", ""))


def test_drive_moves_undoes_returns_and_downloads_a_path_that_loads(app_url):
    from mirage_viz.scenes.trajectories import load_trajectory

    client = Client(app_url, verbose=False)
    with pytest.raises(Exception, match="No drive yet: choose a world"):
        client.predict(api_name="/drive_forward")
    start = client.predict("studio", None, 128, 3, api_name="/drive_start")
    assert drive_state(start) == (0, 256) and view_step(start[0]) == 0 and start[4] is None
    with pytest.raises(Exception, match="nothing to undo"):
        client.predict(api_name="/drive_undo")
    states = [drive_state(client.predict(api_name=f"/drive_{move}")) for move in ("forward", "turn_left", "right")]
    assert states == [(1, 512), (2, 768), (3, 1024)]  # every step lifts the 16 x 16 latent cells of its frame
    assert drive_state(client.predict(api_name="/drive_undo")) == (2, 768)
    back = client.predict(api_name="/drive_back_to_start")
    assert drive_state(back) == (3, 1024) and view_step(back[0]) == 3
    assert "--trajectory-file drive_trajectory.json --world studio --seed 3 --size 128" in text(back[3])
    path = load_trajectory(back[4])
    assert path.steps == 3 and torch.allclose(path.camera_to_world[-1], torch.eye(4))  # the revisit: the start pose
    table = back[2]
    assert [row[0] for row in table["data"]] == ["latent", "rgb", "none"]
    assert table["data"][0][table["headers"].index("cells covered")] == "100%"
    assert table["data"][0][table["headers"].index("flow agrees")] is None  # a press answers with its frames first
    plot, table = client.predict(api_name="/drive_scores")  # then the scores that need no truth, and the 3D caches
    assert isinstance(table["data"][0][table["headers"].index("flow agrees")], float)
    assert "Step 3: the caches in 3D" in json.dumps(plot)
    again = client.predict(api_name="/drive_scores")  # drawn once per press, however often asked
    assert again == ({"__type__": "update"}, {"__type__": "update"})
    assert drive_state(client.predict(api_name="/drive_reset")) == (0, 256)


def test_drive_refuses_bad_presses_keeps_its_state_and_sessions_apart(app_url, tmp_path):
    from gradio_client import handle_file

    first, second = Client(app_url, verbose=False), Client(app_url, verbose=False)
    first.predict("room", None, 128, 0, api_name="/drive_start")
    first.predict(api_name="/drive_forward")
    second.predict("studio", None, 128, 1, api_name="/drive_start")
    for _ in range(3):
        second.predict(api_name="/drive_turn_left")
    assert drive_state(first.predict(api_name="/drive_turn_right")) == (2, 768)  # the other session's steps unseen
    for presses in range(1, 30):  # rise until the ceiling stops the camera
        try:
            first.predict(api_name="/drive_up")
        except Exception as error:  # noqa: BLE001 - the refusal is the point
            assert "would stand at" in str(error) and "outside the 'room' room" in str(error)
            break
    else:
        pytest.fail("the camera rose through the ceiling")
    assert drive_state(first.predict(api_name="/drive_down")) == (presses + 2, 256 * (presses + 3))  # state intact
    with pytest.raises(Exception, match=r"not in the list of choices: \[128, 256\]"):
        first.predict("room", None, 64, 0, api_name="/drive_start")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    with pytest.raises(Exception, match="not an image|could not be decoded"):
        first.predict("room", handle_file(str(bad)), 128, 0, api_name="/drive_start")
    assert drive_state(first.predict(api_name="/drive_undo"))[0] == presses + 1  # the failed starts changed nothing
    running = second.submit("room", "loop", 0.0, 20, 128, 0, api_name="/run")
    wait_for(running.outputs, what="the rollout's first step")
    with pytest.raises(Exception, match="still running"):
        second.predict(api_name="/drive_forward")  # one thing at a time per visitor
    assert text(second.predict(api_name="/stop")).startswith("Stopping")
    running.result(timeout=120)
    assert drive_state(second.predict(api_name="/drive_forward")) == (4, 1280)


def test_the_preview_shows_the_cameras_the_run_uses(app_url):
    client = Client(app_url, verbose=False)
    views, plot = client.predict("studio", "orbit_left", 0.0, 4, 128, 2, None, 0.0, True, None, api_name="/preview")
    assert "Path preview: orbit_left+back_to_start, 4 steps in studio (seed 0)" in text(views)
    assert views.count("<img") == 2 and "true view at the last camera (step 4)" in views
    figure = json.loads(plot["plot"])
    names = [trace.get("name", "") for trace in figure["data"]]
    assert names[0].startswith("first frame (true depth): 6,000 points") and "last camera (step 4)" in names
    path = next(trace for trace in figure["data"] if trace["name"] == "the path")
    outputs = client.predict("studio", "orbit_left", 0.0, 4, 128, 2, None, 0.0, "embedded", "", "", "", 3.0, True, None,
                             api_name="/run")
    ran = json.loads(Path(next(d for d in outputs[6] if d.endswith("trajectory.json"))).read_text())["camera_to_world"]
    centres = [(pose[0][3], pose[2][3], -pose[1][3]) for pose in ran]  # plotted as (x, z, -y)
    plotted = list(zip(*(decoded(path[axis]) for axis in "xyz")))
    assert len(plotted) == 5 and all(abs(a - b) < 1e-5 for p, q in zip(plotted, centres, strict=True) for a, b in zip(p, q))
    bad_views, bad_plot = client.predict("room", "zoom_out", 9.0, 4, 128, 0, None, 0.0, False, None, api_name="/preview")
    assert "This path cannot run:" in text(bad_views) and "fields of view in [10, 150]" in text(bad_views) and bad_plot is None


def decoded(values):
    """A plotly array sent as a typed array ({"dtype", "bdata"}) or as a list."""
    import base64

    import numpy as np

    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return values


def test_an_uploaded_camera_file_runs_with_its_intrinsics_and_a_bad_one_is_refused(app_url, tmp_path):
    from gradio_client import handle_file

    from mirage_viz.geometry.cameras import Intrinsics
    from mirage_viz.scenes.camera_files import write_cameras
    from mirage_viz.scenes.trajectories import make_trajectory

    path = make_trajectory("move_left", 6, magnitude=0.6)
    cameras = path.cameras(Intrinsics(300.0, 300.0, 159.5, 119.5, 320, 240))  # 56 x 44 degrees
    write_cameras(cameras, tmp_path / "transforms.json", "nerfstudio", name="capture")
    write_cameras(cameras, tmp_path / "colmap", "colmap")
    client = Client(app_url, verbose=False)
    upload = [handle_file(str(tmp_path / "transforms.json"))]
    views, _ = client.predict("room", "loop", 0.0, 3, 128, 0, None, 0.0, False, upload, api_name="/preview")
    assert "Path preview: custom, 3 steps in room" in text(views)  # 6 steps picked down to the 3 asked for
    outputs = client.predict("room", "loop", 0.0, 3, 128, 0, None, 0.0, "embedded", "", "", "", 3.0, False, upload,
                             api_name="/run")
    summary = json.loads(Path(next(d for d in outputs[6] if d.endswith("summary.json"))).read_text())
    assert summary["setup"]["fov_source"] == "file" and summary["setup"]["steps"] == 3
    assert abs(summary["setup"]["fov_degrees"] - cameras[0].intrinsics.fov_x_degrees) < 1e-4
    colmap = [handle_file(str(tmp_path / "colmap" / name)) for name in ("images.txt", "cameras.txt")]
    views, plot = client.predict("room", "loop", 0.0, 6, 128, 0, None, 0.0, False, colmap, api_name="/preview")
    assert "custom, 6 steps in room" in text(views) and plot is not None
    bad = tmp_path / "transforms.json"
    bad.write_text(json.dumps({"frames": [{"transform_matrix": [[1, 0, 0, 0]] * 4}] * 2, "fl_x": 100, "w": 64, "h": 64,
                               "cx": 32, "cy": 32}))
    with pytest.raises(Exception, match="camera file: .*frames\\[0\\]"):
        client.predict("room", "loop", 0.0, 3, 128, 0, None, 0.0, "embedded", "", "", "", 3.0, False,
                       [handle_file(str(bad))], api_name="/run")
    for path in ("/etc/passwd", "/work"):  # a server path is never read as a camera file
        with pytest.raises(Exception):
            client.predict("room", "loop", 0.0, 3, 128, 0, None, 0.0, "embedded", "", "", "", 3.0, False, [path],
                           api_name="/run")


def test_benchmark_tab_draws_the_shipped_sweep_with_its_summary():
    from mirage_viz.ui.app import SWEEP_TABLE_COLUMNS, show_sweep

    *figures, table = show_sweep()
    assert len(figures) == 4 and all(len(figure.data) > 0 for figure in figures)
    assert list(table.columns) == SWEEP_TABLE_COLUMNS and len(table) == 40  # 2 paths x 4 depths x (3 memories + 2 pairs)
    latent_vs_none = table[table["memory"] == "latent - none"]
    assert (latent_vs_none["revisit_psnr"] - latent_vs_none["revisit_psnr_ci"] > 0).all()  # what the README says holds
    assert set(table["runs"]) == {27}
