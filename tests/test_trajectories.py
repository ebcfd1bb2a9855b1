import json

import pytest
import torch

from mirage_viz.scenes.trajectories import PRESETS, TRAJECTORY_NAMES, Trajectory, load_trajectory, make_trajectory


def test_every_named_preset_exists():
    expected = {"push_in", "pull_out", "move_left", "move_right", "move_up", "move_down",
                "pan_left", "pan_right", "orbit_left", "orbit_right", "loop"}
    assert expected == set(TRAJECTORY_NAMES)


@pytest.mark.parametrize("name", TRAJECTORY_NAMES)
def test_presets_start_at_the_start_pose_and_have_steps_plus_one_poses(name):
    trajectory = make_trajectory(name, 6)
    assert trajectory.camera_to_world.shape == (7, 4, 4)
    assert torch.allclose(trajectory.camera_to_world[0], torch.eye(4), atol=1e-6)


def test_directions_follow_the_opencv_convention():
    last = lambda name: make_trajectory(name, 4).camera_to_world[-1]  # noqa: E731
    assert float(last("push_in")[2, 3]) == pytest.approx(PRESETS["push_in"].magnitude)
    assert last("move_left")[0, 3] < 0 and last("move_right")[0, 3] > 0
    assert last("move_up")[1, 3] < 0 and last("move_down")[1, 3] > 0  # y points down
    assert last("pan_left")[0, 2] < 0 and last("pan_right")[0, 2] > 0  # forward axis turns left / right
    assert last("orbit_left")[0, 3] < 0 and last("orbit_left")[0, 2] > 0  # moves left, looks back at the centre


def test_loop_returns_to_the_start_pose():
    poses = make_trajectory("loop", 12).camera_to_world
    assert torch.allclose(poses[-1], poses[0], atol=1e-5)
    assert (poses[6, :3, 3] - poses[0, :3, 3]).norm() > 1.0


def test_magnitude_scales_the_motion():
    assert float(make_trajectory("move_right", 3, magnitude=0.5).camera_to_world[-1, 0, 3]) == pytest.approx(0.5)


def test_json_round_trip(tmp_path):
    trajectory = make_trajectory("orbit_right", 5)
    trajectory.save(tmp_path / "t.json")
    loaded = load_trajectory(tmp_path / "t.json")
    assert loaded.name == "orbit_right" and torch.allclose(loaded.camera_to_world, trajectory.camera_to_world)
    assert json.loads((tmp_path / "t.json").read_text())["pose"] == "camera_to_world"


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "camera_to_world"),
        ('{"camera_to_world": [[1, 2], [3, 4]]}', "shape"),
        ('{"camera_to_world": "abc"}', "camera_to_world"),
        ('{"camera_to_world": [[[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]]}', r"N in \[1, 1000\]"),
        ('{"camera_to_world": [[[2,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]], [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]]}', "rotation"),
        ('{"camera_to_world": [[[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]], "pose": "world_to_camera"}', "camera_to_world"),
    ],
)
def test_malformed_trajectory_json_gets_a_clear_message(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_trajectory(path)


def test_unknown_names_and_bad_steps_are_refused():
    with pytest.raises(ValueError, match="accepted: push_in"):
        make_trajectory("spiral", 4)
    for steps in (0, -3, 2.5):
        with pytest.raises(ValueError, match="steps"):
            make_trajectory("loop", steps)
    with pytest.raises(ValueError, match="shape"):
        Trajectory("x", torch.eye(4)[None])
