"""The Gradio app: run a trajectory with the three memories side by side, watch each step, scrub back.

UI code only: every number and picture comes from the engine (:mod:`mirage_viz.engine`), the figure
functions (:mod:`mirage_viz.figures`) and the exports (:mod:`mirage_viz.export`). Each browser session
keeps its own rollout in a ``gr.State``; nothing is shared between sessions but the read-only models.
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
import threading
from pathlib import Path
from typing import Iterator

import gradio as gr

from .backbone import ASSETS_DIR, DEFAULT_DEPTH_MODEL, Backbone, build_backbone
from .bench.report import bench_figure, bench_markdown, load_bench
from .models.hub_depth import DEPTH_SCALE_RANGE, check_depth_scale
from .engine import STAGES, Rollout, RolloutConfig, iter_rollout
from .export import export_animation, export_cache_ply
from .figures import cache_figure, frames_figure, latent_panels_figure, metrics_figure, rollout_pca
from .photo import Photo, load_photo, sample_photos
from .trajectories import PRESETS, TRAJECTORY_NAMES
from .worlds import DEFAULT_WORLD, WORLD_NAMES

__all__ = ["build_demo", "EXAMPLES", "MAX_STEPS", "SIZES", "SHIPPED_BENCH"]

SHIPPED_BENCH = ASSETS_DIR / "bench" / "bench.json"  # `mirage-viz bench` measured on a 2-core CPU machine

MAX_STEPS = 48
SIZES = (128, 256)
APP_MAX_POINTS = 6_000  # per cloud in the 3D view: keeps the browser responsive
EXAMPLES = [
    [DEFAULT_WORLD, "loop", 0.0, 8, 128, 0, None],
    [DEFAULT_WORLD, "orbit_left", 0.0, 6, 128, 0, None],
    ["studio", "push_in", 0.0, 6, 128, 1, None],
    *[[DEFAULT_WORLD, "pan_left", 20.0, 4, 128, 0, str(path)] for path in sample_photos()[:2]],
]
TABLE_HEADERS = ["memory", "step", "PSNR (dB)", "SSIM", "mask coverage", "cache points", "cache bytes",
                 *[f"{stage} (ms)" for stage in STAGES]]


def _config(world: str, trajectory: str, magnitude: float | None, steps: float, size: float, seed: float) -> RolloutConfig:
    """The inputs as a checked config; a ``gr.Error`` names what was wrong and what is accepted."""
    def integer(name: str, value: float | None) -> int:
        if value is None or not math.isfinite(float(value)) or float(value) != int(value):
            raise gr.Error(f"{name} must be a whole number, got {value!r}")
        return int(value)

    if magnitude is not None and (not math.isfinite(float(magnitude)) or magnitude < 0):
        raise gr.Error(f"magnitude must be a number >= 0 (0 uses the preset's default), got {magnitude!r}")
    config = RolloutConfig(world=world, trajectory=trajectory, magnitude=float(magnitude) if magnitude else None,
                           steps=integer("steps", steps), size=integer("size", size), seed=integer("seed", seed))
    try:
        config.validate()
    except ValueError as error:
        raise gr.Error(str(error)) from None
    if config.steps > MAX_STEPS:
        raise gr.Error(f"steps must be at most {MAX_STEPS} in the app, got {config.steps}")
    if config.size not in SIZES:
        raise gr.Error(f"size must be one of {', '.join(map(str, SIZES))} in the app, got {config.size}")
    return config


def _table(rollout: Rollout, step: int) -> list[list[object]]:
    rows = []
    for name, records in rollout.records.items():
        r = records[step]
        rows.append([name, r.step, None if r.psnr is None else round(r.psnr, 2), None if r.ssim is None else round(r.ssim, 3),
                     round(r.mask_coverage, 3), r.cache_points, r.cache_bytes,
                     *[round(r.timings_ms[stage], 1) for stage in STAGES]])
    return rows


def _panels(rollout: Rollout | None, step: float) -> tuple:
    """Every per-step panel for ``step`` of ``rollout``."""
    if rollout is None or len(rollout) == 0:
        return None, None, None, None, []
    step = max(0, min(int(step), len(rollout) - 1))
    basis = rollout_pca(rollout)
    return (cache_figure(rollout, step, basis, max_points=APP_MAX_POINTS), latent_panels_figure(rollout, step, basis),
            frames_figure(rollout, step), metrics_figure(rollout), _table(rollout, step))


def _exports(rollout: Rollout) -> list[str]:
    """summary.json, the caches as PLY and the rollout as GIF, in a folder of this session's own."""
    folder = Path(tempfile.mkdtemp(prefix="mirage_viz_"))
    last = len(rollout) - 1
    (folder / "summary.json").write_text(json.dumps(rollout.summary(), indent=1))
    files = [folder / "summary.json", export_animation(rollout, folder / "rollout.gif")]
    for name in ("latent", "rgb"):
        if name in rollout.caches and rollout.caches[name][0].shape[0]:
            files.append(export_cache_ply(rollout, name, last, folder / f"{name}_cache_step{last:03d}.ply"))
    return [str(f) for f in files]


