import pytest
import torch
from PIL import Image

from mirage_viz.outputs.exports import export_animation, export_cache_ply, read_cache_ply
from mirage_viz.viz.figures import rollout_pca


def test_ply_round_trips_through_open3d_with_latent_attributes(small_rollout, tmp_path):
    path = export_cache_ply(small_rollout, "latent", 2, tmp_path / "latent.ply")
    back = read_cache_ply(path)
    points, features = small_rollout.cache_at("latent", 2)
    assert torch.allclose(back["positions"], points)
    assert torch.allclose(back["latent"], features)
    assert torch.allclose(back["colors"], rollout_pca(small_rollout).colors(features), atol=1e-6)
    rgb = read_cache_ply(export_cache_ply(small_rollout, "rgb", 0, tmp_path / "rgb.ply"))
    assert rgb["positions"].shape == (128 * 128, 3) and "latent" not in rgb


def test_bad_exports_are_refused_and_leave_nothing(small_rollout, tmp_path):
    with pytest.raises(ValueError, match="no points"):
        export_cache_ply(small_rollout, "none", 1, tmp_path / "none.ply")
    with pytest.raises(ValueError, match=".ply"):
        export_cache_ply(small_rollout, "latent", 1, tmp_path / "cache.txt")
    with pytest.raises(ValueError, match="step"):
        export_cache_ply(small_rollout, "latent", 99, tmp_path / "late.ply")
    assert list(tmp_path.iterdir()) == []


def test_animation_has_one_frame_per_step_side_by_side(small_rollout, tmp_path):
    path = export_animation(small_rollout, tmp_path / "small_rollout.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == len(small_rollout.cameras)
        assert gif.size == (4 * 128, 128)
