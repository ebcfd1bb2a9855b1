"""Trace a cell in the app: the handlers answer a click with the engine's own trace, and refuse with a message."""

import html
import re
from types import SimpleNamespace

import pytest

gr = pytest.importorskip("gradio")

from mirage_viz.models.hub import ModelAccess  # noqa: E402
from mirage_viz.rollout import trace_pixel  # noqa: E402
from mirage_viz.ui.app import Refusal, _Handlers  # noqa: E402
from mirage_viz.ui.sessions import RunSlots, SessionStore  # noqa: E402
from mirage_viz.ui.visitors import UploadLedger  # noqa: E402
from mirage_viz.viz.trace_view import click_scale  # noqa: E402


@pytest.fixture
def handlers(tmp_path):
    sessions = SessionStore(tmp_path / "exports", max_rollouts=4)
    uploads = UploadLedger(tmp_path / "uploads", 2**20, 2**22)
    yield _Handlers(sessions, RunSlots(), ModelAccess.for_visitors(()), uploads)
    sessions.shutdown()


def visitor(handlers, name, rollout=None, drive=None):
    """A session ``name`` holding ``rollout`` (as a finished Run leaves it) or ``drive``; its request."""
    ticket = handlers.sessions.begin_run(name, fresh=rollout is not None)
    if rollout is not None:
        handlers.sessions.publish(ticket, rollout)
    if drive is not None:
        handlers.sessions.publish_drive(ticket, drive)
    handlers.sessions.end_run(ticket)
    return SimpleNamespace(session_hash=name, client=None, headers={})


def click(rollout, x, y):
    """The select event of a click on frame pixel (x, y) of the enlarged picture (Gradio's evt.index: [x, y])."""
    scale = click_scale(rollout)
    return SimpleNamespace(index=[x * scale + scale // 2, y * scale + scale // 2])


def words(fragment: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment)))


def covered_pixel(rollout, step):
    cell = rollout.records["latent"][step].mask.nonzero()[0]
    return int(cell[1]) * 8 + 4, int(cell[0]) * 8 + 4


def test_a_click_answers_with_the_engines_step_and_depth(handlers, small_rollout):
    request = visitor(handlers, "trace-a", small_rollout)
    step = 2
    _, _, shown = handlers.trace_picture(step, "warped latent", None, request)  # the slider moved to step 2
    assert handlers.trace_picture(step, "warped latent", shown, request) == (gr.update(),) * 3  # shown already
    x, y = covered_pixel(small_rollout, step)
    picture, answer, kept = handlers.trace(shown, "warped latent", click(small_rollout, x, y), request)
    text = words(answer)
    for memory in ("latent", "rgb"):
        trace = trace_pixel(small_rollout, memory, step, x, y)
        assert f"From step {trace.winner.step}, at depth {trace.winner.depth:.2f} m" in text
        assert kept.trace(memory).winner == trace.winner
    assert f"Step {step}, pixel ({x}, {y})" in text
    assert picture.value is not None and "the traced cell outlined" in picture.label
    figure = handlers.trace_figure(kept, request)  # the 3D caches, drawn after the answer
    assert any(t.name and t.name.startswith("latent: from step") for t in figure.data)
    drawn, hint, shown = handlers.trace_picture(3, "truth", shown, request)  # a new step: the picture follows
    assert "step 3: the true view" in drawn.label and "Click a cell" in hint and shown.step == 3  # the answer clears


def test_refusals_are_messages_never_tracebacks(handlers, small_rollout):
    with pytest.raises(Refusal, match="No rollout yet: press Run"):
        handlers.trace(None, "warped latent", click(small_rollout, 5, 5), visitor(handlers, "trace-empty"))
    empty_picture, _, shown = handlers.trace_picture(0, "warped latent", None, visitor(handlers, "trace-empty"))
    assert "press Run" in empty_picture.label and shown is None
    request = visitor(handlers, "trace-b", small_rollout)
    _, _, shown = handlers.trace_picture(0, "warped latent", None, request)
    with pytest.raises(Refusal) as refused:
        handlers.trace(shown, "warped latent", click(small_rollout, 5, 5), request)
    assert "step 0 is the given first frame" in refused.value.text
    with pytest.raises(Refusal, match="off the 512x512 picture"):
        handlers.trace(None, "warped latent", SimpleNamespace(index=[600, 3]), request)
    with pytest.raises(Refusal, match="No drive yet"):
        handlers.drive_trace(None, "warped latent", click(small_rollout, 5, 5), request)


def test_the_drive_tab_traces_its_last_step(handlers, small_rollout):
    request = visitor(handlers, "trace-drive", drive=SimpleNamespace(rollout=small_rollout))
    last = len(small_rollout) - 1
    drawn, _, shown = handlers.drive_trace_picture("decoded frame", request)
    assert drawn.label.startswith(f"step {last}: the latent memory's decoded frame") and shown.step == last
    x, y = covered_pixel(small_rollout, last)
    _, answer, kept = handlers.drive_trace(shown, "decoded frame", click(small_rollout, x, y), request)
    trace = trace_pixel(small_rollout, "latent", last, x, y)
    assert f"From step {trace.winner.step}, at depth {trace.winner.depth:.2f} m" in words(answer)
    assert kept.step == last and handlers.drive_trace_figure(kept, request).data


@pytest.mark.slow
def test_a_rollout_from_a_photo_traces_without_truth(handlers, backbone):
    from mirage_viz.rollout import RolloutConfig, run_rollout
    from mirage_viz.scenes.photo import load_photo, sample_photos

    photo = load_photo(sample_photos()[0], 128, None)
    rollout = run_rollout(RolloutConfig(trajectory="pan_left", magnitude=10.0, steps=2, size=128), backbone=backbone,
                          photo=photo)
    request = visitor(handlers, "trace-photo", rollout)
    drawn, _, shown = handlers.trace_picture(2, "truth", None, request)
    assert "no true view to show: a photo" in drawn.label
    x, y = covered_pixel(rollout, 2)
    _, answer, kept = handlers.trace(shown, "truth", click(rollout, x, y), request)
    trace = trace_pixel(rollout, "latent", 2, x, y)
    assert kept.trace("latent") == trace and f"at depth {trace.winner.depth:.2f} m" in words(answer)
