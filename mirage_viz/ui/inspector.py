"""A Jupyter inspector: one call from a rollout, a slider over steps, the app's panels.

Works in Jupyter Lab and VS Code notebooks (ipywidgets + plotly ``FigureWidget``). Like the app, it only
arranges what :mod:`mirage_viz.viz.step_view` and :mod:`mirage_viz.viz.figures` draw: the step view (frames, error
maps, what each memory hands the generator), the caches in 3D and the charts over steps. Before a run,
:func:`preview` shows a planned path's cameras over the first frame's point cloud, and its first and last views.
"""

from __future__ import annotations

import ipywidgets as widgets
import plotly.graph_objects as go

from mirage_viz.backbone import Backbone
from mirage_viz.rollout.config import RolloutConfig, RolloutPlan, plan_rollout
from mirage_viz.rollout.records import Rollout
from mirage_viz.scenes.photo import Photo
from mirage_viz.scenes.trajectories import Trajectory
from mirage_viz.viz.figures import cache_figure, metrics_figure, rollout_pca
from mirage_viz.viz.preview import PathPreview, path_preview_figure, path_preview_html, preview_path
from mirage_viz.viz.step_view import step_view, step_view_html

__all__ = ["PathPreviewer", "RolloutInspector", "inspect", "preview"]


def _replace(widget: go.FigureWidget, figure: go.Figure) -> None:
    with widget.batch_update():
        widget.data = []
        widget.add_traces(figure.data)
        widget.layout = figure.layout


class RolloutInspector:
    """``RolloutInspector(rollout)`` shows itself in a notebook; ``.step`` moves every panel."""

    def __init__(self, rollout: Rollout, max_points: int = 3_000) -> None:
        if len(rollout) == 0:
            raise ValueError("the rollout has no steps yet; run at least its first step before inspecting it")
        self.rollout = rollout
        self.max_points = max_points
        self.basis = rollout_pca(rollout)
        last = len(rollout) - 1
        self.slider = widgets.IntSlider(value=last, min=0, max=last, description="step", continuous_update=False)
        self.view = widgets.HTML()  # the step view: frames, error maps, conditioning (images as WebP data)
        self.cache = go.FigureWidget()
        self.metrics = go.FigureWidget(metrics_figure(rollout))
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.widget = widgets.VBox([self.slider, self.view, self.cache, self.metrics])
        self.show(last)

    @property
    def step(self) -> int:
        return self.slider.value

    @step.setter
    def step(self, value: int) -> None:
        if not 0 <= int(value) < len(self.rollout):
            raise ValueError(f"step must be in [0, {len(self.rollout) - 1}], got {value}")
        self.slider.value = int(value)

    def show(self, step: int) -> None:
        """Redraw every per-step panel for ``step``."""
        self.view.value = step_view_html(step_view(self.rollout, step, self.basis))
        _replace(self.cache, cache_figure(self.rollout, step, self.basis, max_points=self.max_points))

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)


def inspect(rollout: Rollout, max_points: int = 3_000) -> RolloutInspector:
    """The inspector for ``rollout``: put it last in a notebook cell to show it."""
    return RolloutInspector(rollout, max_points=max_points)


class PathPreviewer:
    """A planned path before it runs: ``.plan`` holds the very cameras a run of the same inputs uses."""

    def __init__(self, plan: RolloutPlan, photo: Photo | None = None, backbone: Backbone | None = None) -> None:
        self.plan = plan
        self.preview: PathPreview = preview_path(
            plan, photo, backbone.estimate_depth if backbone is not None and photo is not None else None)
        self.views = widgets.HTML(path_preview_html(self.preview))
        self.figure = go.FigureWidget(path_preview_figure(self.preview))
        self.widget = widgets.VBox([self.views, self.figure])

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)


def preview(config: RolloutConfig | None = None, trajectory: Trajectory | None = None, photo: Photo | None = None,
            backbone: Backbone | None = None) -> PathPreviewer:
    """The path ``run_rollout`` would take with the same arguments, shown before it runs (cheap: no model runs;
    a photo's cloud needs ``backbone`` for its depth). Raises ``ValueError`` for inputs a run would refuse."""
    return PathPreviewer(plan_rollout(config, trajectory=trajectory, photo=photo, backbone=backbone), photo, backbone)
