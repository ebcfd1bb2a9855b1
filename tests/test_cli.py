import json
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


def test_rollout_from_a_trajectory_file_and_selected_memories(tmp_path, backbone):
    from mirage_viz.scenes.trajectories import make_trajectory

    make_trajectory("orbit_left", 1).save(tmp_path / "t.json")
    out = tmp_path / "run"
    code = main(["rollout", "--trajectory-file", str(tmp_path / "t.json"), "--size", "64", "--memories", "latent,none",
                 "--out", str(out), "--quiet"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["memories"]) == {"latent", "none"} and summary["setup"]["steps"] == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--world", "castle"], "world"),
        (["--trajectory", "spiral"], "trajectory"),
        (["--steps", "0"], "steps"),
        (["--steps", "-2"], "steps"),
        (["--size", "100"], "size"),
        (["--size", "0"], "size"),
        (["--fov", "0"], "fov"),
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


def test_help_explains_every_option():
    result = subprocess.run([sys.executable, "-m", "mirage_viz.cli", "rollout", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for option in ("--world", "--trajectory", "--trajectory-file", "--steps", "--size", "--seed", "--out", "--memories",
                   "--depth", "--depth-mode", "--magnitude", "--no-video", "--no-ply", "--gif"):
        assert option in result.stdout
    assert "loop" in result.stdout and "room" in result.stdout
