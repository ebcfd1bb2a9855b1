"""The path preview (viz.preview, inspector.preview): the cameras it draws are the cameras the run uses."""

import pytest
import torch

from mirage_viz.rollout import RolloutConfig, plan_rollout, run_rollout
from mirage_viz.viz.preview import path_preview_figure, path_preview_html, preview_path


@pytest.mark.parametrize("trajectory", ["dolly_zoom+back_to_start", "lemniscate"])
def test_the_previewed_cameras_are_the_cameras_that_run(backbone, trajectory):
    config = RolloutConfig(trajectory=trajectory, steps=4, size=64, memories=("none",))
    preview = preview_path(plan_rollout(config, backbone=backbone))
    rollout = run_rollout(config, backbone=backbone)
    assert len(preview.cameras) == len(rollout.cameras) == 5
    for seen, ran in zip(preview.cameras, rollout.cameras, strict=True):
        assert torch.equal(seen.camera_to_world, ran.camera_to_world) and seen.intrinsics == ran.intrinsics
    assert torch.equal(preview.first_view, rollout.records["none"][0].true_frame)
    assert torch.equal(preview.last_view, rollout.records["none"][-1].true_frame)


def test_the_preview_draws_both_ends_over_the_first_frames_cloud():
    preview = preview_path(plan_rollout(RolloutConfig(trajectory="orbit_left+back_to_start", steps=6, size=64)))
    assert preview.points.shape == preview.colors.shape == (64 * 64, 3)  # fewer than PREVIEW_MAX_POINTS: all kept
    figure = path_preview_figure(preview)
    names = [trace.name for trace in figure.data]
    assert names[0].startswith("first frame (true depth): 4,096 points")
    assert names[1:] == ["steps 1 to 5", "the path", "first camera (step 0)", "last camera (step 6)"]
    first = figure.data[3]
    start = preview.cameras[0].camera_to_world[:3, 3].tolist()
    assert [first.x[0], first.y[0], first.z[0]] == pytest.approx(start)  # the frustum's apex is the camera centre
    assert figure.layout.title.text == "orbit_left+back_to_start, 6 steps in room (seed 0): its cameras (drag to turn)"
    html = path_preview_html(preview)
    assert html.count("<img") == 2 and "true view at the last camera (step 6)" in html


def test_a_photo_preview_has_no_truth_and_a_cloud_only_with_depth(backbone):
    from mirage_viz.scenes.photo import load_photo, sample_photos

    photo = load_photo(sample_photos()[0], 64)
    plan = plan_rollout(RolloutConfig(trajectory="push_in", steps=2, size=64), photo=photo, backbone=backbone)
    bare = preview_path(plan, photo)
    assert bare.last_view is None and bare.points.shape == (0, 3) and bare.depth_note.startswith("no depth estimator")
    lifted = preview_path(plan, photo, backbone.estimate_depth)
    assert lifted.points.shape[0] > 0 and lifted.depth_note == "estimated depth"
    assert "no truth beyond step 0" in path_preview_html(bare)
    with pytest.raises(ValueError, match="give the photo"):
        preview_path(plan)


def test_the_inspector_preview_shows_the_plan_and_refuses_what_a_run_would():
    from mirage_viz.ui.inspector import preview

    shown = preview(RolloutConfig(trajectory="spiral", steps=3, size=64))
    assert [c.camera_to_world for c in shown.plan.cameras] == [c.camera_to_world for c in shown.preview.cameras]
    assert len(shown.figure.data) == 5 and "<img" in shown.views.value
    with pytest.raises(ValueError, match="trajectory"):
        preview(RolloutConfig(trajectory="helix", steps=3, size=64))
