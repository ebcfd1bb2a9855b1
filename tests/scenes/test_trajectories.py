import json

import pytest
import torch

from mirage_viz.scenes.trajectories import PRESETS, TRAJECTORY_NAMES, Trajectory, load_trajectory, make_trajectory


def test_every_named_preset_exists():
    expected = {"push_in", "pull_out", "move_left", "move_right", "move_up", "move_down",
                "pan_left", "pan_right", "orbit_left", "orbit_right", "loop",
                "spiral", "lemniscate", "dolly_zoom", "zoom_in", "zoom_out"}
    assert expected == set(TRAJECTORY_NAMES)


@pytest.mark.parametrize("name", [*TRAJECTORY_NAMES, *(f"{n}+back_to_start" for n in TRAJECTORY_NAMES)])
def test_presets_start_at_the_start_pose_and_have_steps_plus_one_poses(name):
    trajectory = make_trajectory(name, 6)
    assert trajectory.camera_to_world.shape == (7, 4, 4)
    assert torch.allclose(trajectory.camera_to_world[0], torch.eye(4), atol=1e-6)
    if name.endswith("+back_to_start"):  # a revisit: the last pose and focal length are the first's
        assert torch.allclose(trajectory.camera_to_world[-1], trajectory.camera_to_world[0], atol=1e-5)
        if trajectory.focal_scale is not None:
            assert trajectory.focal_scale[-1] == pytest.approx(1.0)


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
        ('{"camera_to_world": [[[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]]}', r"accepted: 2 to 10,000 poses"),
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
    for name in ("helix", "loop+back", "loop+back_to_start+back_to_start", "+back_to_start"):
        with pytest.raises(ValueError, match="accepted: push_in.*back_to_start"):
            make_trajectory(name, 4)
    with pytest.raises(ValueError, match="at least 2 steps"):
        make_trajectory("pan_left+back_to_start", 1)
    for factor in (0.5, 11.0):
        with pytest.raises(ValueError, match="zoom factor"):
            make_trajectory("zoom_in", 4, magnitude=factor)
    for steps in (0, -3, 2.5):
        with pytest.raises(ValueError, match="steps"):
            make_trajectory("loop", steps)
    with pytest.raises(ValueError, match="shape"):
        Trajectory("x", torch.eye(4)[None])


def test_the_new_presets_move_as_their_names_say():
    spiral = make_trajectory("spiral", 16).camera_to_world
    radii = spiral[:, :2, 3].norm(dim=1)
    assert radii[-1] == pytest.approx(PRESETS["spiral"].magnitude, abs=1e-5) and (radii[1:] > radii[:-1]).all()
    lemniscate = make_trajectory("lemniscate", 16).camera_to_world
    x = lemniscate[:, 0, 3]
    assert torch.allclose(lemniscate[-1], lemniscate[0], atol=1e-5) and x.min() < -0.5 and x.max() > 0.5  # both lobes
    assert torch.allclose(lemniscate[8, :3, 3], torch.zeros(3), atol=1e-5)  # the crossing at half way
    for poses in (spiral, lemniscate):  # every camera faces the point 3 m ahead of the start
        to_subject = torch.tensor([0.0, 0.0, 3.0]) - poses[:, :3, 3]
        assert torch.allclose(poses[:, :3, 2], to_subject / to_subject.norm(dim=1, keepdim=True), atol=1e-5)


def test_a_dolly_zoom_keeps_the_subject_its_size_and_zooms_vary_the_focal_length():
    from mirage_viz.geometry.cameras import Intrinsics
    from mirage_viz.geometry.projection import project_points

    dolly = make_trajectory("dolly_zoom", 4)
    cameras = dolly.cameras(Intrinsics.from_fov(256, 256, 60.0))
    assert [c.intrinsics.fx for c in cameras] == sorted({c.intrinsics.fx for c in cameras})  # the focal length grows
    subject = torch.tensor([[0.5, 0.25, 3.0], [-0.5, -0.25, 3.0]])  # a bar at the subject's distance
    widths = [float((lambda uv: (uv[0] - uv[1]).norm())(project_points(subject, c)[0])) for c in cameras]
    assert max(widths) - min(widths) < 1e-3 * widths[0]  # same size on screen all the way
    assert float(dolly.camera_to_world[-1, 2, 3]) == pytest.approx(-PRESETS["dolly_zoom"].magnitude)
    zoom_in = make_trajectory("zoom_in", 4, magnitude=3.0)
    assert zoom_in.focal_scale.tolist() == pytest.approx([3.0 ** (i / 4) for i in range(5)])
    assert torch.allclose(zoom_in.camera_to_world, torch.eye(4).expand(5, 4, 4))
    assert make_trajectory("zoom_out", 2).focal_scale[-1] == pytest.approx(0.5)


def test_back_to_start_comes_back_along_the_shortest_way():
    out_and_back = make_trajectory("pan_left+back_to_start", 6).camera_to_world
    out = make_trajectory("pan_left", 3).camera_to_world
    assert torch.allclose(out_and_back[:4], out, atol=1e-6)  # the preset in the first half of the steps
    assert torch.allclose(out_and_back[5], out[1], atol=1e-5) and torch.allclose(out_and_back[4], out[2], atol=1e-5)


def test_subsampling_keeps_the_first_and_the_last_pose():
    path = make_trajectory("orbit_left", 999)
    short = path.subsample(10)
    assert short.steps == 10 and torch.equal(short.camera_to_world[0], path.camera_to_world[0])
    assert torch.equal(short.camera_to_world[-1], path.camera_to_world[-1])
    zoom = make_trajectory("zoom_in", 8).subsample(2)
    assert zoom.focal_scale.tolist() == pytest.approx([1.0, 2**0.5, 2.0])
    for steps in (0, 1000, 2.0):
        with pytest.raises(ValueError, match="subsamples to 1 to 999 steps"):
            path.subsample(steps)


def test_per_pose_intrinsics_round_trip_and_scale_to_the_run():
    from mirage_viz.geometry.cameras import Intrinsics

    own = (Intrinsics(500.0, 400.0, 319.5, 179.5, 640, 360), Intrinsics(600.0, 480.0, 319.5, 179.5, 640, 360))
    trajectory = Trajectory("capture", make_trajectory("move_left", 1).camera_to_world, intrinsics=own)
    back = Trajectory.from_dict(json.loads(json.dumps(trajectory.to_dict())))
    assert back.intrinsics == own
    cameras = back.cameras(Intrinsics.from_fov(128, 128, 60.0))
    assert cameras[1].intrinsics == own[1].scaled_to(128, 128)
    assert cameras[1].intrinsics.fov_x_degrees == pytest.approx(own[1].fov_x_degrees)  # the field of view is kept
    assert back.cameras(Intrinsics.from_fov(128, 128, 60.0), own_intrinsics=False)[1].intrinsics.fov_x_degrees == pytest.approx(60)
