"""The Gradio app: run a trajectory with the three memories side by side, watch each step, scrub back; or drive.

UI code only: every number and picture comes from the engine (:mod:`mirage_viz.rollout`, :mod:`mirage_viz.rollout.drive`),
the step view (:mod:`mirage_viz.viz.step_view`), the figure functions (:mod:`mirage_viz.viz.figures`) and the exports
(:mod:`mirage_viz.outputs`, the CLI's writer). Each visitor's rollout lives in a :class:`~mirage_viz.ui.sessions.SessionStore` keyed by the Gradio session: one running rollout per
visitor, a bounded number kept, freed when the tab closes or after a time to live, downloads removed with
it. Nothing is shared between sessions but the read-only models.

A shared server stays up for everyone: the queue is bounded (a visitor beyond it is told the app is busy),
uploads are capped at ``MAX_UPLOAD``, Stop ends a run on the server after its current step (for API callers
too), and visitors load models by hub id only, or from the folders whoever started the server allowed
(``MIRAGE_VIZ_MODEL_DIRS``, separated by ``os.pathsep``).
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import html
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import gradio as gr

from mirage_viz.backbone import (ASSETS_DIR, DEFAULT_DEPTH_MODEL, SHARP_VAE, Backbone, build_backbone,
                                 check_decoder_sharpness_models, depth_model_for)
from mirage_viz.geometry.cameras import FOV_RANGE
from mirage_viz.bench.report import bench_headlines, bench_markdown, load_bench, targets_markdown
from mirage_viz.models.hub import ModelAccess
from mirage_viz.models.hub_depth import DEPTH_SCALE_RANGE, check_depth_scale
from mirage_viz.rollout.records import Rollout
from mirage_viz.rollout.config import MEMORY_SETTINGS, RolloutConfig, RolloutSetup, memory_setting_of, plan_rollout
from mirage_viz.rollout.engine import iter_rollout
from mirage_viz.rollout.drive import MOVES, DriveSession
from mirage_viz.viz.figures import cache_figure, metrics_figure, rollout_pca
from mirage_viz.outputs.writer import OutputParts, write_rollout
from mirage_viz.scenes.photo import Photo, load_photo, sample_photos
from mirage_viz.scenes.sequence import EXAMPLE_SEQUENCE, ImageSequence, extract_sequence_zip, load_sequence
from mirage_viz.viz.preview import path_preview_figure, path_preview_html, preview_path
from mirage_viz.viz.sweep_figures import sweep_figures
from mirage_viz.sweep import load_results, summarize
from mirage_viz.viz.step_view import step_view, step_view_html
from mirage_viz.viz.walkthrough import revisited_step, walkthrough, walkthrough_html, ztest_lesson
from mirage_viz.viz.trace_view import (CLICK_PICTURES, TraceView, click_picture, pixel_of_click, trace_cache_figure,
                                       trace_view, trace_view_html)
from mirage_viz.ui.sessions import RunSlots, RunTicket, ServerBusy, SessionBusy, SessionStore, watched
from mirage_viz.ui.visitors import UploadLedger, VisitorMiddleware, visitor_address
from mirage_viz.scenes.camera_files import read_cameras
from mirage_viz.scenes.trajectories import BACK_TO_START, PRESETS, TRAJECTORY_NAMES, Trajectory
from mirage_viz.scenes.worlds import DEFAULT_WORLD, WORLD_NAMES

__all__ = ["build_demo", "launch", "EXAMPLES", "MAX_STEPS", "MAX_UPLOAD", "SIZES", "SHIPPED_BENCH"]

SHIPPED_BENCH = ASSETS_DIR / "bench" / "bench.json"  # `mirage-viz bench` measured on a 2-core CPU machine

MAX_STEPS = 48
SIZES = (128, 256)
# posed footage a visitor may run (shipped, so no path of the server is ever named by a visitor)
FOOTAGE = {"room loop: a held-out world rendered as 12 posed images (nerfstudio)": EXAMPLE_SEQUENCE}
MAX_UPLOAD = "25mb"  # per uploaded file (a photo or a bench.json)
UPLOADS_PER_VISITOR = 100 * 2**20  # what one visitor's uploads hold at once (four files at the cap)
UPLOADS_ON_SERVER = 1024 * 2**20  # what all uploads hold at once
UNUSED_UPLOAD_TTL_S = 300.0  # an upload no session uses is removed after this (the sweeper looks every minute)
RUNS_WAITING = 4  # rollouts waiting for a slot at once; one more is told the app is busy and to try again
QUEUE_MAX_SIZE = 64  # Gradio's queue (scrubs, stops, benchmark uploads): a hard ceiling, far above what runs use
RUN_CONCURRENCY = 2  # rollouts at once (each uses the CPU's threads)
RUNS_PER_VISITOR = 2  # of those running and waiting, one visitor's at most
MAX_ROLLOUTS = int(os.environ.get("MIRAGE_VIZ_MAX_ROLLOUTS", 6))  # sessions holding a rollout at once
GRADIO_SESSIONS_KEPT = 100  # Gradio's own per-session records (about 1 MB each), least recently used dropped first
SESSION_TTL_S = float(os.environ.get("MIRAGE_VIZ_SESSION_TTL_S", 1800))  # an idle session's rollout is freed after this
DRAWN_AT_THE_END = " The 3D caches and the charts are drawn when the run is done."
APP_MAX_POINTS = 3_000  # latent points in the 3D view (half as many RGB points): a light payload, a responsive browser
DRIVE_SIZES = (128, 256)
DRIVE_SETTLE_S = 0.8  # a pause this long after a press, and the drive's 3D caches and scores are drawn
EXAMPLES = [
    [DEFAULT_WORLD, "loop", 0.0, 8, 128, 0, None],
    [DEFAULT_WORLD, "orbit_left", 0.0, 6, 128, 0, None],
    ["studio", "push_in", 0.0, 6, 128, 1, None],
    *[[DEFAULT_WORLD, "pan_left", 20.0, 4, 128, 0, str(path)] for path in sample_photos()[:2]],
]
# PSNR and SSIM need the truth; the next three do not (mirage_viz.consistency): camera-control rotation error,
# reprojection error into the nearest earlier frames, share of optical flow that agrees both ways
TABLE_HEADERS = ["memory", "PSNR (dB)", "SSIM", "camera off (deg)", "reprojection", "flow agrees", "cells covered",
                 "cache points", "cache MB", "read (ms)", "step (ms)"]
DRIVE_KEYS = {  # key -> button: the keyboard drives like the buttons (ignored while typing in a field)
    "w": "forward", "ArrowUp": "forward", "s": "back", "ArrowDown": "back", "a": "left", "d": "right",
    "q": "turn_left", "ArrowLeft": "turn_left", "e": "turn_right", "ArrowRight": "turn_right", "r": "up", "f": "down",
    "b": "back_to_start", "z": "undo", "Backspace": "undo",
}
DRIVE_LABELS = {"forward": "forward (W)", "back": "back (S)", "left": "left (A)", "right": "right (D)", "up": "up (R)",
                "down": "down (F)", "turn_left": "turn left (Q)", "turn_right": "turn right (E)",
                "back_to_start": "back to start (B)", "undo": "Undo (Z)"}
_KEYBOARD_JS = """() => {
  if (window.mirageDriveKeys) return;
  const keys = %s;
  window.mirageDriveKeys = (event) => {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
    const name = keys[event.key] || keys[event.key.toLowerCase()];
    const button = name && document.getElementById("drive-" + name);
    if (!button || button.offsetParent === null || button.disabled) return;  // only on the visible Drive tab
    event.preventDefault();
    button.click();
  };
  document.addEventListener("keydown", window.mirageDriveKeys);
}""" % json.dumps(DRIVE_KEYS)


_log = logging.getLogger("mirage_viz.app")


class Refusal(gr.Error):
    """A visitor's input refused: the message Gradio shows (as HTML, so escaped) and ``text``, the same unescaped."""

    def __init__(self, text: str) -> None:
        super().__init__(html.escape(text, quote=False), print_exception=False)
        self.text = text


@functools.lru_cache(maxsize=1)
def _server_folders() -> tuple[str, ...]:
    """Folders of this server whose paths a visitor never sees (longest first): the upload and temporary folders,
    the package, the working and home folders, Python's."""
    from gradio.utils import get_upload_folder

    folders = {get_upload_folder(), tempfile.gettempdir(), str(ASSETS_DIR.parent.parent), os.getcwd(), str(Path.home()),
               sys.prefix}
    resolved = {str(Path(f).resolve()) for f in folders} | folders
    return tuple(sorted((f.rstrip(os.sep) for f in resolved if f.strip(os.sep)), key=len, reverse=True))


