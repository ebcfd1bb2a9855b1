"""Trace a cell in the notebook inspector: a click on its picture traces the cell and updates every widget."""

import pytest

from mirage_viz.rollout import trace_pixel


def test_a_click_on_the_inspectors_picture_traces_the_cell(small_rollout):
    pytest.importorskip("anywidget")
    from plotly.callbacks import Points

    from mirage_viz.ui.inspector import inspect
    from mirage_viz.viz.trace_view import click_scale

    inspector = inspect(small_rollout, max_points=500)
    inspector.step = 2
    assert "Click a cell" in inspector.answer.value and inspector.frame.data[0].type == "image"
    assert inspector.frame.layout.title.text.startswith("step 2: the latent memory's warped latent")
    cell = small_rollout.records["latent"][2].mask.nonzero()[0]
    x, y = int(cell[1]) * 8 + 3, int(cell[0]) * 8 + 5
    scale = click_scale(small_rollout)
    points = Points(point_inds=[[y * scale, x * scale]], xs=[x * scale + 1], ys=[y * scale + 2], trace_name=None,
                    trace_index=0)
    inspector.frame.data[0]._dispatch_on_click(points, None)  # what plotly does with the browser's click
    expected = trace_pixel(small_rollout, "latent", 2, x, y)
    assert inspector.traced.trace("latent") == expected
    assert f"From step {expected.winner.step}, at depth {expected.winner.depth:.2f} m" in inspector.answer.value
    assert any(t.name == f"latent: from step {expected.winner.step} at {expected.winner.depth:.2f} m"
               for t in inspector.cache.data)
    assert inspector.frame.data[0].on_click  # the new picture (the cell outlined) listens too
    inspector.step = 0  # another step: the trace is cleared; step 0 read nothing, so a trace says why
    assert inspector.traced is None and "Click a cell" in inspector.answer.value
    assert inspector.trace(5, 5) is None and "step 0 is the given first frame" in inspector.answer.value


def test_trace_figure_shows_one_traced_place_in_a_notebook(small_rollout):
    pytest.importorskip("anywidget")
    from mirage_viz.ui.inspector import trace_figure

    shown = trace_figure(small_rollout, 3, 60, 60, max_points=500)
    assert shown.view.step == 3 and shown.answer.value.count("<img") == 3  # the step's frame, then each memory's
    assert any((t.name or "").startswith("latent: ") for t in shown.figure.data)
    with pytest.raises(ValueError, match="step 0"):
        trace_figure(small_rollout, 0, 60, 60)
