from dataclasses import replace

import pytest
import torch

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
    assert summary["config"]["sampler"]["num_inference_steps"] is None  # as asked
    assert summary["setup"]["num_inference_steps"] == backbone.num_inference_steps and summary["setup"]["world"] == "room"
    assert summary["setup"]["intrinsics"]["width"] == 64 and summary["setup"]["first_frame"] == "world"


@pytest.mark.parametrize(
    "field, value, message",
    [("world", "castle", "world"), ("trajectory", "helix", "trajectory"), ("trajectory", "loop+again", "trajectory"), ("steps", 0, "steps"), ("size", 100, "size"),
     ("size", -32, "size"), ("memories", ("latent", "pixels"), "memories"), ("depth_source", "lidar", "depth_source"),
     ("fov_degrees", 0.0, "fov")],
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


def test_a_camera_files_intrinsics_run_unless_a_field_of_view_is_asked_for(backbone):
    from mirage_viz.geometry.cameras import Intrinsics
    from mirage_viz.scenes.trajectories import Trajectory
    from mirage_viz.rollout import plan_rollout

    own = tuple(Intrinsics(f, f * 0.75, 319.5, 179.5, 640, 360) for f in (400.0, 450.0, 500.0))
    path = Trajectory("capture", make_trajectory("push_in", 2, magnitude=0.5).camera_to_world, intrinsics=own)
    plan = plan_rollout(RolloutConfig(size=128), trajectory=path, backbone=backbone)
    assert [c.intrinsics for c in plan.cameras] == [k.scaled_to(128, 128) for k in own]  # scaled per axis
    assert plan.setup.fov_source == "file" and plan.setup.intrinsics_vary
    assert plan.setup.fov_degrees == pytest.approx(own[0].fov_x_degrees)
    asked = plan_rollout(RolloutConfig(size=128, fov_degrees=70.0), trajectory=path, backbone=backbone)
    assert {c.intrinsics for c in asked.cameras} == {Intrinsics.from_fov(128, 128, 70.0)} and asked.setup.fov_source == "setting"
    rollout = run_rollout(RolloutConfig(size=64, memories=("latent",)), trajectory=path, backbone=backbone)
    assert [c.intrinsics for c in rollout.cameras] == [k.scaled_to(64, 64) for k in own]
    assert rollout.summary()["setup"]["intrinsics_vary"] is True


def test_zooms_run_with_intrinsics_that_vary_and_leave_no_field_of_view_outside_the_range(backbone):
    from mirage_viz.rollout import plan_rollout

    plan = plan_rollout(RolloutConfig(trajectory="dolly_zoom+back_to_start", steps=4, size=64), backbone=backbone)
    fx = [c.intrinsics.fx for c in plan.cameras]
    assert fx[0] == fx[-1] < max(fx) and plan.setup.intrinsics_vary and plan.setup.fov_degrees == 60.0
    coverage = {}
    for name in ("zoom_in", "zoom_out"):
        rollout = run_rollout(RolloutConfig(trajectory=name, steps=2, size=64, memories=("latent",)), backbone=backbone)
        coverage[name] = rollout.records["latent"][-1].mask_coverage
    # zooming out, the border is new to memory; zooming in, the frames seen span the view (nearest-cell splats
    # leave holes between magnified cells, as the paper's warp does)
    assert coverage["zoom_out"] < 0.75 and coverage["zoom_out"] < coverage["zoom_in"]
    with pytest.raises(ValueError, match=r"camera of step 3 sees 150.8 x 150.8 degrees; accepted: fields of view in \[10, 150\]"):
        plan_rollout(RolloutConfig(trajectory="zoom_out", magnitude=6.0, steps=4, size=64, fov_degrees=90.0))


def test_a_path_longer_than_a_rollout_says_to_subsample_it():
    from mirage_viz.scenes.trajectories import MAX_STEPS
    from mirage_viz.rollout import plan_rollout

    long_path = make_trajectory("orbit_left", MAX_STEPS)
    long_path = type(long_path)("long", torch.cat([long_path.camera_to_world, long_path.camera_to_world[-1:]]))
    with pytest.raises(ValueError, match="1,001 steps; a rollout runs at most 1,000: subsample it"):
        plan_rollout(RolloutConfig(size=64), trajectory=long_path)
    assert plan_rollout(RolloutConfig(size=64), trajectory=long_path.subsample(20)).setup.steps == 20


@pytest.mark.parametrize("field, value, message", [
    ("depth_mode", "cubic", "depth_mode"),
    ("edge_threshold", 0.0, "edge_threshold must be a relative depth spread in \\(0, 10\\]"),
    ("edge_threshold", "0.1", "edge_threshold"),
    ("known_cells", "yes", "known_cells must be True or False"),
    ("depth_tie_bits", 24, "depth_tie_bits must be an integer in \\[0, 23\\]"),
    ("depth_tie_bits", 2.0, "depth_tie_bits"),
    ("warp", "bilinear", "unknown warp 'bilinear'; accepted: nearest, subcell"),
    ("seen_rays", 1, "seen_rays must be True or False"),
])
def test_memory_and_sampler_options_are_checked(field, value, message):
    with pytest.raises(ValueError, match=message):
        RolloutConfig().with_options(**{field: value}).validate()


def test_the_subcell_warp_needs_the_flat_cache():
    RolloutConfig().with_options(warp="subcell").validate()
    with pytest.raises(ValueError, match="warp 'subcell' blends the points of one frame, so it needs the flat cache"):
        RolloutConfig().with_options(warp="subcell", voxel_size=0.05).validate()
    RolloutConfig().with_options(seen_rays=True).validate()
    with pytest.raises(ValueError, match="seen_rays needs the camera each point was lifted from, so it needs the flat cache"):
        RolloutConfig().with_options(seen_rays=True, voxel_size=0.05).validate()


def test_a_named_memory_setting_sets_its_fields_and_a_bad_name_is_refused():
    from mirage_viz.rollout import MEMORY_SETTINGS

    base = RolloutConfig(size=64, steps=3, seed=5)
    assert base.with_memory_setting("paper") == base
    keep = base.with_memory_setting("keep what memory holds")
    assert (keep.latent.depth_tie_bits, keep.sampler.known_cells, keep.latent.depth_mode) == (0, True, "nearest")
    assert (keep.size, keep.steps, keep.seed) == (64, 3, 5)  # everything else as it was
    keep.validate()
    closest = base.with_memory_setting("closest to the truth")
    assert closest.options() | {"depth_mode": "center", "warp": "subcell", "num_inference_steps": 1, "average_samples": 4} == closest.options()
    closest.validate()
    sharp = base.with_memory_setting("sharp and close")
    assert sharp == closest.with_options(decoder_sharpness=0.6)
    assert set(MEMORY_SETTINGS) == {"paper", "keep what memory holds", "closest to the truth", "sharp and close"}
    with pytest.raises(ValueError, match="unknown memory setting 'sharpest'; accepted: paper, keep what memory holds, "
                                         "closest to the truth, sharp and close"):
        base.with_memory_setting("sharpest")


def test_a_size_or_step_count_this_machines_cpu_cannot_hold_is_refused_with_its_estimate(monkeypatch):
    from mirage_viz.rollout import config as rollout_config
    from mirage_viz.rollout import plan_rollout, step_cost

    torch.set_num_threads(2)  # the estimate's time scales with torch's threads
    with pytest.raises(ValueError, match=r"size 2048 with 1 step\(s\): a step is estimated at about 4.1 GB \(every "
                                         r"step's frames kept\) and 71 s on this machine's CPU .*; accepted: within the "
                                         r"[\d.]+ GB available and 1 min a step: sizes up to 1856 here with these "
                                         r"settings, or a CUDA device"):
        plan_rollout(RolloutConfig(size=2048, steps=1))
    plan_rollout(RolloutConfig(size=1024, steps=1))  # 18 s a step
    with pytest.raises(ValueError, match=r"\(3 memories, 6 denoising steps, 4 sample\(s\)\).*sizes up to 1344"):
        plan_rollout(RolloutConfig(size=1536, steps=1).with_options(average_samples=4))  # each draw denoises again
    plan_rollout(RolloutConfig(size=1536, steps=1, memories=("latent",)).with_options(average_samples=4))
    monkeypatch.setattr(step_cost, "available_memory_bytes", lambda: 1.0e9)  # a small machine
    with pytest.raises(ValueError, match=r"size 640 .* about 1.0 GB .* within the 1.0 GB available .* sizes up to 608"):
        plan_rollout(RolloutConfig(size=640, steps=1))
    monkeypatch.setattr(step_cost, "available_memory_bytes", lambda: 4.0e9)
    with pytest.raises(ValueError, match=r"size 256 with 400 step\(s\): .* about 5.3 GB .* at most 284 steps at 256 px"):
        plan_rollout(RolloutConfig(size=256, steps=400))  # every step's frames are kept
    monkeypatch.setattr(step_cost, "available_memory_bytes", lambda: None)  # no way to tell: the time bound only
    plan_rollout(RolloutConfig(size=1536, steps=1))
    monkeypatch.setattr(rollout_config, "pick_device", lambda device: (torch.device("cuda"), torch.float16))
    plan_rollout(RolloutConfig(size=2048, steps=1), device="cuda")  # no CPU estimate on a CUDA device


def test_the_available_memory_is_read_from_the_machine():
    from mirage_viz.rollout.step_cost import available_memory_bytes

    available = available_memory_bytes()
    assert available is not None and 0 < available < 2**50


def test_options_live_in_their_groups_and_are_named_once():
    """Each option belongs to one group, owned by its layer; ``with_options`` finds it by name, and an unknown name
    is refused with the accepted ones."""
    from mirage_viz.backbone import DecoderOptions, SamplerOptions
    from mirage_viz.memories.latent import LatentOptions
    from mirage_viz.rollout.config import option_groups

    assert option_groups() == {"latent": LatentOptions, "sampler": SamplerOptions, "decoder": DecoderOptions}
    names = [name for kind in option_groups().values() for name in kind.__dataclass_fields__]
    assert len(names) == len(set(names)) == len(RolloutConfig().options()) == 12
    config = RolloutConfig().with_options(depth_tie_bits=0, known_cells=True, decoder_sharpness=0.5)
    assert (config.latent.depth_tie_bits, config.sampler.known_cells, config.decoder.decoder_sharpness) == (0, True, 0.5)
    with pytest.raises(ValueError, match="unknown option 'fusion'; accepted: depth_mode, latent_dtype"):
        RolloutConfig().with_options(fusion="mean")
    with pytest.raises(ValueError, match="latent must be a LatentOptions"):
        RolloutConfig(latent={"warp": "subcell"}).validate()


def test_the_memory_settings_page_shows_the_one_table_and_its_flags_run_the_same_options():
    """docs/memory-settings.md carries the table MEMORY_SETTINGS makes, and each setting's flags parse to its options."""
    from pathlib import Path

    from mirage_viz.cli import _config, build_parser
    from mirage_viz.rollout import MEMORY_SETTINGS
    from mirage_viz.rollout.config import memory_settings_markdown

    page = (Path(__file__).resolve().parents[2] / "docs" / "memory-settings.md").read_text()
    assert memory_settings_markdown() in page, "regenerate the table: python3 -c 'from mirage_viz.rollout.config " \
                                               "import memory_settings_markdown as m; print(m())'"
    for setting in MEMORY_SETTINGS.values():
        config = _config(build_parser().parse_args(["rollout", *setting.flags.split()]))
        assert config == RolloutConfig().with_memory_setting(setting.name)
