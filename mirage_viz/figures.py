"""Plotly figures of a rollout: pure functions of its records, shared by the app and the notebooks.

3D views plot the OpenCV world (y down) as ``(x, z, -y)``, so up is up on screen and the start
camera looks along the plot's second axis.
"""

from __future__ import annotations

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .cameras import Camera
from .engine import STAGES, Rollout
from .pca import PCABasis, fit_pca

__all__ = ["rollout_pca", "cache_figure", "latent_panels_figure", "frames_figure", "metrics_figure"]

MEMORY_COLORS = {"latent": "#1f77b4", "rgb": "#d62728", "none": "#7f7f7f"}


def rollout_pca(rollout: Rollout) -> PCABasis:
    """One PCA basis for the whole rollout, fitted on the first frame's latent cells.

    The first frame is known from step 0 on, so colours are the same while a rollout streams, when it is
    scrubbed afterwards, in the app and in the notebooks.
    """
    first = next(iter(rollout.records.values()))[0].generated_latent  # (C, h, w)
    return fit_pca(first.reshape(first.shape[0], -1).T)


def _to_plot(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return points[:, 0], points[:, 2], -points[:, 1]


def _subsample(count: int, limit: int) -> torch.Tensor:
    if count <= limit:
        return torch.arange(count)
    return torch.randperm(count, generator=torch.Generator().manual_seed(0))[:limit].sort().values


def _rgb_strings(colors: torch.Tensor) -> list[str]:
    values = (colors.clamp(0, 1) * 255).round().to(torch.uint8).tolist()
    return [f"rgb({r},{g},{b})" for r, g, b in values]


def _frustum(camera: Camera, depth: float) -> list[float | None]:
    """Line coordinates (x, y, z lists joined by None) of a camera frustum ``depth`` metres deep."""
    k = camera.intrinsics
    corners = torch.tensor([[0, 0], [k.width - 1, 0], [k.width - 1, k.height - 1], [0, k.height - 1]], dtype=torch.float32)
    rays = torch.stack([(corners[:, 0] - k.cx) / k.fx, (corners[:, 1] - k.cy) / k.fy, torch.ones(4)], dim=1) * depth
    c2w = camera.camera_to_world
    world = rays @ c2w[:3, :3].T + c2w[:3, 3]  # [4, 3]
    centre = c2w[:3, 3]
    path = [centre, world[0], world[1], centre, world[2], world[3], centre, world[0], world[3], world[2], world[1]]
    return torch.stack(path)


def cache_figure(rollout: Rollout, step: int, basis: PCABasis | None = None, max_points: int = 20_000) -> go.Figure:
    """The latent cache after ``step`` in 3D, PCA-coloured, with the RGB cloud and the camera path.

    Each cloud shows at most ``max_points`` points (a fixed random subset); the legend says how many of how many.
    """
    basis = basis or rollout_pca(rollout)
    figure = go.Figure()
    for name, size in (("rgb", 1.5), ("latent", 3.0)):
        if name not in rollout.caches:
            continue
        points, features = rollout.cache_at(name, step)
        keep = _subsample(points.shape[0], max_points)
        colors = basis.colors(features[keep]) if name == "latent" else features[keep]
        x, y, z = _to_plot(points[keep])
        label = "latent cache (PCA colours)" if name == "latent" else "RGB point cloud"
        figure.add_trace(go.Scatter3d(
            x=x.tolist(), y=y.tolist(), z=z.tolist(), mode="markers", name=f"{label}: {len(keep):,} of {points.shape[0]:,}",
            marker=dict(size=size, color=_rgb_strings(colors)), visible=True if name == "latent" else "legendonly",
        ))
    for index, camera in enumerate(rollout.cameras):
        current = index == step
        x, y, z = _to_plot(_frustum(camera, 0.35 if current else 0.2))
        figure.add_trace(go.Scatter3d(
            x=x.tolist(), y=y.tolist(), z=z.tolist(), mode="lines", showlegend=current or index == 0,
            name="current camera" if current else "trajectory", legendgroup="current" if current else "trajectory",
            line=dict(color="#ff7f0e" if current else "#444444", width=5 if current else 2),
        ))
    figure.update_layout(
        title=f"Step {step}: memory caches in 3D",
        scene=dict(xaxis_title="x (right)", yaxis_title="z (forward)", zaxis_title="-y (up)", aspectmode="data"),
        margin=dict(l=0, r=0, t=40, b=0), legend=dict(x=0, y=1),
    )
    return figure


def _image(image: torch.Tensor) -> go.Image:
    """(3, H, W) in [0, 1] -> a plotly image trace."""
    return go.Image(z=(image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())


def _image_row(panels: list[tuple[str, torch.Tensor]], title: str) -> go.Figure:
    """One row of titled images (3, H, W) in [0, 1]."""
    figure = make_subplots(rows=1, cols=max(1, len(panels)), subplot_titles=[t for t, _ in panels])
    for column, (_, image) in enumerate(panels, start=1):
        figure.add_trace(_image(image), row=1, col=column)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(title=title, margin=dict(l=0, r=0, t=60, b=0))
    return figure


def latent_panels_figure(rollout: Rollout, step: int, basis: PCABasis | None = None) -> go.Figure:
    """What each memory handed the generator at ``step``: the warped latent and its hole mask, and the RGB
    baseline's pixel render with its re-encoded latent (PCA colours share the rollout's basis)."""
    basis = basis or rollout_pca(rollout)
    panels: list[tuple[str, torch.Tensor]] = []
    if "latent" in rollout.records:
        record = rollout.records["latent"][step]
        panels.append(("latent memory: warped latent", basis.image(record.conditioning_latent, record.mask)))
        panels.append((f"hole mask ({record.mask_coverage:.0%} covered)", record.mask[None].float().expand(3, -1, -1)))
    if "rgb" in rollout.records:
        record = rollout.records["rgb"][step]
        render = record.memory_render if record.memory_render is not None else torch.zeros_like(record.frame)
        panels.append(("RGB memory: pixel render", render))
        panels.append(("RGB render re-encoded", basis.image(record.conditioning_latent, record.mask)))
    return _image_row(panels, f"Step {step}: what the generator is conditioned on")


def frames_figure(rollout: Rollout, step: int) -> go.Figure:
    """Decoded frames of every memory at ``step``, and the true render when there is one."""
    panels = [(f"{name} (PSNR {r[step].psnr:.1f} dB)" if r[step].psnr is not None else name, r[step].frame)
              for name, r in rollout.records.items()]
    truth = next(iter(rollout.records.values()))[step].true_frame
    if truth is not None:
        panels.append(("truth", truth))
    return _image_row(panels, f"Step {step}: decoded frames")


def metrics_figure(rollout: Rollout) -> go.Figure:
    """Charts over steps: time per stage, cache bytes, mask coverage, PSNR against the truth."""
    figure = make_subplots(rows=2, cols=2, subplot_titles=(
        "time per stage (ms, stacked)", "cache bytes", "mask coverage", "PSNR against the truth (dB)"))
    for name, records in rollout.records.items():
        color = MEMORY_COLORS.get(name)
        steps = [r.step for r in records]
        for index, stage in enumerate(STAGES):
            figure.add_trace(go.Bar(
                x=[f"{name} {s}" for s in steps], y=[r.timings_ms[stage] for r in records], name=stage,
                legendgroup=stage, showlegend=name == next(iter(rollout.records)),
                marker_color=["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"][index],
            ), row=1, col=1)
        for (row, col), values in (((1, 2), [r.cache_bytes for r in records]), ((2, 1), [r.mask_coverage for r in records]),
                                   ((2, 2), [r.psnr for r in records])):
            figure.add_trace(go.Scatter(x=steps, y=values, name=name, legendgroup=name, showlegend=(row, col) == (2, 2),
                                        line=dict(color=color), mode="lines+markers"), row=row, col=col)
    figure.update_layout(barmode="stack", title="Rollout metrics", margin=dict(l=0, r=0, t=60, b=0))
    figure.update_yaxes(type="log", row=1, col=2)
    return figure
