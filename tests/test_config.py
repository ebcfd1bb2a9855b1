import pytest

from mirage_viz.rollout import RolloutConfig, RolloutEngine, run_rollout
from mirage_viz.scenes.trajectories import make_trajectory


def test_the_request_stays_as_asked_and_the_setup_says_what_ran(backbone):
    import dataclasses

    from mirage_viz.rollout import plan_rollout
    from mirage_viz.scenes.photo import load_photo, sample_photos

    asked = RolloutConfig(steps=12, size=128, fov_degrees=70.0, trajectory="loop")
    with pytest.raises(dataclasses.FrozenInstanceError):
        asked.size = 64  # a request is never rewritten
    photo = load_photo(sample_photos()[0], 64, 55.0)
    plan = plan_rollout(asked, trajectory=make_trajectory("pan_left", 2, magnitude=10.0), photo=photo, backbone=backbone)
    assert plan.config is asked and plan.config.size == 128 and plan.config.steps == 12
    setup = plan.setup
    assert (setup.first_frame, setup.photo, setup.world, setup.trajectory, setup.steps) == ("photo", photo.name, None, "pan_left", 2)
    assert (setup.size, setup.fov_degrees, setup.fov_source, setup.depth_source) == (64, 55.0, "setting", "estimated")
    assert setup.intrinsics == photo.intrinsics == plan.cameras[0].intrinsics  # the photo's own intrinsics run
    assert setup.num_inference_steps == backbone.num_inference_steps
    rollout = run_rollout(RolloutConfig(steps=1, size=64, memories=("latent",)), backbone=backbone)
    summary = rollout.summary()
    assert summary["config"]["num_inference_steps"] is None  # as asked
    assert summary["setup"]["num_inference_steps"] == backbone.num_inference_steps and summary["setup"]["world"] == "room"
    assert summary["setup"]["intrinsics"]["width"] == 64 and summary["setup"]["first_frame"] == "world"


@pytest.mark.parametrize(
    "field, value, message",
    [("world", "castle", "world"), ("trajectory", "spiral", "trajectory"), ("steps", 0, "steps"), ("size", 100, "size"),
     ("size", -32, "size"), ("memories", ("latent", "pixels"), "memories"), ("depth_source", "lidar", "depth_source"),
     ("depth_mode", "cubic", "depth_mode"), ("fov_degrees", 0.0, "fov")],
)
def test_bad_configs_name_the_parameter(backbone, field, value, message):
    with pytest.raises(ValueError, match=message):
        RolloutEngine(RolloutConfig(**{field: value}), backbone=backbone)


def test_estimated_depth_is_recorded_as_such(backbone):
    rollout = run_rollout(RolloutConfig(steps=1, size=128, memories=("latent",), depth_source="estimated"), backbone=backbone)
    assert [r.depth_source for r in rollout.records["latent"]] == ["estimated", "estimated"]


def test_custom_trajectory_runs(backbone):
    trajectory = make_trajectory("pan_left", 1, magnitude=10.0)
    engine = RolloutEngine(RolloutConfig(size=64, memories=("latent",)), backbone=backbone, trajectory=trajectory)
    assert len(list(engine)) == 2 and engine.setup.steps == 1