_LOADING = threading.Lock()  # one model load at a time: two sessions asking for one model load it once


@functools.lru_cache(maxsize=2)
def _cached_backbone(vae: str, generator: str, depth: str, depth_scale: float) -> Backbone:
    return build_backbone(vae=vae or None, generator=generator or None, depth=depth or None, depth_scale=depth_scale)


def _backbone(vae: str, generator: str, depth: str, prompt: str, depth_scale: float) -> Backbone:
    """The embedded backbone, or hub models by id with embedded fallbacks (kept loaded for the next run).

    Sessions share the loaded models; a hub generator runs one call at a time, each with its session's prompt.
    """
    if not (vae or generator or depth):  # never wait behind another session's hub download
        return build_backbone(depth=None)
    with _LOADING:
        backbone = _cached_backbone(vae, generator, depth, depth_scale)
    return backbone.with_prompt(prompt)


def _number(name: str, value: object, accepted: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a number ({accepted}), got {value!r}") from None
    if not math.isfinite(number):
        raise gr.Error(f"{name} must be a finite number ({accepted}), got {value!r}")
    return number


def _photo(path: str | None, size: int, fov: object) -> Photo | None:
    if not path:
        return None
    fov = _number("field of view", 0.0 if fov is None else fov, "degrees in [10, 150]; 0 = from the photo's EXIF, else 60")
    try:
        return load_photo(path, size, fov or None)
    except ValueError as error:
        raise gr.Error(str(error)) from None


def run(world, trajectory, magnitude, steps, size, seed, photo_path=None, fov=0.0, depth_model=DEFAULT_DEPTH_MODEL,
        vae="", generator="", prompt="", depth_scale=3.0, progress=gr.Progress()) -> Iterator[tuple]:
    """Stream the rollout: after each step, every panel, the slider on that step and the session state."""
    config = _config(world, trajectory, magnitude, steps, size, seed)
    photo = _photo(photo_path, config.size, fov)
    depth = (depth_model or "").strip() if photo is not None else ""  # a world has its true depth
    depth = "" if depth == "embedded" else depth
    try:
        depth_scale = check_depth_scale(depth_scale)
    except ValueError as error:
        raise gr.Error(str(error)) from None
    backbone = _backbone((vae or "").strip(), (generator or "").strip(), depth, str(prompt or ""), depth_scale)
    notes = "".join(f"\n\nNote: {notice}" for notice in backbone.notices)
    if photo is not None:
        notes += (f"\n\nFirst frame: {photo.name} ({photo.original_size[0]}x{photo.original_size[1]}), field of view "
                  f"{photo.fov_degrees:.1f} degrees ({photo.fov_source}); depth from {backbone.depth_name}; no truth to score.")
    total = config.steps + 1
    rollout = None
    try:
        for rollout in iter_rollout(config, backbone=backbone, photo=photo):
            step = len(rollout) - 1
            progress((step + 1) / total, desc=f"step {step} of {config.steps}")
            yield (*_panels(rollout, step), _slider(step),
                   f"Step {step} of {config.steps} done.{notes}", rollout, None)
    except ValueError as error:
        raise gr.Error(str(error)) from None
    yield (*_panels(rollout, len(rollout) - 1), _slider(len(rollout) - 1),
           f"Done: {config.steps} steps. Drag the slider to scrub back through every step.{notes}", rollout, _exports(rollout))


def _slider(last_step: int) -> dict:
    """The step slider up to ``last_step`` and on it (a slider needs max > min, so step 0 shows 0..1)."""
    return gr.update(maximum=max(1, last_step), value=last_step, interactive=last_step > 0)


def scrub(rollout: Rollout | None, step: float) -> tuple:
    return _panels(rollout, step)


def show_bench(path: str | None = None) -> tuple:
    """The plot and the tables of a ``bench.json`` (the shipped one when ``path`` is None)."""
    path = path or SHIPPED_BENCH
    try:
        result = load_bench(path)
        return bench_figure(result), bench_markdown(result)
    except Exception as error:  # noqa: BLE001 - any malformed upload gets a message, never a traceback
        message = str(error) if isinstance(error, ValueError) else f"{Path(path).name} lacks part of a benchmark result ({error!r})"
        raise gr.Error(f"{message}; upload a bench.json written by `mirage-viz bench`") from None


def build_demo() -> gr.Blocks:
    """The app's Blocks (launch it with ``demo.launch()``)."""
    presets = ", ".join(f"{n} ({p.magnitude:g} {p.unit})" for n, p in PRESETS.items())
    with gr.Blocks(title="mirage_viz: latent spatial memory") as demo:
        gr.Markdown(
            "# mirage_viz: latent spatial memory, step by step\n"
            "A camera trajectory runs through a synthetic room with three memories side by side: **latent** "
            "(Mirage: latent cells lifted to 3D and splatted at latent resolution), **rgb** (a pixel point cloud "
            "rasterized and VAE-encoded every step) and **none**. Same models, same noise: the differences come "
            "from memory alone. Camera convention: OpenCV, poses camera-to-world."
        )
        rollout_state = gr.State(None)
        with gr.Tab("Rollout"):
            with gr.Row():
                with gr.Column(scale=1):
                    world = gr.Dropdown(list(WORLD_NAMES), value=DEFAULT_WORLD, label="world")
                    trajectory = gr.Dropdown(list(TRAJECTORY_NAMES), value="loop", label="trajectory", info=presets)
                    magnitude = gr.Number(0.0, label="magnitude (metres or degrees; 0 = the preset's default)", minimum=0)
                    steps = gr.Slider(1, MAX_STEPS, value=8, step=1, label="steps")
                    size = gr.Radio(list(SIZES), value=256, label="size (pixels)")
                    seed = gr.Number(0, label="seed", precision=0, minimum=0)
                    photo = gr.File(label="first frame from a photo (optional; replaces the world's view)",
                                    file_types=["image"], type="filepath", height=120)
                    with gr.Accordion("photo, depth and hub models", open=False):
                        fov = gr.Number(0.0, label="field of view of the photo (degrees; 0 = EXIF focal length, else 60)", minimum=0)
                        depth_model = gr.Textbox(DEFAULT_DEPTH_MODEL, label="depth model for photos (transformers id or "
                                                 "folder; 'embedded' or empty: the shipped estimator, also the fallback)")
                        depth_scale = gr.Number(3.0, label="depth scale: median depth of a photo (metres)",
                                                minimum=DEPTH_SCALE_RANGE[0], maximum=DEPTH_SCALE_RANGE[1])
                        vae = gr.Textbox("", label="VAE (hub id or folder; empty: embedded)")
                        generator = gr.Textbox("", label="inpainting generator (StableDiffusionInpaintPipeline id; empty: embedded)")
                        prompt = gr.Textbox("", label="prompt (hub generator)")
                    with gr.Row():
                        run_button = gr.Button("Run", variant="primary")
                        stop_button = gr.Button("Stop")
                    status = gr.Markdown("Press **Run**.")
                with gr.Column(scale=3):
                    step_slider = gr.Slider(0, MAX_STEPS, value=0, step=1, label="step", interactive=False)
                    frames_plot = gr.Plot(label="decoded frames")
                    with gr.Row():
                        cache_plot = gr.Plot(label="3D caches")
                        panels_plot = gr.Plot(label="conditioning")
            metrics_plot = gr.Plot(label="metrics over steps")
            table = gr.Dataframe(headers=TABLE_HEADERS, label="metrics at this step", interactive=False)
            downloads = gr.File(label="downloads: summary.json, rollout.gif, caches as PLY", file_count="multiple")

            inputs = [world, trajectory, magnitude, steps, size, seed, photo, fov, depth_model, vae, generator, prompt, depth_scale]
            panel_outputs = [cache_plot, panels_plot, frames_plot, metrics_plot, table]
            run_event = run_button.click(
                run, inputs, [*panel_outputs, step_slider, status, rollout_state, downloads], api_name="run",
                concurrency_limit=2,
            )
            stop_button.click(lambda: "Stopped.", None, status, cancels=[run_event], api_name="stop")
            step_slider.release(scrub, [rollout_state, step_slider], panel_outputs, api_name="scrub")
            gr.Examples(EXAMPLES, inputs[:7], label="examples (seconds on a CPU; the photos are CC0 / public domain)")
        with gr.Tab("Benchmark"):
            gr.Markdown(
                "Latent against RGB memory, measured side by side: read and step time per image size and VAE, "
                "cache bytes, peak memory, consistency on loops, empty cells per depth mode, fused and float16 "
                "caches. Shown: the shipped run (`assets/bench/bench.json`, a 2-core CPU machine). Measure your "
                "machine with `mirage-viz bench` (about 8 minutes; `--quick`: about one) and upload its `bench.json`."
            )
            bench_file = gr.File(label="a bench.json to show (empty: the shipped one)", file_types=[".json"], type="filepath")
            bench_plot = gr.Plot(label="benchmark")
            bench_tables = gr.Markdown()
            bench_file.change(show_bench, bench_file, [bench_plot, bench_tables], api_name="bench")
            demo.load(show_bench, None, [bench_plot, bench_tables])
    return demo
