"""The step view: every picture of one step as labelled image tiles, and the HTML that lays them out.

Pure functions of a rollout, shared by the app and the notebook inspector. A :class:`StepView` holds
three rows of tiles:

- **frames**: each memory's decoded frame (titled with its PSNR / SSIM against the truth) and the truth;
- **errors**: under each generated frame, its per-pixel error against the truth (when there is one);
- **conditioning**: what each memory handed the generator: the warped latent in the rollout's PCA colours,
  that latent decoded by the VAE (what the latent memory alone remembers), the RGB memory's pixel render
  and its re-encoded latent. Holes (cells no memory point reached) are hatched in magenta.

:func:`step_view_html` writes a view as one self-contained HTML fragment: images as WebP data (a few KB
each), titles as text above each image (so no two labels overlap), a grid that wraps rather than scrolls.
:func:`step_view_image` draws the frames and conditioning rows as one picture with the same titles (a video
frame of ``rollout.mp4``).
"""

from __future__ import annotations

import base64
import functools
import html
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from mirage_viz.rollout.records import Rollout, StepRecord
from mirage_viz.viz.figures import rollout_pca
from mirage_viz.image import to_uint8_image
from mirage_viz.viz.pca import PCABasis

__all__ = ["consistency_caption", "tile_row_html", "ERROR_LUT", "ERROR_RANGE", "hatch_holes", "label_font", "wrap_text", "Tile", "StepView", "step_view", "step_view_html", "step_view_image", "error_image",
           "image_data_uri"]

