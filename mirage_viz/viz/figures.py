"""Plotly figures of a rollout: pure functions of its records, shared by the app and the notebooks.

3D views plot the OpenCV world (y down) as ``(x, z, -y)``, so up is up on screen and the start
camera looks along the plot's second axis.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from mirage_viz.geometry.cameras import Camera
from mirage_viz.rollout.records import Rollout
from mirage_viz.geometry.projection import camera_rays
from mirage_viz.geometry.splat import splat_points
from mirage_viz.viz.pca import PCABasis, fit_pca

__all__ = ["rollout_pca", "cache_figure", "latent_panels_figure", "frames_figure", "metrics_figure", "cloud_trace",
           "frustum", "plot_xyz", "scene_layout", "figure_from_traces"]



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
    """At most ``limit`` of ``count`` indices, evenly strided (caches are in write order: every step keeps its share)."""
    if count <= limit:
        return torch.arange(count)
    return torch.arange(limit, dtype=torch.float64).mul_(count / limit).long()


def frustum(camera: Camera, depth: float) -> torch.Tensor:
    """A camera frustum ``depth`` metres deep as a polyline (11, 3) in the world frame."""
    k = camera.intrinsics
    corners = torch.tensor([[0, 0], [k.width - 1, 0], [k.width - 1, k.height - 1], [0, k.height - 1]], dtype=torch.float32)
    rays = camera_rays(k, corners[:, 0], corners[:, 1]) * depth  # [4, 3] camera frame
    c2w = camera.camera_to_world
    world = rays @ c2w[:3, :3].T + c2w[:3, 3]  # [4, 3]
    centre = c2w[:3, 3]
    path = [centre, world[0], world[1], centre, world[2], world[3], centre, world[0], world[3], world[2], world[1]]
    return torch.stack(path)


_LEVELS = 6  # per channel: a fixed palette of 6^3 = 216 colours, the same at every step and in every figure
_PALETTE = [[i / (_LEVELS**3 - 1), "rgb({},{},{})".format(*(round(255 * ((i // _LEVELS**k) % _LEVELS) / (_LEVELS - 1))
                                                          for k in (2, 1, 0)))] for i in range(_LEVELS**3)]


def _palette_indices(colors: torch.Tensor) -> np.ndarray:
    """Colours (N, 3) in [0, 1] as indices (N,) uint8 into the fixed 216-colour palette (the nearest level per channel).

    Per-point colour strings cost about 17 bytes a point in JSON; an index costs one byte (as a typed array),
    and every cloud shares one colour axis, so the palette is sent once.
    """
    levels = (colors.clamp(0, 1) * (_LEVELS - 1)).round().to(torch.int64)  # (N, 3)
    return (levels[:, 0] * _LEVELS**2 + levels[:, 1] * _LEVELS + levels[:, 2]).to(torch.uint8).numpy()


def plot_xyz(points: torch.Tensor) -> dict[str, np.ndarray]:
    """World points (N, 3) as plot coordinates x, y, z (float32 arrays, sent to the browser as typed arrays)."""
    plot = torch.stack(_to_plot(points.float()), dim=1).numpy().astype(np.float32)  # [N, 3]
    return {"x": plot[:, 0], "y": plot[:, 1], "z": plot[:, 2]}


def cloud_trace(name: str, points: torch.Tensor, colors: torch.Tensor, size: float, **kwargs: object) -> dict:
    """A scatter3d trace (as a dict: plotly validates dicts once, in ``go.Figure``) of points (N, 3) coloured
    (N, 3) through a palette."""
    return dict(type="scatter3d", **plot_xyz(points), mode="markers", name=name, hoverinfo="skip",
                marker=dict(size=size, color=_palette_indices(colors), coloraxis="coloraxis"), **kwargs)


def read_points(rollout: Rollout, memory: str, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The cached points (M, 3) and features (M, C) that ``memory``'s read at ``step`` used: the cache after
    step - 1 splatted into the camera of ``step`` at the read's grid, one winning point per covered cell."""
    if step < 1:
        return torch.zeros(0, 3), torch.zeros(0, 0)
    points, features = rollout.cache_at(memory, step - 1)
    if points.shape[0] == 0:
        return points, features
    height, width = rollout.records[memory][step].mask.shape
    splat = splat_points(points, features, rollout.cameras[step].scaled_to(width, height))
    used = splat.point_index[splat.point_index >= 0]
    return points[used], features[used]


