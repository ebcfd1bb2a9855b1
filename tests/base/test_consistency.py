"""Scores without ground truth (mirage_viz.consistency) on true renders of a procedural room: they pass true frames
and fail broken ones."""

import functools
import statistics

import pytest
import torch

from mirage_viz.consistency import (
    StepConsistency,
    camera_control_error,
    consistency_scores,
    flow_agreement,
    mean_scores,
    reprojection_error,
)
from mirage_viz.geometry.cameras import Camera, Intrinsics
from mirage_viz.scenes.trajectories import make_trajectory
from mirage_viz.scenes.worlds import make_world

INTRINSICS = Intrinsics.from_fov(256, 256, 60)


@functools.cache
def world():
    return make_world("room", 1)


@functools.cache
def views(trajectory: str, steps: int) -> tuple[list, list, list[Camera]]:
    """Frames, depths and cameras of the true renders along ``trajectory``."""
    cameras = make_trajectory(trajectory, steps).cameras(INTRINSICS)
    world().check_cameras(cameras)
    renders = [world().render(camera) for camera in cameras]
    return [r.rgb for r in renders], [r.depth for r in renders], cameras


def pair_error(trajectory: str, steps: int, step: int):
    frames, _, cameras = views(trajectory, steps)
    return camera_control_error(frames[step - 1], frames[step], cameras[step - 1], cameras[step])


def noise_like(frame: torch.Tensor) -> torch.Tensor:
    return torch.rand(frame.shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("trajectory, steps, step", [("orbit_left", 12, 1), ("loop", 6, 2), ("loop", 6, 5)])
def test_true_frames_along_an_orbit_and_a_loop_give_the_asked_pose(trajectory, steps, step):
    error = pair_error(trajectory, steps, step)
    assert error.matches >= 15
    assert error.rotation_deg < 1.0 and error.direction_deg < 5.0, error


def test_true_frames_of_a_slide_give_the_asked_pose_on_most_steps():
    errors = [pair_error("move_right", 6, step) for step in range(1, 7)]
    measured = [e for e in errors if e.rotation_deg is not None]
    assert len(measured) >= 5, errors
    assert statistics.median(e.rotation_deg for e in measured) < 1.0, errors
    assert statistics.median(e.direction_deg for e in measured) < 5.0, errors


def test_a_pure_pan_gives_the_rotation_and_no_direction():
    error = pair_error("pan_left", 6, 2)  # 10 degrees in place: the homography path
    assert error.rotation_deg < 1.0 and error.direction_deg is None, error


def test_swapped_cameras_give_a_large_error():
    frames, _, cameras = views("orbit_left", 12)  # 3.3 degrees of turn a step
    error = camera_control_error(frames[0], frames[1], cameras[1], cameras[0])  # the pose asked for, backwards
    assert error.rotation_deg > 5.0 and error.direction_deg > 90.0, error


def test_a_textureless_frame_gives_no_camera_error_without_raising():
    frames, _, cameras = views("orbit_left", 12)
    error = camera_control_error(frames[0], torch.full_like(frames[1], 0.5), cameras[0], cameras[1])
    assert error.rotation_deg is None and error.direction_deg is None and error.matches == 0


def test_true_frames_reproject_with_a_small_error():
    frames, depths, cameras = views("orbit_left", 12)
    earlier = list(zip(frames[:4], depths[:4], cameras[:4], strict=True))
    assert reprojection_error(frames[4], depths[4], cameras[4], earlier) < 0.02


def test_a_noise_or_shifted_frame_reprojects_with_a_large_error():
    frames, depths, cameras = views("orbit_left", 12)
    earlier = list(zip(frames[:4], depths[:4], cameras[:4], strict=True))
    true = reprojection_error(frames[4], depths[4], cameras[4], earlier)
    shifted = reprojection_error(torch.roll(frames[4], 8, dims=2), depths[4], cameras[4], earlier)
    noise = reprojection_error(noise_like(frames[4]), depths[4], cameras[4], earlier)
    assert shifted > 5 * true and noise > 0.2, (true, shifted, noise)


def test_holes_are_skipped_and_cameras_seeing_nothing_in_common_give_none():
    frames, depths, cameras = views("orbit_left", 12)
    holes = depths[1].clone()
    holes[:, :128] = float("nan")  # the left half has no depth: only the right half is lifted
    assert reprojection_error(frames[1], holes, cameras[1], [(frames[0], depths[0], cameras[0])]) < 0.02
    turned = Camera(INTRINSICS, torch.diag(torch.tensor([-1.0, 1.0, -1.0, 1.0])))  # looking back at the start
    back = world().render(turned)
    assert reprojection_error(back.rgb, back.depth, turned, [(frames[0], depths[0], cameras[0])]) is None
    assert reprojection_error(frames[1], depths[1], cameras[1], []) is None


def test_flow_of_a_true_pair_agrees_and_of_a_noise_pair_does_not():
    frames, _, _ = views("pan_left", 12)
    assert flow_agreement(frames[0], frames[1]) > 0.6
    assert flow_agreement(frames[0], noise_like(frames[1])) < 0.1


def test_a_rollout_gets_one_entry_per_generated_step_and_their_means():
    frames, depths, cameras = views("orbit_left", 12)
    scores = consistency_scores(frames[:4], depths[:4], cameras[:4])
    assert [s.step for s in scores] == [1, 2, 3]  # the given first frame gets no entry
    assert all(s.reprojection_error < 0.02 and s.flow_agreement > 0.3 for s in scores), scores
    first = scores[0].to_dict()
    assert first["step"] == 1 and first["reprojection_error"] == round(scores[0].reprojection_error, 4)
    means = mean_scores([*scores, StepConsistency(4, None, None, 0, None, 0.0)])
    assert means["camera_rotation_error_deg"] == pytest.approx(
        statistics.mean(s.camera_rotation_error_deg for s in scores))  # None skipped
    assert means["flow_agreement"] == pytest.approx(sum(s.flow_agreement for s in scores) / 4)
    assert mean_scores([])["reprojection_error"] is None
    assert consistency_scores(frames[:1], depths[:1], cameras[:1]) == []


def test_bad_shapes_are_refused_with_what_was_expected():
    frames, depths, cameras = views("orbit_left", 12)
    small = frames[1][:, :128, :128]
    with pytest.raises(ValueError, match=r"frame_b must be a tensor \(3, 256, 256\)"):
        camera_control_error(frames[0], small, cameras[0], cameras[1])
    with pytest.raises(ValueError, match=r"earlier\[0\]'s depth must be \(256, 256\)"):
        reprojection_error(frames[1], depths[1], cameras[1], [(frames[0], depths[0][:128], cameras[0])])
    with pytest.raises(ValueError, match="two frames of one shape"):
        flow_agreement(frames[0], small)
    with pytest.raises(ValueError, match="one depth and one camera per frame"):
        consistency_scores(frames[:3], depths[:2], cameras[:3])
