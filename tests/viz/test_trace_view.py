"""Trace a cell, drawn (mirage_viz.viz.trace_view): the pictures and cards say what the engine's trace says."""

import copy
import dataclasses
import html

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from mirage_viz.rollout import trace_cell, trace_pixel
from mirage_viz.viz.trace_view import (CLICK_PICTURES, OUTLINE, click_figure, click_picture, click_scale,
                                       pixel_of_click, trace_cache_figure, trace_overlay, trace_view, trace_view_html)


def covered_and_hole(rollout, step):
    """A pixel of ``step``'s frame under a covered latent cell and one under a hole (None where there is none)."""
    mask = rollout.records["latent"][step].mask  # (h, w)
    height, width = rollout.records["latent"][step].frame.shape[-2:]
    f = width // mask.shape[1]

    def pixel(cells):
        return None if cells.numel() == 0 else (int(cells[0, 1]) * f + f // 2, int(cells[0, 0]) * f + f // 2)

    return pixel(mask.nonzero()), pixel((~mask).nonzero())


def without_truth(rollout):
    """The same rollout as if it started from a photo: no true frame, no score."""
    records = {name: [dataclasses.replace(r, true_frame=None, psnr=None, ssim=None) for r in history]
               for name, history in rollout.records.items()}
    return dataclasses.replace(copy.copy(rollout), records=records)


def test_a_covered_cell_names_the_engines_winner_in_every_memory(small_rollout):
    step = 3
    (x, y), _ = covered_and_hole(small_rollout, step)
    view = trace_view(small_rollout, step, x, y)
    assert [m.memory for m in view.memories] == ["latent", "rgb"] and view.notes  # the no-memory: a note, no column
    page = html.unescape(trace_view_html(view))
    for memory in ("latent", "rgb"):
        expected = trace_pixel(small_rollout, memory, step, x, y)
        card = next(m for m in view.memories if m.memory == memory)
        assert card.trace == expected and expected.covered
        sentence = f"From step {expected.winner.step}, at depth {expected.winner.depth:.2f} m from this step's camera."
        assert card.lines[0] == sentence and sentence in page
        assert f"Rule: {expected.rule}." in card.lines
        assert card.picture.title == f"step {expected.winner.step}: where it was lifted from"
        assert (card.picture.image == OUTLINE).all(axis=-1).any()  # the footprint is outlined
    row, col = view.trace("latent").row, view.trace("latent").col
    assert trace_cell(small_rollout, "latent", step, row, col) == view.trace("latent")
    assert "The 64 pixels under the same latent cell" in page  # the RGB memory at the latent cell's place
    assert page.count("<img") == 2 and html.unescape(trace_view_html(view, with_current=True)).count("<img") == 3


def test_a_hole_says_why_and_shows_the_closest_earlier_view(small_rollout):
    step = next(s for s in range(1, len(small_rollout)) if covered_and_hole(small_rollout, s)[1] is not None)
    _, (x, y) = covered_and_hole(small_rollout, step)
    view = trace_view(small_rollout, step, x, y)
    latent = next(m for m in view.memories if m.memory == "latent")
    assert not latent.trace.covered and latent.lines[0] == f"A hole: {latent.trace.hole_reason}."
    if latent.trace.closest_views:
        assert latent.lines[1].startswith("The earlier cameras that came closest: step ")
        assert "closest earlier view" in latent.picture.title or "a hole" in latent.picture.title
    rays = [t for t in trace_overlay(view) if t["mode"] == "lines" and t["legendgroup"] == "trace-latent"]
    assert len(rays) == (latent.trace.place is not None)


def test_step_zero_and_a_pixel_off_the_frame_are_refused_with_the_engines_words(small_rollout):
    with pytest.raises(ValueError, match="step 0 is the given first frame"):
        trace_view(small_rollout, 0, 5, 5)
    with pytest.raises(ValueError, match="x must be a pixel"):
        trace_view(small_rollout, 1, 500, 5)


def test_a_click_maps_to_the_frame_pixel_it_shows(small_rollout):
    scale = click_scale(small_rollout)
    shown = click_picture(small_rollout, 2)
    assert shown.scale == scale and shown.image.shape == (128 * scale, 128 * scale, 3) and 128 * scale >= 512
    assert pixel_of_click(small_rollout, 7 * scale, 9 * scale + scale - 1) == (7, 9)
    with pytest.raises(ValueError, match="off the 512x512 picture"):
        pixel_of_click(small_rollout, 128 * scale, 0)
    outlined = click_picture(small_rollout, 2, "decoded frame", outline=(8, 8, 16, 16))
    assert (outlined.image == OUTLINE).all(axis=-1).sum() > (shown.image == OUTLINE).all(axis=-1).sum()
    figure = click_figure(shown)
    assert figure.data[0].type == "image" and figure.data[0].source.startswith("data:image/png;base64,")


def test_every_picture_to_click_and_a_photo_without_truth(small_rollout):
    for picture in CLICK_PICTURES:
        assert click_picture(small_rollout, 1, picture).caption.startswith("step 1")
    photo = without_truth(small_rollout)
    assert "no true view" in click_picture(photo, 1, "truth").caption
    (x, y), _ = covered_and_hole(photo, 2)
    assert trace_view(photo, 2, x, y).trace("latent") == trace_view(small_rollout, 2, x, y).trace("latent")
    with pytest.raises(ValueError, match="picture must be one of"):
        click_picture(small_rollout, 1, "depth")


def test_the_3d_caches_highlight_each_winner_and_its_ray_from_the_camera(small_rollout):
    (x, y), _ = covered_and_hole(small_rollout, 3)
    view = trace_view(small_rollout, 3, x, y)
    figure = trace_cache_figure(small_rollout, view, max_points=500)
    assert go.Figure(figure.to_plotly_json()).data  # every property valid
    latent = view.trace("latent")
    name = f"latent: from step {latent.winner.step} at {latent.winner.depth:.2f} m"
    marker = next(t for t in figure.data if t.name == name)
    ray = next(t for t in figure.data if t.name == f"{marker.name}: the ray")
    expected = torch.tensor([latent.origin, latent.winner.position])  # plotted as (x, z, -y)
    assert np.allclose(ray.x, expected[:, 0]) and np.allclose(ray.y, expected[:, 2])
    assert np.allclose(ray.z, -expected[:, 1])
    assert (marker.x[0], marker.y[0]) == (ray.x[1], ray.y[1])
    assert len(trace_overlay(view.without_pictures())) == 4  # two memories, a marker and a ray each