def _without_server_paths(text: str) -> str:
    """``text`` with every path inside a server folder cut to its last part: a visitor's file by its own name."""
    pattern = "|".join(re.escape(folder) for folder in _server_folders())
    return re.sub(rf"(?:{pattern})(?:{re.escape(os.sep)}[^\s'\"<>]*)?", lambda m: Path(m.group(0)).name, text)


def _refused(message: str) -> Refusal:
    """The refusal of a visitor's input: no server path in it, one line in the server log, no traceback."""
    text = _without_server_paths(message)
    _log.warning("mirage_viz refused: %s", text)  # without a logging set-up, Python prints warnings on stderr
    return Refusal(text)


def _config(world: str, trajectory: str, magnitude: float | None, steps: float, size: float, seed: float,
            back_to_start: bool = False) -> RolloutConfig:
    """The inputs as a checked config; a ``gr.Error`` names what was wrong and what is accepted."""
    def integer(name: str, value: float | None) -> int:
        if value is None or not math.isfinite(float(value)) or float(value) != int(value):
            raise _refused(f"{name} must be a whole number, got {value!r}")
        return int(value)

    if magnitude is not None and (not math.isfinite(float(magnitude)) or magnitude < 0):
        raise _refused(f"magnitude must be a number >= 0 (0 uses the preset's default), got {magnitude!r}")
    if back_to_start and isinstance(trajectory, str) and not trajectory.endswith(f"+{BACK_TO_START}"):
        trajectory = f"{trajectory}+{BACK_TO_START}"
    config = RolloutConfig(world=world, trajectory=trajectory, magnitude=float(magnitude) if magnitude else None,
                           steps=integer("steps", steps), size=integer("size", size), seed=integer("seed", seed))
    try:
        config.validate()
    except ValueError as error:
        raise _refused(str(error)) from None
    if config.steps > MAX_STEPS:
        raise _refused(f"steps must be at most {MAX_STEPS} in the app, got {config.steps}")
    if config.size not in SIZES:
        raise _refused(f"size must be one of {', '.join(map(str, SIZES))} in the app, got {config.size}")
    return config


def _setting_sentence(name: str | None) -> str:
    """What the chosen memory setting does, in its own sentence (figures: docs/memory-settings.md)."""
    setting = MEMORY_SETTINGS.get(name or "paper")
    return "" if setting is None else f"*{setting.sentence}*"


def _with_memory_setting(config: RolloutConfig, name: str | None) -> RolloutConfig:
    """``config`` under the named memory setting (empty: the paper's); a ``gr.Error`` says which are accepted."""
    try:
        return config.with_memory_setting(name or "paper")
    except ValueError as error:
        raise _refused(str(error)) from None


def _setting_note(config: RolloutConfig) -> str:
    """A status-line note naming the memory setting when it is not the paper's."""
    fields = MEMORY_SETTINGS[name := memory_setting_of(config)].options
    return f"\n\nMemory setting: {name} ({', '.join(f'{key} {value}' for key, value in fields.items())})." if fields else ""


def _setting_flag(config: RolloutConfig) -> str:
    """The ``mirage-viz rollout`` flag of the memory setting ``config`` runs under (none for the paper's)."""
    name = memory_setting_of(config)
    return "" if name == "paper" else f" --memory-setting '{name}'"


def _sampler_note(config: RolloutConfig, backbone: Backbone) -> str:
    """A status-line note when the memory setting fixes the denoising steps and a hub generator runs them: the
    setting was measured with the embedded generator, and a hub generator is made for its own steps."""
    fields = MEMORY_SETTINGS[memory_setting_of(config)].options
    steps, draws = fields.get("num_inference_steps"), fields.get("average_samples", 1)
    if steps is None or backbone.generator_name == "embedded":
        return ""
    averaged = f", and keeps the mean of {draws} draws (each a full run of the generator)" if draws > 1 else ""
    return (f"\n\nNote: the memory setting runs {steps} denoising step{'s' if steps != 1 else ''} per frame{averaged}, "
            f"as measured with the embedded generator; {backbone.generator_name} is made for its own "
            f"{backbone.num_inference_steps}.")


def _table(rollout: Rollout, step: int) -> list[list[object]]:
    """One compact row per memory at ``step``."""
    rows = []
    for name, records in rollout.records.items():
        r = records[step]
        psnr = None if r.psnr is None or not math.isfinite(r.psnr) else round(r.psnr, 2)
        c = r.consistency
        free = [None, None, None] if c is None else [
            None if c.camera_rotation_error_deg is None else round(c.camera_rotation_error_deg, 2),
            None if c.reprojection_error is None else round(c.reprojection_error, 4), round(c.flow_agreement, 3)]
        rows.append([name, psnr, None if r.ssim is None else round(r.ssim, 3), *free, f"{r.mask_coverage:.0%}",
                     r.cache_points, round(r.cache_bytes / 1e6, 2), round(r.timings_ms["read"], 1),
                     round(sum(r.timings_ms.values()), 1)])
    return rows


def _panels(rollout: Rollout | None, step: float, metrics: bool = True, cache: bool = True) -> tuple:
    """Every per-step panel for ``step`` of ``rollout``: the step view (HTML), the 3D caches, the charts over
    steps and the table. ``metrics`` False leaves the charts as they are (``gr.update()``: they do not change with the
    step), ``cache`` False the 3D caches (a browser without a GPU takes about a second to draw them: while a run
    streams or a driver presses, the frames come first)."""
    if rollout is None or len(rollout) == 0:
        return None, None, None, []
    step = max(0, min(int(step), len(rollout) - 1))
    basis = rollout_pca(rollout)
    view = step_view_html(step_view(rollout, step, basis))
    return (view, cache_figure(rollout, step, basis, max_points=APP_MAX_POINTS) if cache else gr.update(),
            metrics_figure(rollout) if metrics else gr.update(), _table(rollout, step))


def _status(text: str, done: int | None = None, total: int | None = None) -> str:
    """The one place progress shows: a bar (while a run streams) and a line of text, as HTML."""
    bar = "" if done is None or not total else (
        f'<progress value="{done}" max="{total}" style="width:100%;height:14px" aria-label="progress"></progress>')
    paragraphs = "".join(f"<p style='margin:4px 0'>{html.escape(line)}</p>" for line in text.split("\n\n") if line)
    return f'<div class="mv-status">{bar}{paragraphs}</div>'


def _downloads(rollout: Rollout, folder: Path) -> list[str]:
    """The rollout's output folder, written by the CLI's writer (:func:`mirage_viz.outputs.write_rollout`) into
    the session's own downloads folder: its files (the video, the report, the caches, the summary, the cameras,
    the GIF), its cameras in other tools' formats and its PNG frames, each folder as a zip."""
    out = write_rollout(rollout, folder / "mirage_out", parts=OutputParts(gif=True))
    order = ("rollout.mp4", "report.html", "summary.json", "trajectory.json", "rollout.gif")
    files = sorted((f for f in out.iterdir() if f.is_file() and not f.name.startswith(".")),
                   key=lambda f: (order.index(f.name) if f.name in order else len(order), f.name))
    zips = [shutil.make_archive(str(folder / part), "zip", root_dir=out, base_dir=part)
            for part in ("cameras", "frames") if (out / part).is_dir()]
    return [str(f) for f in files] + zips


_LOADING = threading.Lock()  # one model load at a time: two sessions asking for one model load it once


@functools.lru_cache(maxsize=2)
def _cached_backbone(vae: str, generator: str, depth: str, depth_scale: float, access: ModelAccess) -> Backbone:
    return build_backbone(vae=vae or None, generator=generator or None, depth=depth or None, depth_scale=depth_scale,
                          access=access)


def _check_models(vae: str, generator: str, depth: str, access: ModelAccess) -> None:
    """A model the visitor may not load (a local path, a malformed id) is refused with a ``gr.Error``."""
    for kind, value in (("vae", vae), ("generator", generator), ("depth model", depth)):
        if value:  # the shipped "embedded-sharp" is shaped like a hub id: it passes, and build_backbone knows it
            try:
                access.resolve(value, kind)
            except ValueError as error:
                raise _refused(str(error)) from None


def _backbone(vae: str, generator: str, depth: str, prompt: str, depth_scale: float, access: ModelAccess) -> Backbone:
    """The embedded backbone, or hub models by id with embedded fallbacks (kept loaded for the next run).

    Sessions share the loaded models; a hub generator runs one call at a time, each with its session's prompt.
    """
    if not (vae or generator or depth):  # never wait behind another session's hub download
        return build_backbone(depth=None)  # the embedded models
    with _LOADING:
        backbone = _cached_backbone(vae, generator, depth, depth_scale, access)
    return backbone.with_prompt(prompt)


