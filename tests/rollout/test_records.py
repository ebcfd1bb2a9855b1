import pytest
import torch

from mirage_viz.rollout import RolloutConfig, RolloutEngine


def test_caches_grow_by_one_frame_per_step(short_rollout):
    latent, rgb, none = (short_rollout.records[n] for n in ("latent", "rgb", "none"))
    assert [r.cache_points for r in latent] == [256, 512, 768]
    assert [r.cache_points for r in rgb] == [128 * 128 * k for k in (1, 2, 3)]
    assert all(r.cache_points == 0 and r.cache_bytes == 0 for r in none)
    assert latent[1].mask_coverage > 0.5 and none[1].mask_coverage == 0.0
    assert rgb[1].memory_render is not None and latent[1].memory_render is None


def test_summary_has_the_promised_fields(short_rollout):
    summary = short_rollout.summary()
    assert summary["config"]["trajectory"] == "move_right"
    step = summary["memories"]["latent"]["steps"][1]
    assert {"step", "timings_ms", "cache_points", "cache_bytes", "mask_coverage", "psnr", "ssim"} <= set(step)


def test_a_fused_rollout_shrinks_and_grows_back_one_step(backbone):
    config = RolloutConfig(trajectory="push_in", steps=2, size=64, memories=("latent", "none")).with_options(voxel_size=0.05)
    engine = RolloutEngine(config, backbone=backbone)
    rollout = engine.new_rollout(engine.cameras)
    for camera in engine.cameras:
        rollout.append(engine.step(camera), camera, engine.caches())
    last = [t.clone() for t in rollout.caches["latent"]]
    engine.undo()
    rollout.pop()
    assert len(rollout) == 2 and len(rollout.cameras) == 3  # a planned path stays whole
    assert len(rollout.snapshots["latent"]) == 2
    assert rollout.caches["latent"][0].shape[0] == rollout.records["latent"][1].cache_points
    assert all(torch.equal(a, b) for a, b in zip(rollout.caches["latent"], engine.caches()["latent"]))
    rollout.append(engine.step(engine.cameras[2]), engine.cameras[2], engine.caches())
    assert all(torch.equal(a, b) for a, b in zip(rollout.caches["latent"], last))
    assert all(torch.equal(a, b) for a, b in zip(rollout.cache_at("latent", 2), last))
    engine.undo()
    rollout.pop()
    wrong = engine.step(engine.cameras[1])  # step 2 at step 1's camera
    with pytest.raises(ValueError, match="planned"):
        rollout.append(wrong, engine.cameras[1], engine.caches())
    assert len(rollout) == 2


def test_cache_at_a_step_is_the_prefix_written_so_far(small_rollout):
    points, features = small_rollout.cache_at("latent", 1)
    assert points.shape == (2 * 16 * 16, 3) and features.shape == (2 * 16 * 16, 4)
    assert small_rollout.cache_at("rgb", 3)[0].shape[0] == 4 * 128 * 128
    with pytest.raises(ValueError, match="memory"):
        small_rollout.cache_at("voxels", 0)
