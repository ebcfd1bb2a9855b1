"""A preview that is the run: a planned path's cameras over the first frame's point cloud, before anything runs.

:func:`preview_path` takes a :class:`~mirage_viz.rollout.config.RolloutPlan` (the very cameras the engine will
run, from :func:`~mirage_viz.rollout.config.plan_rollout`) and gathers what can be seen without a model: the first
frame (the world's view at the first camera, or the photo), the world's true view at the last camera, and the
first frame lifted to 3D with its depth (true for a world; for a photo, a depth estimator's when one is given).
:func:`path_preview_figure` draws the frustums over that cloud; :func:`path_preview_html` shows the two views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import plotly.graph_objects as go
import torch

from mirage_viz.geometry.cameras import Camera
from mirage_viz.geometry.projection import backproject_depth
from mirage_viz.image import to_uint8_image
from mirage_viz.rollout.config import RolloutPlan
from mirage_viz.scenes.photo import Photo
from mirage_viz.scenes.sequence import ImageSequence
from mirage_viz.viz.figures import cloud_trace, figure_from_traces, frustum, plot_xyz, scene_layout
from mirage_viz.viz.step_view import Tile, tile_row_html

__all__ = ["PREVIEW_MAX_POINTS", "PathPreview", "preview_path", "path_preview_figure", "path_preview_html"]

PREVIEW_MAX_POINTS = 6_000  # of the first frame's points: enough to see the room, a light payload


@dataclass(frozen=True)
class PathPreview:
    """What a planned rollout will see, before it runs."""

    cameras: list[Camera]  # the plan's cameras, the very objects the run uses
    first_view: torch.Tensor  # (3, H, W) in [0, 1]: the world's view at the first camera, or the photo
    last_view: torch.Tensor | None  # (3, H, W): the world's true view at the last camera; None for a photo
    points: torch.Tensor  # (M, 3) world points of the first frame (none for a photo without a depth estimator)
    colors: torch.Tensor  # (M, 3) in [0, 1]
    title: str  # the path in words: "loop, 8 steps in room (seed 0)"
    depth_note: str  # where the cloud's depth came from


def preview_path(plan: RolloutPlan, photo: Photo | None = None,
                 estimate_depth: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 max_points: int = PREVIEW_MAX_POINTS, sequence: ImageSequence | None = None) -> PathPreview:
    """The preview of ``plan``: renders the world at the first and last cameras (a photo: the photo, no last view; a
    posed image sequence: its first and last real frames), and lifts the first frame with its true depth, or a photo's
    or a sequence's with ``estimate_depth(image (3, H, W)) -> (H, W)``."""
    setup, cameras = plan.setup, plan.cameras
    if plan.world is not None:
        first = plan.world.render(cameras[0])
        first_view, depth = first.rgb, first.depth
        last_view = plan.world.render(cameras[-1]).rgb
        depth_note = "true depth"
        where = f"{setup.world} (seed {setup.world_seed})"
    else:
        if photo is None and sequence is None:
            raise ValueError("a plan without a world is a photo's or a sequence's: give the photo (or the sequence) to preview it")
        if sequence is not None:
            photo = sequence.first_photo
        last_view = None if sequence is None else sequence.truth(len(cameras) - 1)
        first_view, where = photo.image, setup.sequence or setup.photo
        depth = estimate_depth(photo.image) if estimate_depth is not None else None
        depth_note = "estimated depth" if depth is not None else "no depth estimator: cameras only"
    if depth is not None:
        points = backproject_depth(depth, cameras[0])  # (H * W, 3), row-major like the image
        colors = first_view.reshape(3, -1).T  # (H * W, 3)
        keep = torch.randperm(points.shape[0], generator=torch.Generator().manual_seed(0))[:max_points]
        points, colors = points[keep], colors[keep]
    else:
        points, colors = torch.zeros(0, 3), torch.zeros(0, 3)
    title = f"{setup.trajectory}, {setup.steps} step{'s' * (setup.steps != 1)} in {where}"
    return PathPreview(cameras=cameras, first_view=first_view, last_view=last_view, points=points, colors=colors,
                       title=title, depth_note=depth_note)


def path_preview_figure(preview: PathPreview) -> go.Figure:
    """The path's frustums (the first green, the last orange, the rest grey) over the first frame's point cloud."""
    traces: list[dict] = []
    if preview.points.shape[0]:
        traces.append(cloud_trace(f"first frame ({preview.depth_note}): {preview.points.shape[0]:,} points",
                                  preview.points, preview.colors, 2.0))
    middle = preview.cameras[1:-1]
    if middle:
        path = torch.cat([torch.cat([frustum(c, 0.2), torch.full((1, 3), float("nan"))]) for c in middle])
        traces.append(dict(type="scatter3d", **plot_xyz(path), mode="lines", name=f"steps 1 to {len(middle)}",
                           hoverinfo="skip", line=dict(color="#666666", width=2)))
    centres = torch.stack([c.camera_to_world[:3, 3] for c in preview.cameras])
    traces.append(dict(type="scatter3d", **plot_xyz(centres), mode="lines", name="the path", hoverinfo="skip",
                       line=dict(color="#1f77b4", width=3, dash="dot")))
    ends = [(0, "first camera", "#2ca02c"), (len(preview.cameras) - 1, "last camera", "#ff7f0e")]
    for index, name, color in ends:
        traces.append(dict(type="scatter3d", **plot_xyz(frustum(preview.cameras[index], 0.35)), mode="lines",
                           name=f"{name} (step {index})", hoverinfo="skip", line=dict(color=color, width=6)))
    extent = torch.cat([preview.points, *(frustum(c, 0.35) for c in preview.cameras)])
    layout = scene_layout(extent, preview.cameras[0], f"{preview.title}: its cameras (drag to turn)",
                          uirevision="preview")
    return figure_from_traces(traces, layout)


def path_preview_html(preview: PathPreview, columns: int | None = None) -> str:
    """The first frame and the true view at the last camera, titled, as one HTML fragment (the step view's style):
    side by side, or ``columns`` to a row (1: stacked, beside the figure)."""
    last = len(preview.cameras) - 1
    tiles = [Tile("first frame (step 0)", _fov(preview.cameras[0]), to_uint8_image(preview.first_view))]
    if preview.last_view is not None:
        tiles.append(Tile(f"true view at the last camera (step {last})", _fov(preview.cameras[last]),
                          to_uint8_image(preview.last_view)))
    heading = f"Path preview: {preview.title}" + ("" if preview.last_view is not None else " (a photo: no truth beyond step 0)")
    return tile_row_html(heading, tiles, columns)


def _fov(camera: Camera) -> str:
    k = camera.intrinsics
    centre = ", ".join(f"{round(v, 2) + 0.0:.2f}" for v in camera.camera_to_world[:3, 3].tolist())  # no "-0.00"
    return f"field of view {k.fov_x_degrees:.0f} degrees, at ({centre}) m"

