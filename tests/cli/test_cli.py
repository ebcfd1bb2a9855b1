import json
import math
import os
import subprocess
import sys

import pytest

from mirage_viz.cli import main


def test_rollout_writes_summary_and_frames(tmp_path, backbone, capsys):
    out = tmp_path / "run"
    assert main(["rollout", "--trajectory", "push_in", "--steps", "2", "--size", "128", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["trajectory"] == "push_in" and summary["config"]["world"] == "room"
    assert set(summary["memories"]) == {"latent", "rgb", "none"}
    for name in ("latent", "rgb", "none"):
        steps = summary["memories"][name]["steps"]
        assert [s["step"] for s in steps] == [0, 1, 2]
        for s in steps:
            assert set(s["timings_ms"]) == {"read", "generate", "decode", "depth", "write"}
            assert isinstance(s["psnr"], float) and isinstance(s["ssim"], float)
            assert s["cache_points"] >= 0 and s["cache_bytes"] >= 0 and 0 <= s["mask_coverage"] <= 1
        assert sorted(p.name for p in (out / "frames" / name).iterdir()) == ["step_000.png", "step_001.png", "step_002.png"]
    assert (out / "frames" / "truth" / "step_002.png").exists()
    assert "mean PSNR" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["paper", "keep what memory holds", "closest to the truth", "sharp and close"])
def test_every_memory_setting_runs_from_the_cli_as_the_app_replays_it(name, tmp_path, backbone, capsys):
    """``--memory-setting NAME`` (the flag the app's replay command prints) runs the setting's options, and the
    decoder it asks for is the one that ran."""
    from mirage_viz.rollout import MEMORY_SETTINGS, RolloutConfig, memory_setting_of
    from mirage_viz.ui.app import _setting_flag

    config = RolloutConfig(size=64, steps=1, memories=("latent",)).with_memory_setting(name)
    flag = _setting_flag(config)
    assert flag == ("" if name == "paper" else f" --memory-setting '{name}'")
    out = tmp_path / "run"
    assert main(["rollout", "--steps", "1", "--size", "64", "--memories", "latent", "--memory-setting", name,
                 "--out", str(out), "--quiet", "--no-video", "--no-ply"]) == 0
    written = json.loads((out / "summary.json").read_text())["config"]
    options = {key: value for group in ("latent", "sampler", "decoder") for key, value in written[group].items()}
    assert {key: options[key] for key in MEMORY_SETTINGS[name].options} == dict(MEMORY_SETTINGS[name].options)
    assert memory_setting_of(RolloutConfig().with_options(**options)) == name
    if name == "sharp and close":
        assert written["backbone"] == "embedded, decoder sharpness 0.6"  # the decoder it asked for is the one that ran
        capsys.readouterr()  # refused before a model loads: a message, no output folder
        assert main(["rollout", "--steps", "1", "--size", "64", "--memory-setting", name, "--vae", "embedded-sharp",
                     "--out", str(tmp_path / "x")]) != 0
        assert "but VAE 'embedded-sharp' would decode" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_a_flag_that_contradicts_the_memory_setting_is_refused(tmp_path, capsys):
    assert main(["rollout", "--steps", "1", "--size", "64", "--memory-setting", "closest to the truth", "--depth-tie-bits",
                 "7", "--out", str(tmp_path / "x")]) == 2
    assert main(["rollout", "--memory-setting", "closest to the truth", "--warp", "subcell", "--steps", "0",
                 "--out", str(tmp_path / "x")]) == 2  # the same value is no contradiction: the next error is
    err = capsys.readouterr().err
    assert "--memory-setting 'closest to the truth' sets depth_tie_bits 0" in err and "but the flags ask for depth_tie_bits 7" in err
    assert "steps must be" in err and not (tmp_path / "x").exists()


def test_rollout_from_a_trajectory_file_and_selected_memories(tmp_path, backbone):
    from mirage_viz.scenes.trajectories import make_trajectory

    make_trajectory("orbit_left", 1).save(tmp_path / "t.json")
    out = tmp_path / "run"
    code = main(["rollout", "--trajectory-file", str(tmp_path / "t.json"), "--size", "64", "--memories", "latent,none",
                 "--out", str(out), "--quiet"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["memories"]) == {"latent", "none"} and summary["setup"]["steps"] == 1


def test_rollout_from_a_posed_sequence_scores_against_its_frames_and_records_its_rules(tmp_path, backbone, capsys):
    from mirage_viz.scenes.sequence import EXAMPLE_SEQUENCE

    out = tmp_path / "run"
    assert main(["rollout", "--sequence", str(EXAMPLE_SEQUENCE), "--steps", "2", "--size", "64", "--depth-model",
                 "embedded", "--memories", "latent,none", "--out", str(out), "--quiet", "--no-video", "--no-ply"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    setup = summary["setup"]
    assert setup["sequence"] == "transforms.json (nerfstudio, 3 frames)" and setup["fov_source"] == "file"
    assert setup["depth_scale"] == 1.0 and setup["depth_scale_rule"].startswith("the depth estimator's own")
    assert isinstance(summary["memories"]["latent"]["steps"][2]["psnr"], float)  # scored against the real frame
    assert set(summary["memories"]["latent"]["consistency"]) == {
        "camera_rotation_error_deg", "camera_direction_error_deg", "camera_matches", "reprojection_error", "flow_agreement"}
    assert "frame_00000.png (256x256) as the first frame, field of view 60.0 degrees (file)" in capsys.readouterr().err
    assert main(["rollout", "--sequence", str(EXAMPLE_SEQUENCE), "--image", str(EXAMPLE_SEQUENCE), "--out",
                 str(tmp_path / "x")]) == 2
    assert "--sequence brings its first frame and its cameras" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main(["rollout", "--sequence", str(tmp_path / "none.json"), "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_a_photo_along_a_camera_file_runs_the_files_intrinsics(tmp_path, backbone, capsys):
    from mirage_viz.geometry.cameras import Camera, Intrinsics
    from mirage_viz.scenes.camera_files import write_cameras
    from mirage_viz.scenes.photo import sample_photos
    from mirage_viz.scenes.trajectories import make_trajectory

    photo = sample_photos()[0]  # chelsea.png, 451 x 300
    k = Intrinsics(fx=300.0, fy=300.0, cx=225.0, cy=149.5, width=451, height=300)  # 73.9 degrees across
    write_cameras([Camera(k, pose) for pose in make_trajectory("pan_left", 1).camera_to_world], tmp_path / "c.json",
                  "mirage_viz")
    out = tmp_path / "run"
    assert main(["rollout", "--image", str(photo), "--trajectory-file", str(tmp_path / "c.json"), "--size", "64",
                 "--depth-model", "embedded", "--memories", "latent", "--out", str(out), "--quiet", "--no-video",
                 "--no-ply"]) == 0
    setup = json.loads((out / "summary.json").read_text())["setup"]
    side = 300  # the photo's centre square: the file's focal length over it
    assert setup["fov_source"] == "file" and setup["fov_degrees"] == pytest.approx(2 * math.degrees(math.atan(side / 2 / 300)))
    assert "(file)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--world", "castle"], "world"),
        (["--trajectory", "helix"], "trajectory"),
        (["--steps", "0"], "steps"),
        (["--steps", "-2"], "steps"),
        (["--size", "100"], "size"),
        (["--size", "0"], "size"),
        (["--fov", "0"], "fov"),
        (["--depth-errors", "blur=3"], "blur"),
        (["--depth", "estimated", "--depth-errors", "noise=0.1"], "true depth"),
        (["--warp", "subcell", "--voxel-size", "0.05"], "flat cache"),
        (["--size", "2048", "--steps", "1"], "size 2048 with 1 step(s): a step is estimated at about"),
    ],
)
def test_bad_input_gets_a_clear_message_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(["rollout", *args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and ("accepted" in err or "must" in err), err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_malformed_trajectory_file_is_refused(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"camera_to_world": [[1, 2]]}')
    out = tmp_path / "run"
    assert main(["rollout", "--trajectory-file", str(bad), "--out", str(out)]) == 2
    assert "trajectory" in capsys.readouterr().err and not out.exists()


def test_bad_memory_list_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["rollout", "--memories", "latent,pixels"])
    assert exit_info.value.code == 2
    assert "latent,rgb,none" in capsys.readouterr().err


def test_non_empty_output_directory_is_left_alone(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["rollout", "--steps", "1", "--size", "64", "--out", str(out), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"


def test_a_failure_while_writing_leaves_no_half_written_directory(tmp_path, backbone, monkeypatch):
    from mirage_viz.outputs import writer as outputs
    from mirage_viz.rollout import RolloutConfig, run_rollout

    rollout = run_rollout(RolloutConfig(steps=1, size=64, memories=("latent",)), backbone=backbone)
    calls = {"n": 0}
    original = outputs.to_uint8_image

    def failing(image):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return original(image)

    monkeypatch.setattr(outputs, "to_uint8_image", failing)
    with pytest.raises(OSError):
        outputs.write_rollout(rollout, tmp_path / "run")
    assert calls["n"] == 2 and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_help_explains_every_option():
    result = subprocess.run([sys.executable, "-m", "mirage_viz.cli", "rollout", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for option in ("--world", "--trajectory", "--trajectory-file", "--steps", "--size", "--seed", "--out", "--memories",
                   "--depth", "--depth-mode", "--magnitude", "--no-video", "--no-ply", "--gif"):
        assert option in result.stdout
    assert "loop" in result.stdout and "room" in result.stdout


# ---- camera files: `mirage-viz cameras convert` and `rollout --trajectory-file` in every format ----------------------


def _captured_path(steps: int = 6):
    """A hand-held-like path with its own intrinsics (a 320x240 capture, fx != fy), as another tool would write it."""
    from mirage_viz.geometry.cameras import Intrinsics
    from mirage_viz.scenes.trajectories import Trajectory, make_trajectory

    k = Intrinsics(300.0, 290.0, 159.5, 119.5, 320, 240)
    poses = make_trajectory("spiral", steps, magnitude=0.4).camera_to_world
    return Trajectory("capture", poses, intrinsics=tuple(k for _ in range(steps + 1)))


def _assert_same_cameras(a, b, scale=(1.0, 1.0)):
    import torch

    assert torch.allclose(a.camera_to_world, b.camera_to_world, atol=1e-5)
    for ka, kb in zip(a.intrinsics, b.intrinsics, strict=True):
        assert (kb.width, kb.height) == (round(ka.width * scale[0]), round(ka.height * scale[1]))
        assert abs(kb.fx - ka.fx * scale[0]) < 1e-4 and abs(kb.fy - ka.fy * scale[1]) < 1e-4


def test_cameras_convert_walks_a_path_through_every_format_and_back(tmp_path, capsys):
    from mirage_viz.scenes.camera_files import CAMERA_FORMATS, read_cameras

    path = _captured_path()
    path.save(tmp_path / "start.json")
    source, source_format = tmp_path / "start.json", "mirage_viz"
    for target_format in (*CAMERA_FORMATS[1:], "mirage_viz"):  # nerfstudio, colmap, realestate10k, open3d, ours
        target = tmp_path / f"{target_format}_{source_format}"
        args = ["cameras", "convert", str(source), str(target), "--to", target_format]
        if source_format == "realestate10k":
            args += ["--image-size", "320x240"]  # a RealEstate10K file keeps no image size
        assert main(args) == 0, capsys.readouterr().err
        assert "wrote" in capsys.readouterr().out and target.exists()
        size = (320, 240) if target_format == "realestate10k" else None
        _assert_same_cameras(path, read_cameras(target, target_format, image_size=size))
        source, source_format = target, target_format
    assert source_format == "mirage_viz"


def test_cameras_convert_scales_subsamples_and_refuses_without_writing(tmp_path, capsys):
    from mirage_viz.scenes.camera_files import read_cameras

    path = _captured_path(8)
    path.save(tmp_path / "start.json")
    out = tmp_path / "transforms.json"
    assert main(["cameras", "convert", str(tmp_path / "start.json"), str(out), "--to", "nerfstudio", "--steps", "4",
                 "--image-size", "640x360"]) == 0
    read = read_cameras(out)
    _assert_same_cameras(path.subsample(4), read, scale=(2.0, 1.5))
    before = out.read_bytes()
    for args, message in (
        ([str(tmp_path / "start.json"), str(out), "--to", "colmap"], "exists and is not a folder; accepted"),
        ([str(tmp_path / "start.json"), str(out), "--to", "nerfstudio"], "exists; give another OUT, or --overwrite"),
        ([str(tmp_path / "missing.json"), str(tmp_path / "x"), "--to", "colmap"], "missing.json"),
        ([str(tmp_path / "start.json"), str(tmp_path / "x"), "--to", "open3d", "--steps", "9"], "subsamples to 1 to 8"),
        ([str(tmp_path / "start.json"), str(tmp_path / "x"), "--to", "open3d", "--fov", "0"], "fov"),
    ):
        assert main(["cameras", "convert", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    truncated = tmp_path / "truncated.txt"
    truncated.write_text("https://www.youtube.com/watch?v=x\n0 0.5 0.5 0.5 0.5 0 0 1 0 0 0 0 1 0 0\n")
    assert main(["cameras", "convert", str(truncated), str(tmp_path / "x"), "--to", "open3d"]) == 2
    assert "line 2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["cameras", "convert", str(tmp_path / "start.json"), str(tmp_path / "x"), "--to", "blender"])
    assert exit_info.value.code == 2 and "nerfstudio" in capsys.readouterr().err
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "start.json", "transforms.json", "truncated.txt"]
    assert main(["cameras", "convert", str(tmp_path / "start.json"), str(out), "--to", "nerfstudio", "--overwrite"]) == 0
    _assert_same_cameras(path, read_cameras(out))


def test_a_rollout_runs_a_colmap_capture_subsampled_with_its_intrinsics(tmp_path, backbone):
    from mirage_viz.scenes.camera_files import write_cameras

    path = _captured_path(20)
    write_cameras(path.cameras(path.intrinsics[0]), tmp_path / "sparse", "colmap", name="capture")
    out = tmp_path / "run"
    assert main(["rollout", "--trajectory-file", str(tmp_path / "sparse" / "images.txt"), "--steps", "2", "--size", "64",
                 "--memories", "none", "--no-video", "--no-ply", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["setup"]["steps"] == 2 and summary["setup"]["fov_source"] == "file"
    ran = json.loads((out / "trajectory.json").read_text())
    wanted = path.subsample(2)
    assert ran["intrinsics"][0]["fx"] == pytest.approx(300.0 * 64 / 320) and len(ran["camera_to_world"]) == 3
    import torch

    assert torch.allclose(torch.tensor(ran["camera_to_world"]), wanted.camera_to_world.float(), atol=1e-5)


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_cameras_convert_overwrites_only_a_camera_file_of_the_same_format(tmp_path, capsys):
    source, out = tmp_path / "start.json", tmp_path / "transforms.json"
    _captured_path().save(source)

    def convert(*extra):
        return main(["cameras", "convert", str(source), str(out), "--to", "nerfstudio", *extra])

    assert convert() == 0 and convert("--overwrite") == 0  # a nerfstudio file: replaced
    assert main(["cameras", "convert", str(source), str(tmp_path / "o3d.json"), "--to", "open3d"]) == 0
    capsys.readouterr()
    out.unlink()
    for make, message in (
            (lambda: out.write_text("my notes"), "is not a nerfstudio camera file"),
            (lambda: out.write_bytes((tmp_path / "o3d.json").read_bytes()), "is not a nerfstudio camera file"),
            (lambda: out.symlink_to(tmp_path / "o3d.json"), "is a symbolic link"),
            (lambda: out.mkdir(), "is a folder")):
        make()
        before = out.read_bytes() if out.is_file() else None
        assert convert("--overwrite") == 2
        err = capsys.readouterr().err
        assert message in err and "accepted: a new path, or with --overwrite a nerfstudio camera file" in err, err
        assert (out.read_bytes() if out.is_file() else None) == before and _hidden(tmp_path) == []
        out.rmdir() if out.is_dir() and not out.is_symlink() else out.unlink()
    assert (tmp_path / "o3d.json").is_file()


def test_cameras_convert_to_colmap_replaces_only_a_folder_it_wrote(tmp_path, capsys):
    from mirage_viz.outputs import MARKER
    from mirage_viz.scenes.camera_files import read_cameras

    source, path = tmp_path / "start.json", _captured_path()
    path.save(source)
    users = tmp_path / "users_model"  # not ours: a folder named cameras.txt, the user's files in it
    (users / "cameras.txt").mkdir(parents=True)
    (users / "cameras.txt" / "notes.txt").write_text("mine")
    (users / "images.txt").write_text("mine")

    def convert(out, *extra):
        return main(["cameras", "convert", str(source), str(out), "--to", "colmap", *extra])

    assert convert(users, "--overwrite") == 2
    err = capsys.readouterr().err
    assert f"no {MARKER} marker" in err and "leaves it alone" in err and "Traceback" not in err
    assert (users / "cameras.txt" / "notes.txt").read_text() == "mine" and (users / "images.txt").read_text() == "mine"
    assert sorted(os.listdir(users)) == ["cameras.txt", "images.txt"] and _hidden(tmp_path) == []
    model = tmp_path / "sparse"
    assert convert(model) == 0 and (model / MARKER).is_file()
    _assert_same_cameras(path, read_cameras(model))
    assert convert(model) == 2 and "--overwrite" in capsys.readouterr().err
    assert convert(model, "--overwrite") == 0
    (model / "undistorted").mkdir()  # the user's, empty
    assert convert(model, "--overwrite") == 2 and "did not write (undistorted/)" in capsys.readouterr().err
    assert (model / "undistorted").is_dir() and _hidden(tmp_path) == []
    assert convert(tmp_path / "cameras.txt") == 2 and "a COLMAP model is a folder" in capsys.readouterr().err


def test_cameras_convert_to_colmap_failing_at_the_last_step_leaves_the_old_model_as_it_says(tmp_path, capsys,
                                                                                             monkeypatch):
    source, model = tmp_path / "start.json", tmp_path / "sparse"
    _captured_path().save(source)
    assert main(["cameras", "convert", str(source), str(model), "--to", "colmap"]) == 0
    before = {p.name: p.read_bytes() for p in model.iterdir()}
    rename = os.rename

    def failing_rename(source_path, destination):
        if ".staging-" in str(source_path):  # the new model, moving into place
            raise OSError("disk full")
        return rename(source_path, destination)

    monkeypatch.setattr(os, "rename", failing_rename)
    assert main(["cameras", "convert", str(source), str(model), "--to", "colmap", "--steps", "2", "--overwrite"]) == 2
    assert "disk full; nothing was written" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in model.iterdir()} == before and _hidden(tmp_path) == []


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "1e9", "lots"])
def test_a_guidance_that_is_not_a_finite_number_in_range_is_a_usage_error(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["rollout", f"--guidance={value}", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "guidance scale must be a finite number in [0, 100]" in err, err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []


def test_the_backbone_refuses_a_guidance_that_is_not_finite_before_anything_loads():
    from mirage_viz.backbone import build_backbone

    for value in (float("nan"), float("inf"), -0.5):
        with pytest.raises(ValueError, match=r"guidance scale must be a finite number in \[0, 100\]"):
            build_backbone(generator="/nonexistent/model", guidance_scale=value)


def test_a_size_this_machine_cannot_hold_is_refused_before_any_model_loads(tmp_path, capsys, monkeypatch):
    import time

    import mirage_viz.cli as cli

    monkeypatch.setattr(cli, "_backbone", lambda *a, **k: pytest.fail("a model loaded before the size was checked"))
    start = time.perf_counter()
    assert main(["rollout", "--size", "2048", "--steps", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "a step is estimated at about 4.1 GB (every step's frames kept) and 71 s on this machine's CPU" in err
    assert "Traceback" not in err
    assert "accepted: " in err and time.perf_counter() - start < 10 and list(tmp_path.iterdir()) == []


def test_a_new_option_is_one_field_and_its_check_and_the_cli_has_its_flag(monkeypatch, tmp_path, capsys):
    """Adding an option to the latent memory's group (here in a subclass) gives ``mirage-viz rollout`` its flag, help
    text, default and check, with nothing else touched."""
    from dataclasses import dataclass, field

    from mirage_viz import cli
    from mirage_viz.memories.latent import LatentOptions
    from mirage_viz.options import option
    from mirage_viz.rollout import config as config_module

    def check_blur(amount: object) -> None:
        if not isinstance(amount, float) or not 0.0 <= amount <= 1.0:
            raise ValueError(f"blur must be a number in [0, 1], got {amount!r}")

    @dataclass(frozen=True)
    class WiderLatentOptions(LatentOptions):
        blur: float = option(0.0, "blur each warped cell by this much", check_blur, metavar="AMOUNT")

    @dataclass(frozen=True)
    class WiderConfig(config_module.RolloutConfig):
        latent: WiderLatentOptions = field(default_factory=WiderLatentOptions)

    monkeypatch.setattr(config_module, "RolloutConfig", WiderConfig)
    with pytest.raises(SystemExit):
        main(["rollout", "--help"])
    assert "--blur AMOUNT" in capsys.readouterr().out.replace("\n  ", " ")
    config = cli._config(cli.build_parser().parse_args(["rollout", "--blur", "0.5", "--warp", "subcell"]))
    assert config.latent == WiderLatentOptions(warp="subcell", blur=0.5) and config.options()["blur"] == 0.5
    assert main(["rollout", "--blur", "2", "--out", str(tmp_path / "x")]) == 2
    assert "error: blur must be a number in [0, 1], got 2.0" in capsys.readouterr().err and not (tmp_path / "x").exists()