def _number(name: str, value: object, accepted: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _refused(f"{name} must be a number ({accepted}), got {value!r}") from None
    if not math.isfinite(number):
        raise _refused(f"{name} must be a finite number ({accepted}), got {value!r}")
    return number


def _photo(path: str | None, size: int, fov: object) -> Photo | None:
    if not path:
        return None
    fov = _number("field of view", 0.0 if fov is None else fov, f"degrees in [{FOV_RANGE[0]:g}, {FOV_RANGE[1]:g}]; 0 = from the photo's EXIF, else 60")
    try:
        return load_photo(path, size, fov or None)
    except ValueError as error:
        raise _refused(str(error)) from None


CAMERA_FILE_HELP = ("a camera path instead of the preset (optional): mirage_viz JSON, nerfstudio transforms.json, COLMAP "
                    "cameras.txt + images.txt (both), a RealEstate10K .txt or open3d JSON; its intrinsics are used, and a "
                    "longer path is picked down to the steps")


def _camera_file(paths: list[str] | str | None, steps: int) -> Trajectory | None:
    """The uploaded camera path (None when there is none), subsampled to ``steps`` when it is longer; COLMAP's two
    files are read together. A file that is not a camera path is a ``gr.Error`` saying what is accepted."""
    paths = [paths] if isinstance(paths, str) else [p for p in (paths or []) if p]
    if not paths:
        return None
    names = sorted(Path(p).name for p in paths)
    try:
        if len(paths) == 1:
            trajectory = read_cameras(paths[0])
        elif names == ["cameras.txt", "images.txt"]:
            with tempfile.TemporaryDirectory(prefix="mirage_viz-colmap-") as folder:  # the two uploads side by side
                for path in paths:
                    shutil.copyfile(path, Path(folder) / Path(path).name)
                trajectory = read_cameras(folder, "colmap")
        else:
            raise ValueError(f"got {len(paths)} files ({', '.join(names)}); accepted: one camera file, or COLMAP's "
                             "cameras.txt and images.txt together")
        return trajectory.subsample(steps) if trajectory.steps > steps else trajectory
    except ValueError as error:
        raise _refused(f"camera file: {error}") from None


def _request(world, trajectory, magnitude, steps, size, seed, photo_path, fov, back_to_start, camera_files,
             footage="", footage_zip=None) -> tuple[RolloutConfig, Trajectory | None, Photo | None, ImageSequence | None]:
    """The Rollout tab's inputs as what a run takes: the config, a camera file's path, a photo, a posed image
    sequence, shipped or uploaded (each checked)."""
    config = _config(world, trajectory, magnitude, steps, size, seed, bool(back_to_start))
    camera_path, photo = _camera_file(camera_files, config.steps), _photo(photo_path, config.size, fov)
    return config, camera_path, photo, _footage(footage, footage_zip, config, camera_path is not None or photo is not None)


def _footage(label: str | None, zip_path: str | None, config: RolloutConfig, other_start: bool) -> ImageSequence | None:
    """The shipped sequence named ``label`` (one of :data:`FOOTAGE`; "" none) or the one in the uploaded zip, at the
    config's size, its poses picked evenly down to the steps asked for. The zip is unpacked into a folder of its own,
    read, and the folder removed: the sequence's frames are held in memory."""
    if not label and not zip_path:
        return None
    if label and label not in FOOTAGE:
        raise _refused(f"unknown footage {str(label)[:80]!r}; accepted: one of {', '.join(map(repr, FOOTAGE))}")
    if other_start or (label and zip_path):
        raise _refused("posed footage brings its first frame and its cameras; accepted: one footage (shipped or "
                       "uploaded), or a photo and a camera file, not both")
    try:
        with tempfile.TemporaryDirectory(prefix="mirage_viz-footage-") as folder:
            path = FOOTAGE[label] if label else extract_sequence_zip(zip_path, folder)
            return load_sequence(path, config.size, config.steps)
    except ValueError as error:
        raise _refused(f"footage: {error}") from None


@dataclass(frozen=True)
class _Start:
    """Where a run starts, checked: a camera file's path, a photo, a posed image sequence (or none: a world), and the
    setup they resolve to."""

    camera_path: Trajectory | None
    photo: Photo | None
    sequence: ImageSequence | None
    setup: RolloutSetup


class _Handlers:
    """The app's event handlers around one session store, one line of run slots and one model access rule."""

    def __init__(self, sessions: SessionStore, slots: RunSlots, access: ModelAccess, uploads: UploadLedger) -> None:
        self.sessions, self.slots, self.access, self.uploads = sessions, slots, access, uploads
        self.forget: Callable[[str], None] | None = None  # drops Gradio's own record of a session that ended
        # each drive's changes when its 3D caches were last drawn after a pause: drawn once per change
        self._settled: weakref.WeakKeyDictionary[DriveSession, int] = weakref.WeakKeyDictionary()

    def preview(self, world, trajectory, magnitude, steps, size, seed, photo_path=None, fov=0.0, back_to_start=False,
                camera_files=None, footage="", footage_zip=None, request: gr.Request = None) -> tuple:
        """The path Run would take, before it runs: its first and last true views and its cameras over the first
        frame's point cloud, from the very cameras the run uses (:func:`plan_rollout` on the same inputs). A path
        that cannot run says why in place of the views."""
        self._claim(request, photo_path, camera_files, footage_zip)
        try:
            config, camera_path, photo, sequence = _request(world, trajectory, magnitude, steps, size, seed, photo_path,
                                                            fov, back_to_start, camera_files, footage, footage_zip)
            plan = plan_rollout(config, trajectory=camera_path, photo=photo, sequence=sequence)
        except (gr.Error, ValueError) as error:
            message = getattr(error, "text", None) or str(error)
            return _status(f"This path cannot run: {message}"), None
        first = photo if sequence is None else sequence.first_photo
        depth = _backbone("", "", "", "", 3.0, self.access).estimate_depth if first is not None else None
        preview = preview_path(plan, photo, depth, sequence=sequence)
        return path_preview_html(preview, columns=1), path_preview_figure(preview)

    def run(self, world, trajectory, magnitude, steps, size, seed, photo_path=None, fov=0.0, depth_model=DEFAULT_DEPTH_MODEL,
            vae="", generator="", prompt="", depth_scale=3.0, back_to_start=False, camera_files=None,
            memory_setting="paper", footage="", footage_zip=None, request: gr.Request = None) -> Iterator[tuple]:
        """Stream the rollout: after each step, every panel and the slider on that step; Stop ends it after a step.

        Inputs are checked first; then the run waits for a free slot (the line is bounded: beyond it the visitor
        is told the app is busy), loads its models and streams.
        """
        self._claim(request, photo_path, camera_files, footage_zip)
        config, camera_path, photo, sequence = _request(world, trajectory, magnitude, steps, size, seed, photo_path, fov,
                                                        back_to_start, camera_files, footage, footage_zip)
        config = _with_memory_setting(config, memory_setting)
        try:  # every camera checked before the line
            plan = plan_rollout(config, trajectory=camera_path, photo=photo, sequence=sequence)
        except ValueError as error:
            raise _refused(str(error)) from None
        start = _Start(camera_path, photo, sequence, plan.setup)
        depth = str(depth_model_for(depth_model or "", photo is not None or sequence is not None, config.depth_source) or "")
        try:
            depth_scale = check_depth_scale(depth_scale)
        except ValueError as error:
            raise _refused(str(error)) from None
        models = ((vae or "").strip(), (generator or "").strip(), depth)
        _check_models(*models, self.access)
        try:  # before the line and the model load: only the embedded VAE has a sharp decoder to blend with
            check_decoder_sharpness_models(config.decoder.decoder_sharpness, models[0], models[1])
        except ValueError as error:
            raise _refused(f"The memory setting {memory_setting!r} decodes with the embedded VAE's decoder moved towards "
                           f"the sharp one: {error}") from None
        try:  # frees the session's previous rollout
            ticket = self.sessions.begin_run(_session_id(request), visitor=_visitor(request))
        except (SessionBusy, ServerBusy) as error:
            raise _refused(str(error)) from None
        try:
            yield from watched(ticket, self._run(ticket, config, start, models, str(prompt or ""), depth_scale))
        finally:
            self.sessions.end_run(ticket)

    def _run(self, ticket: RunTicket, config: RolloutConfig, start: _Start, models: tuple[str, str, str], prompt: str,
             depth_scale: float) -> Iterator[tuple]:
        """Wait for a slot (saying the place in line), load the models, stream; the slot is always given back."""
        try:
            for ahead in self.slots.wait(ticket):
                yield (*[gr.update()] * 5, _status(f"Waiting for a free slot: {ahead + 1} rollout(s) ahead in line; it "
                       "starts by itself (Stop leaves the line)."), gr.update())
        except ServerBusy as error:
            raise _refused(str(error)) from None
        if not self.slots.holds(ticket):
            yield (*[gr.update()] * 5, _status("Stopped before it started."), gr.update())
            return
        try:
            backbone = _backbone(*models, prompt, depth_scale, self.access)
            steps = start.setup.steps
            # the last run's 3D caches and charts go: this run's are drawn once it is done (the frames stream first)
            yield (gr.update(), None, None, *[gr.update()] * 2,
                   _status(f"Running step 0 of {steps}: the first frame.{DRAWN_AT_THE_END}", 0, steps + 1), gr.update())
            yield from self._stream(ticket, config, start, backbone)
        finally:
            self.slots.release(ticket)

    def _stream(self, ticket: RunTicket, config: RolloutConfig, start: _Start, backbone: Backbone) -> Iterator[tuple]:
        notes = ("".join(f"\n\nNote: {notice}" for notice in backbone.notices) + _setting_note(config)
                 + _sampler_note(config, backbone))
        if backbone.name != "embedded":  # say which models ran when the visitor named any
            notes += f"\n\nModels: {backbone.name}."
        setup, first = start.setup, start.photo if start.sequence is None else start.sequence.first_photo
        if first is not None:
            scored = ("scored against its real frames" if start.sequence is not None
                      else "no truth to score against, only the scores that need none")
            notes += (f"\n\nFirst frame: {first.name} ({first.original_size[0]}x{first.original_size[1]}), field of view "
                      f"{setup.fov_degrees:.1f} degrees ({setup.fov_source}); depth from {backbone.depth_name}; {scored}.")
        if start.sequence is not None:
            notes += f"\n\nFootage: {start.sequence.source}."
        steps = setup.steps
        total, rollout = steps + 1, None
        try:
            for rollout in iter_rollout(config, backbone=backbone, trajectory=start.camera_path, photo=start.photo,
                                        sequence=start.sequence):
                self.sessions.publish(ticket, rollout)
                step = len(rollout) - 1
                following = "" if step == steps else f" Running step {step + 1}...{DRAWN_AT_THE_END}"
                yield (*_panels(rollout, step, metrics=False, cache=False), _slider(step),
                       _status(f"Step {step} of {steps} done.{following}{notes}", step + 1, total), gr.update())
                if ticket.should_stop:
                    break
        except ValueError as error:
            raise _refused(str(error)) from None
        if rollout is None or ticket.closed:
            return  # the session ended before anything ran: nothing to show or keep
        last = len(rollout) - 1
        done = f"Done: {steps} steps." if last == steps else f"Stopped after step {last} of {steps}."
        panels = _panels(rollout, last)
        yield (*panels, _slider(last), _status(f"{done} Writing the downloads (video, report, caches)...{notes}"), gr.update())
        folder = self.sessions.export_folder(ticket)
        if folder is None:
            return  # the session ended meanwhile
        try:
            downloads, written = _downloads(rollout, folder), ""
        except (OSError, ValueError) as error:  # a full disk, say: the panels stay, the downloads are not offered
            downloads, written = None, f" The downloads could not be written ({error}); the panels above are complete."
        yield (*panels, _slider(last),  # the panels again: an API caller's result is the last output
               _status(f"{done}{written} Drag the slider to scrub back through every step.{notes}"), downloads)

    # -- drive mode ---------------------------------------------------------------------------------
    def drive_start(self, world: str, photo_path: str | None, size: float, seed: float, memory_setting: str = "paper",
                    request: gr.Request = None) -> tuple:
        """Start a drive at ``world``'s start camera (or a photo): step 0 runs, the step view shows it."""
        config = _with_memory_setting(_config(world, "loop", None, 1, size, seed), memory_setting)
        if config.size not in DRIVE_SIZES:
            raise _refused(f"size must be one of {', '.join(map(str, DRIVE_SIZES))} in drive mode, got {config.size}")
        self._claim(request, photo_path)
        photo = _photo(photo_path, config.size, 0.0)
        depth = depth_model_for("embedded", photo is not None, config.depth_source)  # a drive must answer fast
        return self._drive_press(request, lambda _: DriveSession(config, backbone=build_backbone(depth=depth), photo=photo,
                                                                  max_steps=MAX_STEPS, defer_scores=True), start=True)

    def press(self, action: str) -> Callable[..., tuple]:
        """The handler of one drive button (Gradio finds the request by the handler's own annotation)."""
        def handler(request: gr.Request = None) -> tuple:
            return self.drive(action, request)

        handler.__name__ = f"drive_{action}"
        return handler

    def drive(self, action: str, request: gr.Request = None) -> tuple:
        """One press: a move, ``back_to_start``, ``undo`` or ``reset`` of the session's drive."""
        presses = {**{name: (lambda d, n=name: d.move(n)) for name in MOVES},
                   "back_to_start": DriveSession.back_to_start, "undo": DriveSession.undo, "reset": DriveSession.reset}
        if action not in presses:
            raise _refused(f"unknown drive action {action!r}; accepted: {', '.join(presses)}")

        def apply(drive: DriveSession) -> DriveSession:
            presses[action](drive)
            return drive

        return self._drive_press(request, apply)

    def _drive_press(self, request: gr.Request | None, press: Callable[[DriveSession | None], DriveSession],
                     start: bool = False) -> tuple:
        """Run ``press`` on the session's drive in a run slot (one press at a time per session; a refused press
        changes nothing) and show the drive's last step."""
        session_id = _session_id(request)
        try:
            ticket = self.sessions.begin_run(session_id, fresh=False, visitor=_visitor(request))
        except SessionBusy as error:
            raise _refused(f"{error}; drive presses wait until it is over") from None
        except ServerBusy as error:
            raise _refused(str(error)) from None
        try:
            drive = self.sessions.drive(session_id)
            if drive is None and not start:
                raise _refused("No drive yet: choose a world (or upload a photo) and press Start here first.")
            try:
                for _ in self.slots.wait(ticket):
                    pass
            except ServerBusy as error:
                raise _refused(str(error)) from None
            try:
                drive = press(drive)
            except ValueError as error:
                raise _refused(str(error)) from None
            finally:
                self.slots.release(ticket)
            self.sessions.publish_drive(ticket, drive)
            return self._drive_outputs(ticket, drive)
        finally:
            self.sessions.end_run(ticket)

    async def drive_settled(self, request: gr.Request = None) -> tuple:
        """After a press: once the driver has paused for ``DRIVE_SETTLE_S``, the drive's last step is scored and its 3D
        caches and table are shown (the press showed its frames first); a newer press meanwhile leaves both as they
        are (it will settle in turn), and so does a drive drawn already since its last change (one drawing per press,
        however often this is called). The pause holds no thread: presses from many visitors never starve the server."""
        drive = self.sessions.drive(_session_id(request))
        if drive is None or self._settled.get(drive) == drive.changes:
            return gr.skip(), gr.skip()
        changes = drive.changes
        await asyncio.sleep(DRIVE_SETTLE_S)
        if self._settled.get(drive) == changes:  # a call beside this one drew it meanwhile
            return gr.skip(), gr.skip()
        self._settled[drive] = changes
        return await asyncio.to_thread(_settled_panels, drive, changes)

    def _drive_outputs(self, ticket: RunTicket, drive: DriveSession) -> tuple:
        rollout = drive.rollout
        step = len(rollout) - 1
        view, cache, _, table = _panels(rollout, step, metrics=False, cache=False)
        held = "; ".join(f"the {rollout.memory_info[name].label} holds {rollout.records[name][step].cache_points:,} points"
                         for name in rollout.memories_holding("latent"))
        text = f"Step {step} of at most {drive.max_steps}; {held}.{_setting_note(rollout.config)}"
        download = None
        folder = self.sessions.export_folder(ticket, kind="drive") if step else None
        if folder is not None:
            download = str(folder / "drive_trajectory.json")
            drive.trajectory().save(download)
            setup = rollout.setup
            source = f"--image YOUR_PHOTO --fov {setup.fov_degrees!r}" if setup.photo else f"--world {setup.world}"  # exact
            text += (f"\n\nReplay this path: mirage-viz rollout --trajectory-file drive_trajectory.json {source} "
                     f"--seed {rollout.config.seed} --size {setup.size}{_setting_flag(rollout.config)}")
        return view, cache, table, _status(text), download

    # -- trace a cell ------------------------------------------------------------------------------
    def trace_picture(self, step: float, picture: str, shown: _Shown | None = None,
                      request: gr.Request = None) -> tuple:
        """The Rollout tab's picture to click at ``step`` (the answer cleared: it was of another step) and what it
        shows; nothing changes when it shows that already (the slider repeats its change event on clicks), nor while
        a run streams (the frames first: the picture follows when it is done)."""
        session_id = _session_id(request)
        if self.sessions.running(session_id):  # emptied once (it showed the last rollout), then left as it is
            return _picture_after_the_run() if shown is not None else (gr.skip(), gr.skip(), gr.skip())
        return _trace_picture(self.sessions.rollout(session_id), step, picture, shown)

    def trace(self, shown: _Shown | None, picture: str, evt: gr.SelectData, request: gr.Request = None) -> tuple:
        """A click on the Rollout tab's picture, which shows ``shown``: the place under it traced in every memory
        (the picture with the cell outlined, the answer, and the trace kept for :meth:`trace_figure`)."""
        rollout = self.sessions.rollout(_session_id(request))
        if rollout is None or len(rollout) == 0:
            raise _refused("No rollout yet: press Run, then click a cell of the picture to trace it.")
        return _trace_answer(rollout, _shown_step(rollout, shown), picture, evt)

    def trace_figure(self, view: TraceView | None, request: gr.Request = None) -> object:
        """The Rollout tab's 3D caches with the traced winners and their rays (after the answer: it shows first)."""
        return _trace_figure(self.sessions.rollout(_session_id(request)), view)

    def drive_trace_picture(self, picture: str, request: gr.Request = None) -> tuple:
        """The Drive tab's picture to click: the drive's last step (and that step)."""
        drive = self.sessions.drive(_session_id(request))
        rollout = None if drive is None else drive.rollout
        return _trace_picture(rollout, len(rollout) - 1 if rollout is not None else 0, picture)

    def drive_trace(self, shown: _Shown | None, picture: str, evt: gr.SelectData, request: gr.Request = None) -> tuple:
        """A click on the Drive tab's picture, which shows ``shown`` (None: the drive's last step): traced there."""
        drive = self.sessions.drive(_session_id(request))
        if drive is None or len(drive.rollout) == 0:
            raise _refused("No drive yet: press Start here, take a step, then click a cell of the picture to trace it.")
        return _trace_answer(drive.rollout, _shown_step(drive.rollout, shown), picture, evt)

    def drive_trace_figure(self, view: TraceView | None, request: gr.Request = None) -> object:
        """The Drive tab's 3D caches with the traced winners and their rays."""
        drive = self.sessions.drive(_session_id(request))
        return _trace_figure(None if drive is None else drive.rollout, view)

    def scrub(self, step: float, request: gr.Request = None) -> tuple:
        session_id = _session_id(request)
        rollout = self.sessions.rollout(session_id)
        if rollout is None and (reason := self.sessions.freed_reason(session_id)):
            gr.Warning(f"This session's rollout was {reason}; press Run to make a new one.")
        return _panels(rollout, step, metrics=False)

    def staged(self, step: float, shown: bool, request: gr.Request = None) -> object:
        """The Rollout tab's "One step, staged" panel at ``step`` while it is open (closed: left as it is)."""
        return _staged_html(self.sessions.rollout(_session_id(request)), step) if shown else gr.update()

    def stop(self, request: gr.Request = None) -> str:
        if self.sessions.request_stop(_session_id(request)):
            return _status("Stopping after the current step...")
        return _status("Nothing is running.")

    def bench(self, path: str | None = None, request: gr.Request = None) -> tuple:
        """The Benchmark tab's plot and tables of an uploaded ``bench.json`` (freed with the session)."""
        self._claim(request, path)
        return show_bench(path)

    def _claim(self, request: gr.Request | None, *files: str | list[str] | None) -> None:
        """The session uses these uploads: they are kept until it ends (:class:`UploadLedger`)."""
        paths = [p for f in files for p in ([f] if isinstance(f, str) or f is None else f)]
        self.uploads.claim(_session_id(request), paths)

    def close(self, request: gr.Request = None) -> None:
        """The visitor left (tab closed, or an API client closed): free their rollout and downloads now."""
        if self.forget is not None and getattr(request, "session_hash", None):
            self.forget(request.session_hash)
        self.sessions.close(_session_id(request))  # frees, then hands the memory back


def _forget_gradio_session(demo: gr.Blocks, session_hash: str) -> None:
    """Drop Gradio's per-session record (a copy of every component's config, the plots' last figures included:
    about 1 MB of JSON a session) when the session ends; Gradio itself keeps it until 10,000 sessions are held."""
    holder = getattr(demo, "state_holder", None)
    if holder is None or not hasattr(holder, "session_data"):
        return  # another Gradio: the cap launch() sets on kept sessions still bounds it
    with holder.lock:
        holder.session_data.pop(session_hash, None)
        holder.time_last_used.pop(session_hash, None)


def _visitor(request: gr.Request | None) -> str | None:
    """Who asked (:func:`visitor_address`); None outside a served request (a script), with no per-visitor limit."""
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    headers = getattr(request, "headers", None) or {}
    return visitor_address(host, headers.get("x-forwarded-for")) if host else None


def _session_id(request: gr.Request | None) -> str:
    session = getattr(request, "session_hash", None)
    if not session:  # called outside a Gradio session (a script): a session of its own
        return f"local-{secrets.token_hex(8)}"
    return str(session)


TRACE_HINT = ("Click a cell of the picture to see where that piece of memory came from: the step that lifted it, "
              "its depth, the points it beat and the rule that decided, or why it is a hole; the same place in the RGB "
              "memory beside it, and the ray to it in the 3D caches.")
TRACE_HINT_HTML = f'<p class="mv-trace-hint">{html.escape(TRACE_HINT)}</p>'  # in the answer's place until a click


class _Shown(NamedTuple):
    """What a picture to click shows: a click traces that step, whatever moved since it was drawn."""

    rollout: int  # id() of the rollout drawn
    steps: int  # how many steps it had then
    step: int
    picture: str


def _shown_step(rollout: Rollout, shown: _Shown | None) -> int | None:
    """The step a picture of ``rollout`` shows (None: it shows another rollout's, or nothing yet)."""
    return shown.step if isinstance(shown, _Shown) and shown.rollout == id(rollout) else None


def _trace_picture(rollout: Rollout | None, step: float, picture: str, shown: _Shown | None = None) -> tuple:
    """The picture to click at ``step`` of ``rollout`` (empty before a rollout), the hint in the answer's place and
    what the picture shows; three no-op updates when it shows exactly that already (``shown``)."""
    if rollout is None or len(rollout) == 0:
        return gr.Image(value=None, label="the picture to click: press Run (or Start here) first"), TRACE_HINT_HTML, None
    step = max(0, min(int(step or 0), len(rollout) - 1))
    showing = _Shown(id(rollout), len(rollout), step, picture or CLICK_PICTURES[0])
    if showing == shown:
        return gr.update(), gr.update(), gr.update()
    try:
        drawn = click_picture(rollout, step, picture or CLICK_PICTURES[0])
    except ValueError as error:
        raise _refused(str(error)) from None
    note = " (step 0 read no memory: move to a later step to trace)" if step == 0 else ": click a cell"
    return gr.Image(value=drawn.image, label=f"{drawn.caption}{note}"), TRACE_HINT_HTML, showing


def _settled_panels(drive: DriveSession, changes: int) -> tuple:
    """The drive's last step scored, and its 3D caches and table; both left as they are when the drive changed
    since ``changes`` (a press came meanwhile)."""
    with drive.lock:
        if drive.changes != changes:
            return gr.skip(), gr.skip()
        rollout = drive.score()
        _, cache, _, table = _panels(rollout, len(rollout) - 1, metrics=False)
    return cache, table


def _picture_after_the_run() -> tuple:
    """The Rollout tab's picture to click while a run streams: none yet (:func:`_trace_picture`'s outputs; no step
    shown)."""
    return (gr.Image(value=None, label="the picture to click: shown when the run is done"),
            TRACE_HINT_HTML, None)


def _trace_answer(rollout: Rollout, step: int | None, picture: str, evt: gr.SelectData) -> tuple:
    """A click at ``evt.index`` (x, y on the picture) traced at ``step`` (None: the last): the picture with the cell
    outlined, the answer (HTML) and the trace (for :func:`_trace_figure`). A click that cannot be traced is refused."""
    if len(rollout) < 2:
        raise _refused("Nothing to trace yet: step 0 is the given first frame, which read no memory. Take a step "
                       "(or wait for the run's next one), then click a cell.")
    step = len(rollout) - 1 if step is None else max(0, min(int(step), len(rollout) - 1))
    index = getattr(evt, "index", None)
    try:
        if not isinstance(index, (list, tuple)) or len(index) != 2:
            raise ValueError(f"a click on the picture gives a pixel (x, y), got {index!r}")
        x, y = pixel_of_click(rollout, *index)
        view = trace_view(rollout, step, x, y)
        basis = rollout_pca(rollout)
        shown = click_picture(rollout, step, picture or CLICK_PICTURES[0], basis, outline=view.box)
    except ValueError as error:
        raise _refused(f"This cell cannot be traced: {error}") from None
    return (gr.Image(value=shown.image, label=f"{shown.caption}: the traced cell outlined"), trace_view_html(view),
            view.without_pictures())


def _trace_figure(rollout: Rollout | None, view: TraceView | None) -> object:
    """The 3D caches at the traced step with its winners and rays; unchanged when the trace is gone or stale."""
    if rollout is None or view is None or view.step >= len(rollout):
        return gr.update()
    return trace_cache_figure(rollout, view, rollout_pca(rollout), max_points=APP_MAX_POINTS)


def _staged_html(rollout: Rollout | None, step: float) -> str:
    """The latent memory's read at ``step`` in five stages, and at a revisit the z-test lesson, as HTML."""
    if rollout is None or len(rollout) == 0:
        return _status("Press Run: the step on the slider then shows here in five stages.")
    step = max(0, min(int(step or 0), len(rollout) - 1))
    if step == 0:
        return _status("Step 0 is the given first frame: it read no memory. Move the slider to a later step.")
    try:
        stages = walkthrough(rollout, step)
    except ValueError as error:
        return _status(str(error))
    note = ""
    if revisited_step(rollout, step) is not None:  # back at an earlier camera: the z-test lesson too
        try:
            stages += ztest_lesson(rollout, step).stages()
        except ValueError as error:
            note = _status(f"The z-test lesson: {error}")
    return walkthrough_html(stages, heading=f"Step {step}: the latent memory's read in five stages") + note


def _slider(last_step: int) -> dict:
    """The step slider up to ``last_step`` and on it (a slider needs max > min, so step 0 shows 0..1)."""
    return gr.update(maximum=max(1, last_step), value=last_step, interactive=last_step > 0)


SWEEP_INTRO = (
    "### The claims across scenes, paths and depth quality\n"
    "The shipped sweep (`mirage_viz/assets/sweep`, `mirage-viz sweep --grid mirage_viz/assets/sweep/grid.json`): "
    "3 worlds x 3 layouts x 2 paths (`loop`; `pan_left+back_to_start`, which turns away from everything the first "
    "frame saw and back) x 4 depth qualities (truth, truth with 5% and 15% smooth multiplicative noise, the embedded "
    "estimator) x 3 seeds at 128 px: 216 rollouts of the three memories. Error bars: 95% intervals over the 27 "
    "replicates. `room` layouts are among the denoiser's training worlds; `studio` and `gallery` are not.")
SWEEP_TABLE_COLUMNS = ["trajectory", "depth", "memory", "runs", "revisit_psnr", "revisit_psnr_ci", "mean_psnr",
                       "mean_psnr_ci", "hole_rate", "depth_abs_rel"]


@functools.lru_cache(maxsize=1)
def show_sweep() -> tuple:
    """The shipped sweep's four figures and its summary table (computed once: the data ships with the package)."""
    summary = summarize(load_results())
    figures = [figure for _, figure in sweep_figures(summary)]
    return (*figures, summary[SWEEP_TABLE_COLUMNS].round(3))


def show_bench(path: str | None = None) -> tuple:
    """The Benchmark tab for a ``bench.json`` (the shipped one when ``path`` is None): which run it is, the three
    headline results (a sentence and a chart each), the targets and every table."""
    shipped = not path
    path = path or SHIPPED_BENCH
    try:
        result = load_bench(path)
        headlines = bench_headlines(result)
        machine = result["machine"]
        source = "the shipped run" if shipped else Path(path).name
        note = (f"Shown: {source}, measured {result['created'][:10]} on {machine['cpu_count']} CPUs ({machine['processor']}"
                f"{', quick' if result['config']['quick'] else ''}).")
        targets = result["targets"]
        met = sum(t["met"] is True for t in targets)
        return (note, *[part for h in headlines for part in (f"#### {h.title}\n{h.sentence}", h.figure)],
                gr.Accordion(label=f"Targets: {met} of {len(targets)} met (every figure against its bar)"),
                targets_markdown(result), bench_markdown(result, targets=False))
    except Exception as error:  # noqa: BLE001 - any malformed upload gets a message, never a traceback
        message = str(error) if isinstance(error, ValueError) else f"{Path(path).name} lacks part of a benchmark result ({error!r})"
        raise _refused(f"{message}; upload a bench.json written by `mirage-viz bench`") from None


def _trace_panel(name: str) -> tuple[gr.Image, gr.Radio, gr.HTML]:
    """The trace-a-cell panel: the picture to click (and what it shows), the answer beside it."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            choice = gr.Radio(list(CLICK_PICTURES), value=CLICK_PICTURES[0], label="click on", elem_id=f"{name}-choice")
            # shown at most at its own size (a browser never enlarges it), so a click lands on the pixel it shows
            image = gr.Image(label="the picture to click: press Run (or Start here) first", interactive=False,
                             buttons=[], elem_id=f"{name}-picture", format="png", height=400)
        with gr.Column(scale=3, min_width=440):
            answer = gr.HTML(TRACE_HINT_HTML, elem_id=f"{name}-answer",
                             min_height=120)
    return image, choice, answer


def _model_folders() -> tuple[str, ...]:
    """Folders the server's owner lets visitors load models from (``MIRAGE_VIZ_MODEL_DIRS``, ``os.pathsep``-separated)."""
    return tuple(f for f in os.environ.get("MIRAGE_VIZ_MODEL_DIRS", "").split(os.pathsep) if f.strip())


def build_demo(model_folders: tuple[str | Path, ...] | None = None, max_rollouts: int = MAX_ROLLOUTS,
               session_ttl_s: float = SESSION_TTL_S) -> gr.Blocks:
    """The app's Blocks, its queue bounded; serve it with :func:`launch` (which also caps uploads).

    Args:
        model_folders: folders visitors may load models from (default: ``MIRAGE_VIZ_MODEL_DIRS``; none: hub ids only).
        max_rollouts: sessions holding a rollout at once (least recently used idle ones are freed beyond it).
        session_ttl_s: an idle session's rollout and downloads are freed after this many seconds.
    """
    from gradio.utils import get_upload_folder

    export_root = Path(get_upload_folder()) / "mirage_viz" / f"exports-{os.getpid()}-{secrets.token_hex(4)}"
    uploads = UploadLedger(get_upload_folder(), UPLOADS_PER_VISITOR, UPLOADS_ON_SERVER, UNUSED_UPLOAD_TTL_S)
    sessions = SessionStore(export_root, max_rollouts=max_rollouts, ttl_s=session_ttl_s, on_close=uploads.release_session)
    sessions.sweep_hooks.append(uploads.sweep)
    sessions.start_sweeper()
    atexit.register(sessions.shutdown)
    access = ModelAccess.for_visitors(_model_folders() if model_folders is None else model_folders)
    slots = RunSlots(running=RUN_CONCURRENCY, waiting=RUNS_WAITING, per_visitor=RUNS_PER_VISITOR)
    handlers = _Handlers(sessions, slots, access, uploads)
    folders = f" or a folder inside {', '.join(map(str, access.folders))}" if access.folders else ""
    presets = ", ".join(f"{n} ({p.magnitude:g} {p.unit})" for n, p in PRESETS.items())
    with gr.Blocks(title="mirage_viz: latent spatial memory", delete_cache=(900, 3600)) as demo:
        gr.Markdown(
            "# mirage_viz: latent spatial memory, step by step\n"
            "A camera trajectory runs through a synthetic room with three memories side by side: **latent** "
            "(Mirage: latent cells lifted to 3D and splatted at latent resolution), **rgb** (a pixel point cloud "
            "rasterized and VAE-encoded every step) and **none**. Same models, same noise: the differences come "
            "from memory alone. Camera convention: OpenCV, poses camera-to-world."
        )
        with gr.Tab("Rollout"):
            with gr.Row():
                with gr.Column(scale=1):
                    # Run, Stop and the status line first: in view at 1280x800 beside the step view
                    with gr.Row():
                        run_button = gr.Button("Run", variant="primary")
                        stop_button = gr.Button("Stop")
                    status = gr.HTML(_status("Press Run."), elem_id="run-status")
                    world = gr.Dropdown(list(WORLD_NAMES), value=DEFAULT_WORLD, label="world")
                    trajectory = gr.Dropdown(list(TRAJECTORY_NAMES), value="loop", label="trajectory", info=presets)
                    back_to_start = gr.Checkbox(False, label="then back to the start (the last half of the steps: a revisit)")
                    magnitude = gr.Number(0.0, label="magnitude (metres, degrees or zoom factor; 0 = the preset's default)",
                                          minimum=0)
                    steps = gr.Slider(1, MAX_STEPS, value=8, step=1, label="steps")
                    size = gr.Radio(list(SIZES), value=256, label="size (pixels)")
                    seed = gr.Number(0, label="seed", precision=0, minimum=0)
                    memory_setting = gr.Radio(list(MEMORY_SETTINGS), value="paper", label="memory setting",
                                              info="what the latent memory keeps and how frames are made from it")
                    setting_sentence = gr.Markdown(_setting_sentence("paper"))
                    photo = gr.File(label=f"photo as first frame (optional, {MAX_UPLOAD.upper()} max)",
                                    file_types=["image"], type="filepath", height=120)
                    camera_file = gr.File(label=CAMERA_FILE_HELP, file_count="multiple", file_types=[".json", ".txt"],
                                          type="filepath", height=120)
                    footage = gr.Dropdown(["", *FOOTAGE], value="", label="posed footage as the world (optional)",
                                          info="real frames at their cameras: the first is the first frame, the others "
                                          "the truth each step is scored against (--sequence in the CLI). Your own, "
                                          "zipped below: a transforms.json with its images, a COLMAP model with "
                                          "images/, or a RealEstate10K clip.txt with clip/<timestamp>.png")
                    footage_zip = gr.File(label=f"your own footage as a .zip ({MAX_UPLOAD.upper()} max)",
                                          file_types=[".zip"], type="filepath", height=120)
                    with gr.Accordion("photo, depth and hub models", open=False):
                        fov = gr.Number(0.0, label="field of view of the photo (degrees; 0 = EXIF focal length, else 60)", minimum=0)
                        depth_model = gr.Textbox(DEFAULT_DEPTH_MODEL, label=f"depth model for photos (transformers hub id{folders}; "
                                                 "'embedded' or empty: the shipped estimator, also the fallback)")
                        depth_scale = gr.Number(3.0, label="depth scale: median depth of a photo (metres)",
                                                minimum=DEPTH_SCALE_RANGE[0], maximum=DEPTH_SCALE_RANGE[1])
                        vae = gr.Textbox("", label=f"VAE (hub id{folders}; empty: embedded; '{SHARP_VAE}': the embedded "
                                          "VAE with a decoder trained to draw edges)")
                        generator = gr.Textbox("", label="inpainting generator (StableDiffusionInpaintPipeline id; empty: embedded)")
                        prompt = gr.Textbox("", label="prompt (hub generator)")
                with gr.Column(scale=4, min_width=640):
                    with gr.Accordion("Path preview: every camera of the chosen path, before generating", open=True) as preview_box:
                        with gr.Row(equal_height=False):
                            preview_plot = gr.Plot(label="the path's cameras over the first frame's points", show_label=False,
                                                   scale=3)  # the figure's own title says it
                            preview_html = gr.HTML(elem_id="path-preview", min_height=120, scale=1, min_width=220)
                    step_slider = gr.Slider(0, MAX_STEPS, value=0, step=1, label="step", interactive=False)
                    view_html = gr.HTML(elem_id="step-view", min_height=200)
                    with gr.Accordion("Trace a cell: click the picture, see where that piece of memory came from",
                                      open=True):
                        trace_image, trace_choice, trace_html = _trace_panel("trace")
                    with gr.Accordion("One step, staged: lift, project, z-test, holes, generate (and, back at an "
                                      "earlier camera, the z-test lesson)", open=False) as staged_box:
                        staged_html = gr.HTML(elem_id="step-staged", min_height=60)
                    cache_plot = gr.Plot(label="3D caches (drag to turn; click a legend entry to show or hide it)")
                    table = gr.Dataframe(headers=TABLE_HEADERS, label="this step, per memory", interactive=False)
                    metrics_plot = gr.Plot(label="over steps")
            downloads = gr.File(label="downloads: rollout.mp4, report.html (opens offline), summary.json, trajectory.json, "
                                "rollout.gif, caches as PLY, cameras.zip (nerfstudio, COLMAP, RealEstate10K, open3d), frames.zip",
                                file_count="multiple")

            inputs = [world, trajectory, magnitude, steps, size, seed, photo, fov, depth_model, vae, generator, prompt, depth_scale,
                      back_to_start, camera_file, memory_setting, footage, footage_zip]
            path_inputs = [world, trajectory, magnitude, steps, size, seed, photo, fov, back_to_start, camera_file, footage,
                           footage_zip]
            panel_outputs = [view_html, cache_plot, metrics_plot, table]
            # no Gradio limit: every run reaches RunSlots at once, which lets RUN_CONCURRENCY compute, RUNS_WAITING
            # wait in line (told their place) and answers the next one "busy" immediately; progress shows in the
            # status line only, never over the panels
            memory_setting.change(_setting_sentence, memory_setting, setting_sentence, queue=False, show_progress="hidden",
                                  api_visibility="private")
            run_event = run_button.click(handlers.run, inputs, [*panel_outputs, step_slider, status, downloads], api_name="run",
                             concurrency_limit=None, show_progress="hidden")
            run_button.click(lambda: gr.Accordion(open=False), None, preview_box, queue=False, show_progress="hidden")
            # the preview follows every input that changes the path (the latest change wins), and opens again
            for component in path_inputs:
                component.change(lambda: gr.Accordion(open=True), None, preview_box, queue=False, show_progress="hidden")
            gr.on([c.change for c in path_inputs] + [demo.load], handlers.preview, path_inputs,
                  [preview_html, preview_plot], api_name="preview", concurrency_limit=2, concurrency_id="preview",
                  trigger_mode="always_last", show_progress="hidden")
            # Stop never waits in the queue behind the runs it is meant to stop
            stop_button.click(handlers.stop, None, status, api_name="stop", queue=False, show_progress="hidden")
            step_slider.release(handlers.scrub, step_slider, panel_outputs, api_name="scrub",
                                concurrency_limit=2, concurrency_id="scrub", show_progress="hidden")
            # one step, staged: drawn for the step on the slider (streamed or scrubbed) while its accordion is open
            staged_shown = gr.State(False)
            staged_box.expand(lambda: True, None, staged_shown, queue=False, show_progress="hidden",
                              api_visibility="private").then(
                handlers.staged, [step_slider, staged_shown], staged_html, api_visibility="private",
                concurrency_limit=1, concurrency_id="staged", show_progress="hidden")
            staged_box.collapse(lambda: False, None, staged_shown, queue=False, show_progress="hidden",
                                api_visibility="private")
            view_html.change(handlers.staged, [step_slider, staged_shown], staged_html, api_visibility="private",
                             concurrency_limit=1, concurrency_id="staged", trigger_mode="always_last",
                             show_progress="hidden")  # the step view's change: the slider's repeats on every click
            # the picture to click follows the step view (scrubbed: not the slider's change, which the slider
            # repeats on every click in the page) and the choice; a click answers in place. While a run streams it
            # waits (the frames first) and shows once the run is over
            trace_shown = gr.State()  # what the picture shows: a click traces that step, whatever moved since
            trace_follows = dict(inputs=[step_slider, trace_choice, trace_shown],
                                 outputs=[trace_image, trace_html, trace_shown], api_visibility="private",
                                 concurrency_limit=2, concurrency_id="trace", show_progress="hidden")
            gr.on([view_html.change, trace_choice.change], handlers.trace_picture, trigger_mode="always_last",
                  **trace_follows)
            run_event.then(handlers.trace_picture, **trace_follows)
            traced = gr.State()  # the last trace, kept on the server for the 3D view drawn after the answer
            trace_image.select(handlers.trace, [trace_shown, trace_choice], [trace_image, trace_html, traced],
                               api_visibility="private", concurrency_limit=2, concurrency_id="trace",
                               trigger_mode="always_last", show_progress="hidden").success(
                handlers.trace_figure, traced, cache_plot, api_visibility="private", concurrency_limit=2,
                concurrency_id="trace", show_progress="hidden")
            gr.Examples(EXAMPLES, inputs[:7], label="examples (seconds on a CPU; the photos are CC0 / public domain)")
        with gr.Tab("Drive"):
            gr.Markdown(
                "Steer the camera yourself: each press generates the next view with all three memories on the same "
                "noise. Walk away, then press **back to start**: the latent memory should bring the first view back. "
                "Keys (outside text fields): W/S forward and back, A/D left and right, Q/E turn, R/F up and down, "
                "B back to start, Z Undo."
            )
            with gr.Row():
                with gr.Column(scale=1, min_width=300):
                    drive_world = gr.Dropdown(list(WORLD_NAMES), value=DEFAULT_WORLD, label="world")
                    drive_photo = gr.File(label="or a photo as the first frame (optional)", file_types=["image"],
                                          type="filepath", height=130)
                    with gr.Row():
                        drive_size = gr.Radio(list(DRIVE_SIZES), value=128, label="size (pixels)")
                        drive_seed = gr.Number(0, label="seed", precision=0, minimum=0)
                    drive_setting = gr.Radio(list(MEMORY_SETTINGS), value="paper", label="memory setting",
                                             info="what the latent memory keeps and how frames are made from it")
                    drive_sentence = gr.Markdown(_setting_sentence("paper"))
                    drive_setting.change(_setting_sentence, drive_setting, drive_sentence, queue=False,
                                         show_progress="hidden", api_visibility="private")
                    start_button = gr.Button("Start here", variant="primary")
                    drive_status = gr.HTML(_status("Choose a world (or a photo) and press Start here."),
                                           elem_id="drive-status")
                    buttons: dict[str, gr.Button] = {}
                    for row in (("turn_left", "forward", "turn_right"), ("left", "back", "right"), ("up", "down"),
                                ("back_to_start", "undo")):
                        with gr.Row():
                            for name in row:
                                buttons[name] = gr.Button(DRIVE_LABELS[name], elem_id=f"drive-{name}", size="sm",
                                                          min_width=80)
                    reset_button = gr.Button("Reset to the first frame", size="sm")
                    drive_download = gr.File(label="the path so far: trajectory JSON (replay it with the command above)")
                with gr.Column(scale=4, min_width=640):
                    drive_html = gr.HTML(elem_id="drive-view", min_height=200)
                    with gr.Accordion("Trace a cell: click the picture, see where that piece of memory came from",
                                      open=True):
                        drive_trace_image, drive_trace_choice, drive_trace_html = _trace_panel("drive-trace")
                    drive_cache = gr.Plot(label="3D caches, drawn when you pause (drag to turn; click a legend entry to "
                                                "show or hide it)")
                    drive_table = gr.Dataframe(headers=TABLE_HEADERS, label="this step, per memory (the scores that need "
                                               "no truth when you pause)", interactive=False)
            drive_outputs = [drive_html, drive_cache, drive_table, drive_status, drive_download]
            presses = [start_button.click(handlers.drive_start, [drive_world, drive_photo, drive_size, drive_seed,
                                                                 drive_setting], drive_outputs,
                                          api_name="drive_start", concurrency_limit=None, show_progress="minimal",
                                          show_progress_on=drive_status)]
            for name, button in buttons.items():
                presses.append(button.click(handlers.press(name), None, drive_outputs, api_name=f"drive_{name}",
                                            concurrency_limit=None, show_progress="minimal",
                                            show_progress_on=drive_status, trigger_mode="once"))
            presses.append(reset_button.click(handlers.press("reset"), None, drive_outputs, api_name="drive_reset",
                                              concurrency_limit=None, show_progress="minimal",
                                              show_progress_on=drive_status))
            # the 3D caches and the scores follow when the driver pauses (an API caller asks for them: /drive_scores)
            for index, press in enumerate(presses):
                press.success(handlers.drive_settled, None, [drive_cache, drive_table],
                              api_name="drive_scores" if index == 0 else None,
                              api_visibility="public" if index == 0 else "private", concurrency_limit=None,
                              show_progress="hidden")
            # the picture to click follows the drive's last step: after every press, and when the choice changes
            drive_trace_shown = gr.State()
            for press in presses:
                press.then(handlers.drive_trace_picture, drive_trace_choice,
                           [drive_trace_image, drive_trace_html, drive_trace_shown], api_visibility="private",
                           concurrency_limit=2, concurrency_id="trace", show_progress="hidden")
            drive_trace_choice.change(handlers.drive_trace_picture, drive_trace_choice,
                                      [drive_trace_image, drive_trace_html, drive_trace_shown],
                                      api_visibility="private", concurrency_limit=2, concurrency_id="trace",
                                      show_progress="hidden")
            drive_traced = gr.State()
            drive_trace_image.select(handlers.drive_trace, [drive_trace_shown, drive_trace_choice],
                                     [drive_trace_image, drive_trace_html, drive_traced], api_visibility="private",
                                     concurrency_limit=2, concurrency_id="trace", trigger_mode="always_last",
                                     show_progress="hidden").success(
                handlers.drive_trace_figure, drive_traced, drive_cache, api_visibility="private",
                concurrency_limit=2, concurrency_id="trace", show_progress="hidden")
            demo.load(None, js=_KEYBOARD_JS)
        with gr.Tab("Benchmark") as bench_tab:
            gr.Markdown("The paper's claims measured side by side: the latent memory against the RGB memory, same "
                        "frames, same machine. Measure yours with `mirage-viz bench` (`--quick`: a few minutes) and show "
                        "its `bench.json` here.")
            with gr.Row(equal_height=True):
                bench_note = gr.Markdown()
                bench_upload = gr.UploadButton("Show my bench.json", file_types=[".json"], type="filepath", size="sm",
                                               scale=0, min_width=200)
            headline_parts = []
            with gr.Row():
                for _ in range(3):  # side by side at 1280 px and up: the three results in one screen
                    with gr.Column(min_width=380):
                        headline_parts += [gr.Markdown(), gr.Plot(show_label=False)]
            with gr.Accordion("Targets", open=False) as targets_box:
                targets_table = gr.Markdown()
            with gr.Accordion("Every table of the run", open=False):
                bench_tables = gr.Markdown()
            bench_outputs = [bench_note, *headline_parts, targets_box, targets_table, bench_tables]
            bench_upload.upload(handlers.bench, bench_upload, bench_outputs, api_name="bench")
            with gr.Accordion("Across scenes, paths and depth quality: the shipped sweep", open=False):
                gr.Markdown(SWEEP_INTRO)
                sweep_plots = []
                for _ in range(2):
                    with gr.Row():
                        # side by side from 1,300 px of window; one under the other below, so every label stays level
                        sweep_plots.extend(gr.Plot(show_label=False, min_width=620) for _ in range(2))
                sweep_table = gr.Dataframe(label="summary: means over 27 replicates (3 worlds x 3 layouts x 3 seeds) "
                                           "with 95% intervals", interactive=False, wrap=True)
            # drawn when the tab first opens, not with the page: the Rollout tab's first run has the machine to itself
            bench_drawn = gr.State(False)
            benchmark_outputs = [*bench_outputs, *sweep_plots, sweep_table]
            bench_tab.select(functools.partial(_benchmark_tab, outputs=len(benchmark_outputs)), bench_drawn,
                             [*benchmark_outputs, bench_drawn],
                             api_visibility="private", show_progress="hidden")
        demo.unload(handlers.close)
    handlers.forget = functools.partial(_forget_gradio_session, demo)
    demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=RUN_CONCURRENCY)
    demo.mirage_sessions = sessions  # for the server's owner: stats() and shutdown()
    demo.mirage_uploads = uploads  # launch() puts it in front of the upload route
    return demo


