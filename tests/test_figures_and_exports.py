import plotly.graph_objects as go
import pytest
import torch
from PIL import Image

from mirage_viz.rollout import RolloutConfig, run_rollout
from mirage_viz.outputs.exports import export_animation, export_cache_ply, read_cache_ply
from mirage_viz.viz.figures import cache_figure, frames_figure, latent_panels_figure, metrics_figure, rollout_pca
from mirage_viz.viz.pca import fit_pca


@pytest.fixture(scope="module")
def rollout(backbone):
    return run_rollout(RolloutConfig(trajectory="move_left", steps=3, size=128, seed=1), backbone=backbone)


def test_cache_at_a_step_is_the_prefix_written_so_far(rollout):
    points, features = rollout.cache_at("latent", 1)
    assert points.shape == (2 * 16 * 16, 3) and features.shape == (2 * 16 * 16, 4)
    assert rollout.cache_at("rgb", 3)[0].shape[0] == 4 * 128 * 128
    with pytest.raises(ValueError, match="memory"):
        rollout.cache_at("voxels", 0)


def test_pca_colours_are_stable_and_in_range():
    features = torch.randn(500, 4, generator=torch.Generator().manual_seed(0)) * torch.tensor([3.0, 2.0, 1.0, 0.1])
    a, b = fit_pca(features), fit_pca(features.clone())
    assert torch.equal(a.colors(features), b.colors(features))
    colors = a.colors(features)
    assert colors.shape == (500, 3) and colors.min() >= 0 and colors.max() <= 1
    assert torch.allclose(a.components[0].abs(), torch.tensor([1.0, 0, 0, 0]), atol=0.1)


def test_one_basis_serves_every_step(rollout):
    basis = rollout_pca(rollout)
    first = cache_figure(rollout, 0, basis)
    last = cache_figure(rollout, 3, basis)
    latent_first = next(t for t in first.data if t.name.startswith("latent"))
    latent_last = next(t for t in last.data if t.name.startswith("latent"))
    count = len(latent_first.x)
    assert list(latent_last.marker.color[:count]) == list(latent_first.marker.color)


def test_cache_figure_caps_points_and_says_so(rollout):
    figure = cache_figure(rollout, 3, max_points=1000)
    names = [t.name for t in figure.data if t.name]
    assert any(n.startswith("RGB point cloud: 500 of 65,536") for n in names)  # half the latent cap
    assert any(n.startswith("latent cache (PCA colours): 1,000 of 1,024") for n in names)
    current = [t for t in figure.data if t.name == "camera of step 3"]
    assert len(current) == 1 and len(current[0].x) == 11  # one frustum
    past = next(t for t in figure.data if t.name == "cameras so far")
    assert len(past.x) == 12 * (len(rollout.cameras) - 1)  # a frustum and a break for every other camera so far
    assert go.Figure(figure.to_plotly_json()).data  # every property valid (the figure is built unvalidated)


def test_panels_frames_and_metrics(rollout):
    panels = latent_panels_figure(rollout, 2)
    assert len(panels.data) == 4 and all(t.type == "image" for t in panels.data)
    assert panels.data[0].z.shape == (16, 16, 3) and panels.data[2].z.shape == (128, 128, 3)
    frames = frames_figure(rollout, 2)
    assert len(frames.data) == 4  # latent, rgb, none, truth
    metrics = metrics_figure(rollout)
    assert go.Figure(metrics.to_plotly_json()).data  # every property valid (the figure is built unvalidated)
    psnr_traces = [t for t in metrics.data if t.type == "scatter" and t.xaxis == "x"]
    assert {t.name for t in psnr_traces} == {"latent memory", "rgb memory", "none memory"}
    assert [a.text for a in metrics.layout.annotations][0] == "PSNR (dB)"
    assert list(psnr_traces[0].y) == [r.psnr for r in rollout.records[psnr_traces[0].legendgroup]]


def test_ply_round_trips_through_open3d_with_latent_attributes(rollout, tmp_path):
    path = export_cache_ply(rollout, "latent", 2, tmp_path / "latent.ply")
    back = read_cache_ply(path)
    points, features = rollout.cache_at("latent", 2)
    assert torch.allclose(back["positions"], points)
    assert torch.allclose(back["latent"], features)
    assert torch.allclose(back["colors"], rollout_pca(rollout).colors(features), atol=1e-6)
    rgb = read_cache_ply(export_cache_ply(rollout, "rgb", 0, tmp_path / "rgb.ply"))
    assert rgb["positions"].shape == (128 * 128, 3) and "latent" not in rgb


def test_bad_exports_are_refused_and_leave_nothing(rollout, tmp_path):
    with pytest.raises(ValueError, match="no points"):
        export_cache_ply(rollout, "none", 1, tmp_path / "none.ply")
    with pytest.raises(ValueError, match=".ply"):
        export_cache_ply(rollout, "latent", 1, tmp_path / "cache.txt")
    with pytest.raises(ValueError, match="step"):
        export_cache_ply(rollout, "latent", 99, tmp_path / "late.ply")
    assert list(tmp_path.iterdir()) == []


def test_animation_has_one_frame_per_step_side_by_side(rollout, tmp_path):
    path = export_animation(rollout, tmp_path / "rollout.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == len(rollout.cameras)
        assert gif.size == (4 * 128, 128)


def test_inspector_moves_every_panel_with_its_slider(rollout):
    pytest.importorskip("anywidget")
    from mirage_viz.ui.inspector import inspect

    inspector = inspect(rollout, max_points=500)
    assert inspector.step == 3 and inspector.slider.max == 3
    assert "Step 3 of 3: decoded frames" in inspector.view.value
    assert inspector.cache.layout.title.text.startswith("Step 3")
    inspector.slider.value = 1
    assert "Step 1 of 3: decoded frames" in inspector.view.value and inspector.view.value.count("<img") == 11
    assert inspector.cache.layout.title.text.startswith("Step 1")
    with pytest.raises(ValueError, match="step"):
        inspector.step = 9
