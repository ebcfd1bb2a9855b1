"""The one output writer: what ``mirage-viz rollout --out`` leaves (and the app offers), read back as a user would."""

import errno
import json
import os
import re
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from mirage_viz import outputs
from mirage_viz.outputs import writer
from mirage_viz.cli import main
from mirage_viz.rollout import RolloutConfig, run_rollout
from mirage_viz.outputs.exports import VIDEO_FPS, export_video, read_cache_ply
from mirage_viz.viz.figures import rollout_pca
from mirage_viz.viz.step_view import step_view, step_view_image
from mirage_viz.scenes.trajectories import load_trajectory

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def rollout(backbone):
    return run_rollout(RolloutConfig(trajectory="loop", steps=3, size=64, seed=2), backbone=backbone)


@pytest.fixture(scope="module")
def written(rollout, tmp_path_factory):
    return outputs.write_rollout(rollout, tmp_path_factory.mktemp("outputs") / "run", parts=outputs.OutputParts(gif=True))


def test_the_cli_folder_holds_every_file(tmp_path, backbone, capsys):
    out = tmp_path / "run"
    assert main(["rollout", "--steps", "2", "--size", "64", "--out", str(out), "--quiet"]) == 0
    top = sorted(p.name for p in out.iterdir())
    assert top == [".mirage_viz.json", "cameras", "frames", "latent_cache_step002.ply", "report.html", "rgb_cache_step002.ply",
                   "rollout.mp4", "summary.json", "trajectory.json"]
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["latent", "none", "rgb", "truth"]
    assert "report.html" in capsys.readouterr().out
    marker = json.loads((out / ".mirage_viz.json").read_text())
    assert "rollout.mp4" in marker["files"] and "frames/truth/step_002.png" in marker["files"]


def test_no_video_no_ply_and_gif_choose_the_parts(tmp_path, backbone):
    out = tmp_path / "run"
    assert main(["rollout", "--steps", "1", "--size", "64", "--out", str(out), "--quiet", "--no-video", "--no-ply", "--gif"]) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        ".mirage_viz.json", "report.html", "rollout.gif", "summary.json", "trajectory.json"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["cameras", "frames"]