def _benchmark_tab(drawn: bool, outputs: int) -> tuple:
    """The Benchmark tab's ``outputs`` panels of the shipped bench and sweep, the first time it opens (later: as they
    are, an uploaded bench kept), and that it is drawn."""
    return (*[gr.skip()] * outputs, True) if drawn else (*show_bench(), *show_sweep(), True)


def launch(demo: gr.Blocks | None = None, **kwargs: object) -> tuple:
    """Serve ``demo`` (default: :func:`build_demo`) with uploads capped at ``MAX_UPLOAD`` and Gradio's per-session
    records capped at ``GRADIO_SESSIONS_KEPT`` (for visitors that leave without closing); ``kwargs`` go to ``launch``."""
    from starlette.middleware import Middleware

    demo = demo or build_demo()
    kwargs.setdefault("max_file_size", MAX_UPLOAD)
    sessions = demo.mirage_sessions
    guard = Middleware(VisitorMiddleware, ledger=demo.mirage_uploads, on_page_open=sessions.page_opened,
                       on_page_close=sessions.page_closed)
    app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
    app_kwargs["middleware"] = [*app_kwargs.get("middleware", []), guard]
    kwargs["app_kwargs"] = app_kwargs
    kwargs.setdefault("state_session_capacity", GRADIO_SESSIONS_KEPT)
    if not kwargs.get("prevent_thread_lock") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_serving)  # a Space is stopped with SIGTERM: close cleanly, downloads removed
    return demo.launch(**kwargs)


def _stop_serving(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # Gradio's serving loop closes the server on it; atexit then frees every session