ERROR_RANGE = 0.5  # mean absolute error per pixel (in [0, 1] colour) shown at the colour map's top
HOLE_COLORS = ((255, 79, 160), (40, 40, 40))  # magenta and dark grey stripes: "nothing here"
_ERROR_STOPS = np.array([  # an inferno-like map: black, purple, orange, pale yellow
    [0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32)
ERROR_LUT = np.stack([np.interp(np.linspace(0, len(_ERROR_STOPS) - 1, 256), np.arange(len(_ERROR_STOPS)), _ERROR_STOPS[:, c])
                       for c in range(3)], axis=1).round().astype(np.uint8)  # (256, 3)


@dataclass(frozen=True)
class Tile:
    """One labelled picture of the step view."""

    title: str  # what it is, e.g. "latent memory"
    caption: str  # its figures, e.g. "PSNR 25.1 dB, SSIM 0.812"
    image: np.ndarray  # (H, W, 3) uint8


@dataclass(frozen=True)
class StepView:
    """Every per-step picture of ``step``: rows of tiles, aligned by column where they belong together."""

    step: int
    last_step: int
    frames: list[Tile]
    errors: list[Tile | None]  # aligned with ``frames``; None where there is nothing to compare
    conditioning: list[Tile]
    notes: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=8)
def _stripes(height: int, width: int) -> np.ndarray:
    """(H, W) bool: diagonal stripes, about 64 across."""
    rows, cols = np.ogrid[:height, :width]
    return ((rows + cols) // max(2, width // 64)) % 2 == 0


def hatch_holes(image: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with ``holes`` (H, W) bool drawn as diagonal stripes (a copy)."""
    stripe = _stripes(*holes.shape)
    out = image.copy()
    out[holes & stripe] = HOLE_COLORS[0]
    out[holes & ~stripe] = HOLE_COLORS[1]
    return out


def _upsample_mask(mask: torch.Tensor, height: int, width: int) -> np.ndarray:
    """A latent-grid mask (h, w) to pixels (H, W), each cell a block."""
    return F.interpolate(mask[None, None].float(), size=(height, width), mode="nearest")[0, 0].bool().numpy()


def _latent_tile(title: str, caption: str, record: StepRecord, basis: PCABasis, height: int, width: int) -> Tile:
    """The conditioning latent of ``record`` in PCA colours, upsampled to (height, width), holes hatched."""
    colors = basis.image(record.conditioning_latent)  # (3, h, w)
    blocks = F.interpolate(colors[None], size=(height, width), mode="nearest")[0]
    return Tile(title, caption, hatch_holes(to_uint8_image(blocks), ~_upsample_mask(record.mask, height, width)))


def error_image(frame: torch.Tensor, truth: torch.Tensor) -> tuple[np.ndarray, float]:
    """Per-pixel mean absolute error of ``frame`` against ``truth`` (both (3, H, W) in [0, 1]) as a colour
    map (H, W, 3) uint8 from 0 (black) to ``ERROR_RANGE`` and above (pale yellow), and the mean error."""
    error = (frame.float() - truth.float()).abs().mean(dim=0)  # (H, W)
    level = (error * (255 / ERROR_RANGE)).round_().clamp_(0, 255).to(torch.uint8).numpy()  # (H, W) in 0..255
    return ERROR_LUT[level], float(error.mean())


def consistency_caption(record: StepRecord) -> str:
    """The scores that need no truth of ``record`` in a few words ("" for step 0): the camera-control error (rotation,
    and the direction of travel where the step moves), the reprojection error, the share of flow that agrees."""
    score = record.consistency
    if score is None:
        return ""
    if score.camera_rotation_error_deg is None:
        camera = "camera: no pose"  # too few feature matches to estimate one
    else:
        direction = "" if score.camera_direction_error_deg is None else f", heading {score.camera_direction_error_deg:.1f}°"
        camera = f"camera off {score.camera_rotation_error_deg:.1f}°{direction}"
    reprojection = "-" if score.reprojection_error is None else f"{score.reprojection_error:.3f}"
    return f"{camera}; reprojection {reprojection}; flow agrees {score.flow_agreement:.0%}"


def _score(record: StepRecord) -> str:
    """What a frame's caption says of it: PSNR and SSIM against the truth, then the scores that need none."""
    if record.psnr is None:
        truth = "no truth to score against"
    else:
        psnr = "inf" if record.psnr == float("inf") else f"{record.psnr:.1f}"
        truth = f"PSNR {psnr} dB, SSIM {record.ssim:.3f}"
    free = consistency_caption(record)
    return f"{truth}; {free}" if free else truth


def step_view(rollout: Rollout, step: int, basis: PCABasis | None = None) -> StepView:
    """Every picture of ``step`` (clamped to the steps recorded) as tiles."""
    if len(rollout) == 0:
        raise ValueError("the rollout has no steps yet")
    step = max(0, min(int(step), len(rollout) - 1))
    basis = basis or rollout_pca(rollout)
    records = {name: history[step] for name, history in rollout.records.items()}
    first = next(iter(records.values()))
    truth = first.true_frame
    frames, errors = [], []
    for name, record in records.items():
        title = f"{name} memory" if step else f"{name} memory: the first frame, through the VAE"
        frames.append(Tile(title, _score(record), to_uint8_image(record.frame)))
        if truth is None:
            errors.append(None)
        else:
            image, mean = error_image(record.frame, truth)
            errors.append(Tile(f"{name}: error against the truth", f"mean {mean:.3f} (colour scale 0 to {ERROR_RANGE:g})", image))
    if truth is not None:
        seen = ("the real frame at this camera" if rollout.setup is not None and rollout.setup.first_frame == "sequence"
                else "the world rendered at this camera")
        frames.append(Tile("truth", seen, to_uint8_image(truth)))
        errors.append(None)
    height, width = first.frame.shape[-2:]
    conditioning: list[Tile] = []
    if step == 0:
        notes = ["Step 0 is the given first frame: no memory was read yet. Move the slider to a later step."]
        return StepView(step, len(rollout) - 1, frames, errors, conditioning, notes)
    for name, record in records.items():
        covered = f"{record.mask_coverage:.0%} of cells covered"
        if record.memory_render is not None:  # a pixel memory: its render, then what the VAE made of it
            render = to_uint8_image(record.memory_render)
            hit = record.memory_render_mask
            if hit is not None:
                render = hatch_holes(render, ~hit.numpy())
            conditioning.append(Tile(f"{name} memory: pixel render", "rasterized point cloud, holes hatched", render))
            conditioning.append(_latent_tile(f"{name} memory: render re-encoded", f"latent, PCA colours; {covered}",
                                             record, basis, height, width))
        elif record.mask.any():  # a latent memory: the warped latent, and what it decodes to
            conditioning.append(_latent_tile(f"{name} memory: warped latent", f"PCA colours; {covered}",
                                             record, basis, height, width))
            if record.conditioning_frame is not None:
                decoded = hatch_holes(to_uint8_image(record.conditioning_frame), ~_upsample_mask(record.mask, height, width))
                conditioning.append(Tile(f"{name} memory: warped latent, decoded",
                                         "what the latent memory alone remembers", decoded))
    return StepView(step, len(rollout) - 1, frames, errors, conditioning)


def image_data_uri(image: np.ndarray, image_format: str = "webp", quality: int = 80) -> str:
    """``image`` (H, W, 3) uint8 as a ``data:`` URI (WebP by default: a few KB for 256 px)."""
    buffer = io.BytesIO()
    if image_format == "webp":
        Image.fromarray(image).save(buffer, format="WEBP", quality=quality, method=1)
    elif image_format == "png":
        Image.fromarray(image).save(buffer, format="PNG", compress_level=3)
    else:
        raise ValueError(f"image_format must be 'webp' or 'png', got {image_format!r}")
    return f"data:image/{image_format};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


_ENCODERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mirage_viz-encode")  # Pillow encodes without the GIL
_STYLE = """<style>
.mv-view{font-family:inherit;color:inherit}
.mv-view h4{margin:10px 0 4px;font-size:15px;font-weight:600}
.mv-view .mv-grid{display:grid;grid-template-columns:repeat(var(--mv-columns),minmax(200px,1fr));gap:10px;align-items:stretch}
@media (max-width:900px){.mv-view .mv-grid{grid-template-columns:repeat(auto-fill,minmax(200px,1fr))}}
.mv-view figure.mv-tile{margin:0;padding:0;min-width:0;display:flex;flex-direction:column;align-self:stretch}
.mv-view figure.mv-tile img{display:block;margin:auto 0 0 0;width:100%;height:auto;aspect-ratio:1/1;object-fit:contain;
 border-radius:4px;background:#222}
.mv-view .mv-title{font-size:14px;font-weight:600;line-height:1.25;overflow-wrap:anywhere}
.mv-view .mv-caption{font-size:13px;line-height:1.25;opacity:.8;margin-bottom:3px;overflow-wrap:anywhere}
.mv-view .mv-note{font-size:14px;opacity:.85;margin:6px 0}
.mv-view .mv-legend{display:inline-block;width:120px;height:10px;vertical-align:middle;border-radius:2px;
 background:linear-gradient(90deg,#000004,#57106e,#bc3754,#f98e09,#fcffa4)}
.mv-view .mv-holes{display:inline-block;width:26px;height:10px;vertical-align:middle;border-radius:2px;
 background:repeating-linear-gradient(45deg,#ff4fa0 0 4px,#282828 4px 8px)}
</style>"""


def _tile_html(tile: Tile | None, uris: dict[int, str]) -> str:
    if tile is None:
        return '<figure class="mv-tile"></figure>'
    return (f'<figure class="mv-tile"><div class="mv-title">{html.escape(tile.title)}</div>'
            f'<div class="mv-caption">{html.escape(tile.caption)}</div>'
            f'<img alt="{html.escape(tile.title)}" src="{uris[id(tile)]}"></figure>')


def _row_html(heading: str, tiles: list[Tile | None], columns: int, uris: dict[int, str]) -> str:
    cells = "".join(_tile_html(tile, uris) for tile in tiles)
    return f'<h4>{heading}</h4><div class="mv-grid" style="--mv-columns:{columns}">{cells}</div>'


def step_view_html(view: StepView, image_format: str = "webp") -> str:
    """``view`` as one HTML fragment: three rows of titled images in a grid of at least 200 px columns."""
    tiles = [tile for tile in (*view.frames, *view.errors, *view.conditioning) if tile is not None]
    uris = dict(zip(map(id, tiles), _ENCODERS.map(lambda tile: image_data_uri(tile.image, image_format), tiles)))
    columns = max(len(view.frames), len(view.conditioning), 1)
    parts = [_STYLE, '<div class="mv-view">']
    parts.append(_row_html(f"Step {view.step} of {view.last_step}: decoded frames", view.frames, columns, uris))
    if any(tile is not None for tile in view.errors):
        parts.append(_row_html('Error against the truth <span class="mv-legend"></span> 0 to '
                               f"{ERROR_RANGE:g} (mean absolute, per pixel)", view.errors, columns, uris))
    if view.conditioning:
        parts.append(_row_html('What each memory hands the generator (<span class="mv-holes"></span> holes: '
                               "cells no stored point reached)", view.conditioning, columns, uris))
    parts.extend(f'<p class="mv-note">{html.escape(note)}</p>' for note in view.notes)
    parts.append("</div>")
    return "".join(parts)


def tile_row_html(heading: str, tiles: list[Tile], columns: int | None = None, image_format: str = "webp") -> str:
    """Titled tiles in the step view's style as an HTML fragment (e.g. a path preview's views): one row, or
    ``columns`` to a row (1: a column beside a plot)."""
    uris = dict(zip(map(id, tiles), _ENCODERS.map(lambda tile: image_data_uri(tile.image, image_format), tiles)))
    columns = columns or max(len(tiles), 1)
    return "".join([_STYLE, '<div class="mv-view">', _row_html(html.escape(heading), tiles, columns, uris), "</div>"])


@functools.lru_cache(maxsize=4)
def label_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)  # Pillow's bundled scalable font: no system font needed


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> str:
    """``text``, shortened with an ellipsis until it fits in ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "..."


def wrap_text(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int, lines: int) -> list[str]:
    """``text`` broken at spaces into at most ``lines`` lines of ``width`` pixels (the last one shortened)."""
    out: list[str] = []
    words = text.split(" ")
    while words and len(out) < lines - 1:
        line = words.pop(0)
        while words and draw.textlength(f"{line} {words[0]}", font=font) <= width:
            line = f"{line} {words.pop(0)}"
        out.append(line)
    if words:
        out.append(_fit(draw, " ".join(words), font, width))
    return out


def step_view_image(view: StepView, columns: int | None = None, tile_width: int = 256) -> np.ndarray:
    """The frames and conditioning rows of ``view`` as one picture (H, W, 3) uint8, for video.

    Each tile is drawn ``tile_width`` pixels wide (smaller frames are enlarged, cell edges kept sharp) under its
    title and caption; a heading names the step. ``columns`` fixes the grid width (give every step of a video
    the same, e.g. the widest view's); a step without a conditioning row (step 0) says why in its place.
    Width and height are even (H.264's 4:2:0 sampling needs both).
    """
    columns = max(columns or 0, len(view.frames), len(view.conditioning), 1)
    title_font, caption_font, heading_font = label_font(14), label_font(13), label_font(17)
    pad, line_height, text_height, heading_height = 8, 18, 58, 30  # three lines: a title of one or two, the caption after
    tile_height = tile_width  # frames are square (the size rule); a taller one is scaled to fit
    row_height = text_height + tile_height + pad
    width = pad + columns * (tile_width + pad)
    height = heading_height + 2 * row_height + pad
    canvas = Image.new("RGB", (width + width % 2, height + height % 2), (16, 16, 20))
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, 6), f"Step {view.step} of {view.last_step}", fill=(240, 240, 240), font=heading_font)
    for row, tiles in enumerate((view.frames, view.conditioning)):
        top = heading_height + row * row_height
        for column, tile in enumerate(tiles):
            left = pad + column * (tile_width + pad)
            title = wrap_text(draw, tile.title, title_font, tile_width, lines=2)
            for index, line in enumerate(title):
                draw.text((left, top + index * line_height), line, fill=(240, 240, 240), font=title_font)
            caption = wrap_text(draw, tile.caption, caption_font, tile_width, lines=3 - len(title))  # what room is left
            for index, line in enumerate(caption, start=len(title)):
                draw.text((left, top + index * line_height + 1), line, fill=(185, 185, 190), font=caption_font)
            picture = Image.fromarray(tile.image)
            scale = min(tile_width / picture.width, tile_height / picture.height)
            picture = picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.Resampling.NEAREST)
            canvas.paste(picture, (left, top + text_height))
        if not tiles:
            note = ("The first frame is given: no memory was read yet." if view.step == 0
                    else "No memory handed the generator anything at this step.")
            draw.text((pad, top + text_height + tile_height // 2), _fit(draw, note, title_font, width - 2 * pad),
                      fill=(200, 200, 205), font=title_font)
    return np.asarray(canvas)