def _scene_camera(camera: Camera, low: np.ndarray, high: np.ndarray) -> dict:
    """A plotly scene camera a little behind and above ``camera``, looking where it looks.

    Plotly places the eye in a box where each axis range spans its aspect ratio, centred on 0.
    """
    c2w = camera.camera_to_world.double()
    centre, forward, down = c2w[:3, 3], c2w[:3, 2], c2w[:3, 1]
    span = np.maximum(high - low, 1e-6)
    aspect = span / span.max()

    def normalized(point: torch.Tensor) -> dict[str, float]:
        plot = torch.stack(_to_plot(point[None]), dim=1)[0].numpy()
        value = (plot - (low + high) / 2) / span * aspect
        return dict(x=float(value[0]), y=float(value[1]), z=float(value[2]))

    reach = float(span.max())  # metres: back far enough to see the room around the camera
    eye = centre - 0.2 * reach * forward - 0.1 * reach * down
    return dict(eye=normalized(eye), center=normalized(centre + 0.1 * reach * forward), up=dict(x=0, y=0, z=1))


def scene_layout(extent: torch.Tensor, camera: Camera, title: str, uirevision: str) -> dict:
    """A 3D view's layout: axes spanning the world points ``extent`` (N, 3) (NaN ignored) at true proportions,
    seen from behind ``camera``, the legend below, the palette colour axis of :func:`cloud_trace`."""
    plot = torch.stack(_to_plot(extent.float()), dim=1).numpy()
    low, high = np.nanmin(plot, axis=0) - 0.2, np.nanmax(plot, axis=0) + 0.2
    span = np.maximum(high - low, 1e-6)
    axes = {f"{axis}axis": dict(title=dict(text=name), range=[float(low[i]), float(high[i])])
            for i, (axis, name) in enumerate(zip("xyz", ("x (right)", "z (forward)", "-y (up)")))}
    return dict(
        template=dict(layout=dict()), uirevision=uirevision, height=520, margin=dict(l=0, r=0, t=36, b=0),
        title=dict(text=title, x=0.01, y=0.98, font=dict(size=15)),
        scene=dict(**axes, aspectmode="manual", aspectratio=dict(zip("xyz", (span / span.max()).tolist())),
                   camera=_scene_camera(camera, low, high)),
        legend=dict(orientation="h", x=0, y=0, yanchor="top", font=dict(size=13)),
        coloraxis=dict(colorscale=_PALETTE, cmin=0, cmax=len(_PALETTE) - 1, showscale=False),
    )


