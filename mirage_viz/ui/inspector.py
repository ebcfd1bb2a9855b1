"""A Jupyter inspector: one call from a rollout, a slider over steps, the app's panels.

Works in Jupyter Lab and VS Code notebooks (ipywidgets + plotly ``FigureWidget``). Like the app, it only
arranges what :mod:`mirage_viz.viz.step_view`, :mod:`mirage_viz.viz.trace_view` and :mod:`mirage_viz.viz.figures`
draw: the step view (frames, error maps, what each memory hands the generator), a picture to click that traces a
cell (where that piece of memory came from, in every memory), the caches in 3D and the charts over steps.
:func:`trace_figure` traces one pixel without the inspector. Before a run, :func:`preview` shows a planned path's
cameras over the first frame's point cloud, and its first and last views.
"""

from __future__ import annotations

import html

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
from mirage_viz.viz.trace_view import (CLICK_PICTURES, TraceView, click_figure, click_picture, pixel_of_click,
                                       trace_cache_figure, trace_view, trace_view_html)

__all__ = ["CellTraceFigure", "PathPreviewer", "RolloutInspector", "inspect", "preview", "trace_figure"]

_TRACE_HINT = ("<p>Click a cell of the picture to see where that piece of memory came from: the step that lifted it, "
               "its depth, the points it beat and the rule that decided, or why it is a hole; the same place in every "
               "memory, and the ray to it in the 3D caches.</p>")


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
        self.picture = widgets.ToggleButtons(options=list(CLICK_PICTURES), value=CLICK_PICTURES[0],
                                             description="click on")
        self.frame = go.FigureWidget()  # the picture to click: a click traces the cell under it (see trace)
        self.answer = widgets.HTML(_TRACE_HINT)  # where the clicked cell came from, in every memory
        self.traced: TraceView | None = None  # the last trace
        self.cache = go.FigureWidget()
        self.metrics = go.FigureWidget(metrics_figure(rollout))
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.picture.observe(lambda change: self._show_picture(), names="value")
        tracing = widgets.HBox([widgets.VBox([self.picture, self.frame]), self.answer])
        self.widget = widgets.VBox([self.slider, self.view, tracing, self.cache, self.metrics])
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
        """Redraw every per-step panel for ``step`` (a trace of another step is cleared)."""
        self.view.value = step_view_html(step_view(self.rollout, step, self.basis))
        _replace(self.cache, cache_figure(self.rollout, step, self.basis, max_points=self.max_points))
        self.traced, self.answer.value = None, _TRACE_HINT
        self._show_picture()

    def trace(self, x: int, y: int) -> TraceView | None:
        """Trace the place under pixel ``(x, y)`` (column, row) of the current step's frame, as a click on the
        picture does: the answer, the picture with the cell outlined, the 3D caches with the winners and their rays.
        A place that cannot be traced (step 0) says why in the answer and returns None."""
        try:
            view = trace_view(self.rollout, self.step, x, y)
        except ValueError as error:
            self.traced = None
            self.answer.value = f"<p><b>This cell cannot be traced:</b> {html.escape(str(error))}</p>"
            return None
        self.traced = view
        self.answer.value = trace_view_html(view)
        self._show_picture()
        _replace(self.cache, trace_cache_figure(self.rollout, view, self.basis, max_points=self.max_points))
        return view

    def _show_picture(self) -> None:
        """The picture to click at the current step, the traced cell outlined; its click handler attached."""
        outline = self.traced.box if self.traced is not None else None
        shown = click_picture(self.rollout, self.step, self.picture.value, self.basis, outline=outline)
        _replace(self.frame, click_figure(shown))
        self.frame.data[0].on_click(self._clicked)

    def _clicked(self, trace: object, points: object, state: object) -> None:
        """A click on the picture (plotly's points: x and y in the picture's own pixels)."""
        if getattr(points, "xs", None) and getattr(points, "ys", None):
            try:
                x, y = pixel_of_click(self.rollout, points.xs[0], points.ys[0])
            except ValueError as error:
                self.answer.value = f"<p>{html.escape(str(error))}</p>"
                return
            self.trace(x, y)

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)


def inspect(rollout: Rollout, max_points: int = 3_000) -> RolloutInspector:
    """The inspector for ``rollout``: put it last in a notebook cell to show it."""
    return RolloutInspector(rollout, max_points=max_points)


class CellTraceFigure:
    """One traced place in a notebook: ``.view`` (a :class:`~mirage_viz.viz.trace_view.TraceView`), the answer as
    HTML (the step's frame with the cell outlined, then each memory's source picture and card) and the 3D caches
    with the winners and their rays."""

    def __init__(self, rollout: Rollout, view: TraceView, max_points: int = 3_000) -> None:
        self.view = view
        self.answer = widgets.HTML(trace_view_html(view, with_current=True))
        self.figure = go.FigureWidget(trace_cache_figure(rollout, view, max_points=max_points))
        self.widget = widgets.VBox([self.answer, self.figure])

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)


def trace_figure(rollout: Rollout, step: int, x: int, y: int, max_points: int = 3_000) -> CellTraceFigure:
    """Where the place under pixel ``(x, y)`` (column, row) of ``step``'s frame came from, in every memory: put it
    last in a cell to show it. Raises ``ValueError`` for a place that cannot be traced (step 0, off the frame)."""
    return CellTraceFigure(rollout, trace_view(rollout, step, x, y), max_points=max_points)


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
