import plotly.graph_objects as go
import torch

from mirage_viz.viz.figures import cache_figure, frames_figure, latent_panels_figure, metrics_figure, rollout_pca
from mirage_viz.viz.pca import fit_pca


def test_pca_colours_are_stable_and_in_range():
    features = torch.randn(500, 4, generator=torch.Generator().manual_seed(0)) * torch.tensor([3.0, 2.0, 1.0, 0.1])
    a, b = fit_pca(features), fit_pca(features.clone())
    assert torch.equal(a.colors(features), b.colors(features))
    colors = a.colors(features)
    assert colors.shape == (500, 3) and colors.min() >= 0 and colors.max() <= 1
    assert torch.allclose(a.components[0].abs(), torch.tensor([1.0, 0, 0, 0]), atol=0.1)


def test_one_basis_serves_every_step(small_rollout):
    basis = rollout_pca(small_rollout)
    first = cache_figure(small_rollout, 0, basis)
    last = cache_figure(small_rollout, 3, basis)
    latent_first = next(t for t in first.data if t.name.startswith("latent"))
    latent_last = next(t for t in last.data if t.name.startswith("latent"))
    count = len(latent_first.x)
    assert list(latent_last.marker.color[:count]) == list(latent_first.marker.color)


def test_cache_figure_caps_points_and_says_so(small_rollout):
    figure = cache_figure(small_rollout, 3, max_points=1000)
    names = [t.name for t in figure.data if t.name]
    assert any(n.startswith("RGB point cloud: 500 of 65,536") for n in names)  # half the latent cap
    assert any(n.startswith("latent cache (PCA colours): 1,000 of 1,024") for n in names)
    current = [t for t in figure.data if t.name == "camera of step 3"]
    assert len(current) == 1 and len(current[0].x) == 11  # one frustum
    past = next(t for t in figure.data if t.name == "cameras so far")
    assert len(past.x) == 12 * (len(small_rollout.cameras) - 1)  # a frustum and a break for every other camera so far
    assert go.Figure(figure.to_plotly_json()).data  # every property valid (the figure is built unvalidated)


def test_panels_frames_and_metrics(small_rollout):
    panels = latent_panels_figure(small_rollout, 2)
    assert len(panels.data) == 4 and all(t.type == "image" for t in panels.data)
    assert panels.data[0].z.shape == (16, 16, 3) and panels.data[2].z.shape == (128, 128, 3)
    frames = frames_figure(small_rollout, 2)
    assert len(frames.data) == 4  # latent, rgb, none, truth
    metrics = metrics_figure(small_rollout)
    assert go.Figure(metrics.to_plotly_json()).data  # every property valid (the figure is built unvalidated)
    psnr_traces = [t for t in metrics.data if t.type == "scatter" and t.xaxis == "x"]
    assert {t.name for t in psnr_traces} == {"latent memory", "rgb memory", "none memory"}
    assert [a.text for a in metrics.layout.annotations][0] == "PSNR (dB)"
    assert list(psnr_traces[0].y) == [r.psnr for r in small_rollout.records[psnr_traces[0].legendgroup]]