def cache_figure(rollout: Rollout, step: int, basis: PCABasis | None = None, max_points: int = 20_000) -> go.Figure:
    """The caches after ``step`` in 3D, seen from behind the step's camera.

    The latent cache is drawn in PCA colours (faint), the points this step's read used (those that landed
    in its camera) bright and larger, the RGB cloud on a legend toggle, and every camera's frustum with the
    current one in orange. The latent cloud shows at most ``max_points`` points and the RGB cloud half as many
    (a fixed random subset); the legend, below the plot, says how many of how many.
    """
    basis = basis or rollout_pca(rollout)
    traces: list[dict] = []
    extent: list[torch.Tensor] = []
    for name in rollout.memories_holding("color"):  # colour clouds (the RGB memory), on a legend toggle
        label = rollout.memory_info[name].label
        points, colors = rollout.cache_at(name, step)
        keep = _subsample(points.shape[0], max_points // 2)
        if keep.numel():
            traces.append(cloud_trace(f"{label}: {len(keep):,} of {points.shape[0]:,}", points[keep], colors[keep],
                                      1.5, visible="legendonly"))
    for name in rollout.memories_holding("latent"):
        label = rollout.memory_info[name].label
        points, features = rollout.cache_at(name, step)
        keep = _subsample(points.shape[0], max_points)
        if keep.numel():
            traces.append(cloud_trace(f"{label} (PCA colours): {len(keep):,} of {points.shape[0]:,}", points[keep],
                                      basis.colors(features[keep]), 2.0, opacity=0.35))
            extent.append(points[keep])
        used, used_features = read_points(rollout, name, step)
        if used.shape[0]:
            traces.append(cloud_trace(f"read at step {step}: {used.shape[0]:,} points landed in the camera", used,
                                      basis.colors(used_features), 4.0))
    past = [frustum(camera, 0.2) for index, camera in enumerate(rollout.cameras[: len(rollout)]) if index != step]
    if past:
        path = torch.cat([torch.cat([f, torch.full((1, 3), float("nan"))]) for f in past])
        traces.append(dict(type="scatter3d", **plot_xyz(path), mode="lines", name="cameras so far", hoverinfo="skip",
                           line=dict(color="#555555", width=2)))
    current = frustum(rollout.cameras[step], 0.35)
    extent.append(current)
    traces.append(dict(type="scatter3d", **plot_xyz(current), mode="lines", name=f"camera of step {step}",
                       hoverinfo="skip", line=dict(color="#ff7f0e", width=6)))
    layout = scene_layout(torch.cat(extent), rollout.cameras[step], f"Step {step}: the caches in 3D", uirevision="cache")
    return figure_from_traces(traces, layout)


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
    for name, info in rollout.memory_info.items():
        record = rollout.records[name][step]
        if info.features == "latent":
            panels.append((f"{name} memory: warped latent", basis.image(record.conditioning_latent, record.mask)))
            panels.append((f"hole mask ({record.mask_coverage:.0%} covered)", record.mask[None].float().expand(3, -1, -1)))
        elif info.features == "color":
            render = record.memory_render if record.memory_render is not None else torch.zeros_like(record.frame)
            panels.append((f"{name} memory: pixel render", render))
            panels.append((f"{name} render re-encoded", basis.image(record.conditioning_latent, record.mask)))
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
    """Charts over steps, one line per memory: PSNR and SSIM against the truth, the three scores that need none
    (:mod:`mirage_viz.consistency`), covered cells, cache size, read time and the whole step's time."""
    free = lambda name: lambda r: None if r.consistency is None else getattr(r.consistency, name)  # noqa: E731
    charts = (("PSNR (dB)", lambda r: _finite(r.psnr), "linear"), ("SSIM", lambda r: r.ssim, "linear"),
              ("camera off (deg; no truth needed)", free("camera_rotation_error_deg"), "linear"),
              ("reprojection error (no truth needed)", free("reprojection_error"), "linear"),
              ("flow agrees (no truth needed)", free("flow_agreement"), "linear"),
              ("cells covered by memory", lambda r: r.mask_coverage, "linear"),
              ("cache (MB, log)", lambda r: r.cache_bytes / 1e6 or None, "log"),
              ("read (ms, log)", lambda r: r.timings_ms["read"] or None, "log"),
              ("step (ms)", lambda r: sum(r.timings_ms.values()), "linear"))
    columns, rows, gap_x, gap_y = 3, math.ceil(len(charts) / 3), 0.07, 0.1
    width, height = (1 - gap_x * (columns - 1)) / columns, (1 - gap_y * (rows - 1)) / rows
    traces, layout = [], dict(
        template=dict(layout=dict()), height=170 + 200 * rows, margin=dict(l=45, r=10, t=30, b=40), font=dict(size=12), uirevision="metrics",
        legend=dict(orientation="h", x=0, y=-0.12, yanchor="top"), annotations=[])
    for index, (title, value, scale) in enumerate(charts):
        row, column = divmod(index, columns)
        suffix = "" if index == 0 else str(index + 1)
        left, top = column * (width + gap_x), 1 - row * (height + gap_y)
        grid = dict(showgrid=True, gridcolor="#dddddd", zeroline=False)
        layout[f"xaxis{suffix}"] = dict(domain=[left, min(1.0, left + width)], anchor=f"y{suffix}", tickformat="d", **grid,
                                        title=dict(text="step", standoff=2) if row == rows - 1 else None)
        layout[f"yaxis{suffix}"] = dict(domain=[max(0.0, top - height), min(1.0, top)], anchor=f"x{suffix}", type=scale, **grid)
        layout["annotations"].append(dict(text=title, x=left + width / 2, y=top, xref="paper", yref="paper",
                                          xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=13)))
        values = {name: np.array([value(r) for r in records], dtype=np.float64) for name, records in rollout.records.items()}
        if len(rollout) > 1 and all(np.isnan(v[1:]).all() for v in values.values()):  # say why a panel is empty
            layout["annotations"].append(dict(
                text="not measured at any step:<br>too few feature matches" if "camera" in title else "not measured",
                x=left + width / 2, y=top - height / 2, xref="paper", yref="paper", showarrow=False,
                font=dict(size=12, color="#666666")))
        for name, records in rollout.records.items():
            traces.append(dict(
                type="scatter", x=np.array([r.step for r in records], dtype=np.int32), y=values[name], name=f"{name} memory", legendgroup=name,
                showlegend=index == 0, mode="lines+markers", xaxis=f"x{suffix}", yaxis=f"y{suffix}",
                line=dict(color=rollout.memory_info[name].color, width=2), marker=dict(size=5)))
    return figure_from_traces(traces, layout)


def figure_from_traces(traces: list[dict], layout: dict) -> go.Figure:
    """A figure of trace and layout dicts, built by the code above: plotly's per-property validation (about 15 ms
    for a 3D view, mostly its colourscales) is skipped; the tests validate each figure in full once."""
    return go.Figure(dict(data=traces, layout=layout), _validate=False)


def _finite(value: float | None) -> float | None:
    return value if value is not None and np.isfinite(value) else None