def test_the_mp4_is_h264_and_decodes_to_one_labelled_frame_per_step(rollout, written):
    with av.open(str(written / "rollout.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == VIDEO_FPS
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    basis = rollout_pca(rollout)
    expected = [step_view_image(step_view(rollout, step, basis), columns=4) for step in range(len(rollout))]
    assert len(frames) == len(rollout) == 4
    assert all(frame.shape == expected[0].shape for frame in frames + expected)
    height, width = expected[0].shape[:2]
    assert height % 2 == 0 and width % 2 == 0 and width >= 4 * 256  # four tiles of 256 px: every memory and the truth
    for frame, picture in zip(frames, expected):  # H.264 at crf 20 keeps each picture (and its labels) close
        assert np.abs(frame.astype(np.float32) - picture.astype(np.float32)).mean() < 6.0
    # the pictures differ from step to step (not one frame repeated), and the labels are drawn in them
    assert np.abs(frames[1].astype(np.float32) - frames[3].astype(np.float32)).mean() > 2.0
    assert (expected[1][:30] > 200).any()  # the heading's white text


def test_the_video_refuses_bad_settings_and_leaves_nothing(rollout, tmp_path):
    with pytest.raises(ValueError, match="must end in .mp4"):
        export_video(rollout, tmp_path / "rollout.avi")
    with pytest.raises(ValueError, match="fps must be a whole number from 1 to 60"):
        export_video(rollout, tmp_path / "rollout.mp4", fps=0)
    assert list(tmp_path.iterdir()) == []


def test_the_caches_read_back_with_open3d_with_their_latent_attributes(rollout, written):
    latent = read_cache_ply(written / "latent_cache_step003.ply")
    points, features = rollout.cache_at("latent", 3)
    assert torch.allclose(latent["positions"], points.float(), atol=1e-6)
    assert latent["latent"].shape == features.shape and torch.allclose(latent["latent"], features.float(), atol=1e-6)
    assert latent["colors"].shape == (points.shape[0], 3) and 0 <= latent["colors"].min() <= latent["colors"].max() <= 1
    rgb = read_cache_ply(written / "rgb_cache_step003.ply")
    assert rgb["positions"].shape[0] == rollout.cache_at("rgb", 3)[0].shape[0] and "latent" not in rgb


def test_the_trajectory_replays_the_cameras_that_ran(rollout, written):
    trajectory = load_trajectory(written / "trajectory.json")
    assert trajectory.steps == 3
    assert torch.equal(trajectory.camera_to_world, torch.stack([c.camera_to_world for c in rollout.cameras]))


def test_the_cameras_that_ran_are_in_every_format_and_read_back_the_same(rollout, written):
    from mirage_viz.scenes.camera_files import read_cameras

    assert sorted(p.name for p in (written / "cameras").iterdir()) == [
        "colmap", "open3d.json", "realestate10k.txt", "transforms.json"]
    ran = torch.stack([c.camera_to_world for c in rollout.cameras])
    for camera_format, relative in [("mirage_viz", "trajectory.json"), *writer.CAMERA_FILES.items()]:
        size = (64, 64) if camera_format == "realestate10k" else None
        read = read_cameras(written / relative, size and camera_format, image_size=size)
        assert torch.allclose(read.camera_to_world.double(), ran.double(), atol=1e-5), camera_format
        assert list(read.intrinsics) == [c.intrinsics for c in rollout.cameras] or all(
            abs(a.fx - b.intrinsics.fx) < 1e-4 and (a.width, a.height) == (64, 64)
            for a, b in zip(read.intrinsics, rollout.cameras, strict=True)), camera_format
    marker = json.loads((written / ".mirage_viz.json").read_text())
    assert "cameras/colmap/images.txt" in marker["files"] and "cameras/transforms.json" in marker["files"]


def test_the_report_is_offline(written):
    page = (written / "report.html").read_text()
    assert not re.search(r"<script[^>]*\ssrc\s*=", page, re.IGNORECASE)  # plotly.js inline, nothing fetched
    markup = re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", page, flags=re.DOTALL | re.IGNORECASE)  # tags only
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup, re.IGNORECASE)  # no remote image or style
    assert page.count('class="mv-step"') == 4 and "warped latent, decoded" in page
    assert page.count("data:image/webp;base64,") >= 4 * 8


def test_the_report_carries_every_cells_trace(rollout, written):
    """A click in report.html answers from the trace the page carries: the engine's own (trace_step) for every cell."""
    import json

    from mirage_viz.rollout.trace import trace_step

    page = (written / "report.html").read_text()
    traces = json.loads(re.search(r'<script type="application/json" id="mv-traces">(.*?)</script>', page, re.DOTALL)[1])
    assert sorted(traces) == ["1", "2", "3"]  # step 0 read no memory
    for step in (1, 3):
        table, trace = traces[str(step)], trace_step(rollout, "latent", step)
        assert (table["rows"], table["cols"]) == (8, 8) and table["latent"]["owner"] == trace.owner.flatten().tolist()
        assert table["latent"]["landed"] == trace.landed.flatten().tolist()
        assert table["rgb"]["pixels"] == 64 and len(table["rgb"]["covered"]) == 64


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is installed by scripts/setup.sh")
def test_the_report_opens_offline_in_chromium_with_its_plots_drawn(written):
    from playwright.sync_api import sync_playwright

    fetched = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.route(re.compile(r"^(?!file:|data:).*"), lambda route: (fetched.append(route.request.url), route.abort()))
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto((written / "report.html").as_uri())
            page.wait_for_selector("#mv-cache .main-svg", timeout=60_000)
            page.wait_for_selector("#mv-metrics .main-svg", timeout=60_000)
            assert page.locator("#mv-cache .gl-container canvas, #mv-cache canvas").count() > 0  # the 3D scene
            assert page.locator("#mv-metrics .scatterlayer .trace").count() >= 3 * 6  # three memories, six charts
            shown = page.locator(".mv-step:not([hidden])")
            assert shown.count() == 1 and "Step 3 of 3" in shown.inner_text()
            assert page.locator(".mv-step:not([hidden]) img").evaluate_all(
                "images => images.every(i => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width >= 200)")
            page.locator("#mv-step").fill("1")  # the slider moves the step view and the 3D view together
            page.wait_for_function("() => document.querySelector('#mv-cache .gtitle').textContent.startsWith('Step 1')")
            assert "Step 1 of 3" in page.locator(".mv-step:not([hidden])").inner_text()
            page.locator(".mv-step:not([hidden]) img").first.click(position={"x": 20, "y": 20})  # trace that cell
            answer = page.locator("#mv-trace").inner_text()
            assert "Step 1, latent cell (0, 0)" in answer and "latent memory:" in answer and "rgb memory:" in answer
            assert errors == [] and fetched == []
        finally:
            browser.close()


def test_a_full_disk_while_writing_is_a_message_and_leaves_no_folder(tmp_path, backbone, monkeypatch, capsys):
    def full(rollout, path, **kwargs):
        Path(path).write_bytes(b"\x00" * 1000)  # part of the file was written when the disk filled up
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(writer, "export_video", full)
    out = tmp_path / "out" / "run"
    assert main(["rollout", "--steps", "1", "--size", "64", "--out", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "No space left on device; nothing was written" in error and "Traceback" not in error
    assert list((tmp_path / "out").iterdir()) == []  # no run, no staging folder


@pytest.mark.parametrize("case", ["not empty", "inside a file", "unwritable"])
def test_an_out_that_cannot_be_used_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch, case):
    if case == "not empty":
        out = tmp_path / "mine"
        out.mkdir()
        (out / "notes.txt").write_text("keep me")
        expected, left = "exists and is not empty", ["mine", "notes.txt"]
    elif case == "inside a file":
        (tmp_path / "file").write_text("keep me")
        out, expected, left = tmp_path / "file" / "run", "which is a file", ["file"]
    else:  # root may write anywhere, so the permission is denied the way the OS would answer a user
        locked = tmp_path / "locked"
        locked.mkdir()
        access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **k: Path(path) != locked and access(path, mode, **k))
        out, expected, left = locked / "run", f"cannot write in {locked} (permission denied)", ["locked"]
    monkeypatch.setattr("mirage_viz.rollout.engine.iter_rollout", lambda *a, **k: pytest.fail("ran before checking --out"))
    assert main(["rollout", "--steps", "1", "--size", "64", "--out", str(out), "--quiet"]) == 2
    assert expected in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == left


def test_the_app_offers_the_writers_files(rollout, tmp_path):
    from mirage_viz.ui.app import _downloads

    files = [Path(f) for f in _downloads(rollout, tmp_path)]
    assert [f.name for f in files] == ["rollout.mp4", "report.html", "summary.json", "trajectory.json", "rollout.gif",
                                       "latent_cache_step003.ply", "rgb_cache_step003.ply", "cameras.zip", "frames.zip"]
    assert all(f.stat().st_size > 0 for f in files)
    shutil.unpack_archive(files[-1], tmp_path / "unzipped")
    assert len(list((tmp_path / "unzipped" / "frames").rglob("*.png"))) == 4 * 4
    shutil.unpack_archive(files[-2], tmp_path / "unzipped")
    assert (tmp_path / "unzipped" / "cameras" / "colmap" / "images.txt").is_file()
