"""Careless and hostile input to the CLI and the Python API: a clear message and exit 2, never a hang or a traceback."""

import json
import os
import threading

import pytest
import torch

from mirage_viz.cli import main
from mirage_viz.rollout import MAX_SEED, RolloutConfig, plan_rollout
from mirage_viz.models.hub import ModelAccess
from mirage_viz.inputs import read_json_file
from mirage_viz.scenes.trajectories import MAX_POSES, MAX_STEPS, Trajectory

ROLLOUT = ["rollout", "--steps", "1", "--size", "64", "--quiet"]
IDENTITY = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]


def run_cli(args, tmp_path, capsys):
    """Run the CLI in a thread that must finish within 60 s (a FIFO read would hang forever)."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", main([*ROLLOUT, *args, "--out", str(tmp_path / "run")])),
                              daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the CLI hung"
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return result["code"], err


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("option", ["--image", "--trajectory-file"])
def test_fifos_devices_and_folders_are_refused_before_reading(tmp_path, capsys, fifo, option):
    for path, kind in ((fifo, "FIFO"), ("/dev/zero", "a device"), (tmp_path, "a folder")):
        code, err = run_cli([option, str(path)], tmp_path, capsys)
        if option == "--trajectory-file" and kind == "a folder":  # a COLMAP folder is a camera file
            assert code == 2 and "a folder without COLMAP's cameras.txt and images.txt; accepted:" in err
        else:
            assert code == 2 and kind in err and "accepted: a regular file" in err
    assert sorted(os.listdir(tmp_path)) == ["pipe"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("[" * 100_000 + "]" * 100_000, "nests deeper than 32 levels"),
        (os.urandom(4096), "not text"),
        (b"\xef\xbb\xbf{", "not valid JSON"),
        (json.dumps({"camera_to_world": [IDENTITY] * (MAX_POSES + 1)}), f"accepted: 2 to {MAX_POSES:,} poses"),
        (json.dumps({"camera_to_world": [IDENTITY, [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 2]]]}), "bottom row"),
    ],
)
def test_trajectory_files_are_bounded(tmp_path, capsys, content, message):
    path = tmp_path / "t.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, err = run_cli(["--trajectory-file", str(path)], tmp_path, capsys)
    assert code == 2 and message in err and not (tmp_path / "run").exists()


def test_a_file_longer_than_a_rollout_runs_subsampled_and_says_so_when_not(tmp_path, capsys):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"camera_to_world": [IDENTITY] * (MAX_STEPS + 2)}))
    args = ["rollout", "--trajectory-file", str(path), "--size", "64", "--quiet", "--out", str(tmp_path / "run")]
    assert main(args) == 2 and not (tmp_path / "run").exists()
    assert f"{MAX_STEPS + 1:,} steps; a rollout runs at most {MAX_STEPS:,}: subsample it (--steps N" in capsys.readouterr().err
    code, err = run_cli(["--trajectory-file", str(path), "--memories", "none", "--no-video", "--no-ply"], tmp_path, capsys)
    assert code == 0 and len(json.loads((tmp_path / "run" / "trajectory.json").read_text())["camera_to_world"]) == 2  # ROLLOUT's --steps 1


def test_json_over_its_size_bound_is_refused_unread(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(" " * 2048)
    with pytest.raises(ValueError, match="accepted: at most"):
        read_json_file(path, "trajectory", max_bytes=1024)


def test_random_bytes_as_a_photo_get_a_message(tmp_path, capsys):
    path = tmp_path / "noise.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(5000))
    code, err = run_cli(["--image", str(path)], tmp_path, capsys)
    assert code == 2 and "noise.png" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "1000000000"], f"steps must be in [1, {MAX_STEPS}]"),
        (["--steps", "500", "--size", "256"], "at most 400 steps at 256 px"),
        (["--seed", str(2**62)], f"seed must be in [0, {MAX_SEED}]"),
        (["--world-seed", "-1"], "world_seed must be in"),
        (["--vae", "a" * 300], "neither a model folder nor a hub id"),
        (["--generator", "../../etc//passwd"], "neither a model folder nor a hub id"),
        (["--depth", "estimated", "--depth-model", "x" * 5000], "give a hub id (owner/name) or a model folder"),
    ],
)
def test_bounds_on_steps_seeds_and_model_ids(tmp_path, capsys, args, message):
    code, err = run_cli(args, tmp_path, capsys)
    assert code == 2 and message in err and not (tmp_path / "run").exists()


def test_the_largest_seed_runs(tmp_path, capsys, backbone):
    code, _ = run_cli(["--seed", str(MAX_SEED), "--world-seed", str(MAX_SEED), "--memories", "latent"], tmp_path, capsys)
    assert code == 0


def test_poses_that_are_not_cameras_are_refused_with_their_index():
    mirror = torch.eye(4)
    mirror[0, 0] = -1
    far = torch.eye(4)
    far[0, 3] = 1e30
    for pose, message in ((mirror, "mirror"), (far, r"1e\+30 m from the origin")):
        with pytest.raises(ValueError, match=f"pose 1: .*{message}"):
            Trajectory("bad", torch.stack([torch.eye(4), pose]))


def test_cameras_outside_the_room_or_inside_an_object_are_refused_before_anything_runs():
    wall, inside = torch.eye(4), torch.eye(4)
    wall[0, 3] = 3.0  # on the wall at x = 3
    inside[:3, 3] = torch.tensor([-2.0, 0.9, 6.5])  # inside an object of room seed 0
    for pose, message in ((wall, "outside the 'room' room"), (inside, "inside an object")):
        trajectory = Trajectory("bad", torch.stack([torch.eye(4), torch.eye(4), pose]))
        with pytest.raises(ValueError, match=rf"step 2: the camera at .* {message}"):
            plan_rollout(RolloutConfig(size=64), trajectory=trajectory)


def test_the_app_refuses_local_paths_the_same_way_whether_they_exist_or_not(tmp_path):
    access = ModelAccess.for_visitors()
    messages = set()
    for value in ("/etc", "/etc/passwd", "/no/such/folder", str(tmp_path), "../assets/vae", "~/models"):
        with pytest.raises(ValueError) as error:
            access.resolve(value, "vae")
        messages.add(str(error.value).replace(value[:80], "X"))
    assert len(messages) == 1 and "loads models by hub id" in messages.pop()
    source = access.resolve("assets/vae", "vae")  # hub-id shaped: a hub id, fetched into the cache, never ./assets/vae
    assert source.visitor and not source.is_folder
    allowed = ModelAccess.for_visitors([tmp_path])
    (tmp_path / "vae").mkdir()
    assert allowed.resolve(str(tmp_path / "vae"), "vae").is_folder
    with pytest.raises(ValueError, match="cannot be loaded here"):
        allowed.resolve(str(tmp_path / ".." / "elsewhere"), "vae")
