"""Command line: ``mirage-viz rollout ...`` (see ``mirage-viz rollout --help``).

Every failure is one line on stderr and an exit status, never a traceback: 2 for bad input or a file that
cannot be read or written, 130 for Ctrl-C, 143 for SIGTERM (the staging folder removed, nothing half-written).
The heavy imports (torch, open3d, diffusers) happen inside :func:`main`; an interrupt during them ends the process
at once, as nothing is written yet. ``MIRAGE_VIZ_DEBUG=1`` shows the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported inside main: the heavy modules load under the CLI's signal handling
    from mirage_viz.rollout.config import RolloutConfig


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that every ``finally`` and clean-up handler runs."""


_signalled: list[int] = []  # signals received: a library may wrap the exception we raise (lazy imports do)
_interrupt_note: list[str] = []  # what an interrupt leaves, when it is not "nothing was written" (a sweep's runs)
_importing = [False]  # while the heavy modules import, a signal ends the process there: raised inside an import,
# CPython can mark the interrupt unhandled and end the process by SIGINT even after we caught it, and waiting for
# the imports to finish takes seconds


def _on_signal(signum: int, frame: object) -> None:
    _signalled.append(signum)
    if _importing[0]:  # nothing is written yet and nothing needs cleaning up
        status = _report("mirage-viz", KeyboardInterrupt())
        sys.stderr.flush()
        os._exit(status)
    _raise_signalled()


def _raise_signalled() -> None:
    raise Terminated() if signal.SIGTERM in _signalled else KeyboardInterrupt()


def _import_heavy_modules() -> None:
    """torch, open3d, diffusers and the modules built on them, imported at once; a signal meanwhile ends the process."""
    import importlib

    _importing[0] = True
    try:
        for module in ("rollout", "backbone", "outputs", "scenes.photo", "bench"):
            importlib.import_module(f"{__package__}.{module}")
    finally:
        _importing[0] = False


def _install_handlers() -> dict[int, object]:
    """SIGTERM and SIGINT raise (SIGINT only where it is not ignored); returns the handlers to put back."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _on_signal)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _on_signal)
    return previous


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each flag's default after its help, except ``None`` (the help says what happens without the flag)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


def _memories(text: str) -> tuple[str, ...]:
    from mirage_viz.memories import MEMORY_NAMES

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in MEMORY_NAMES]
    if not names or bad or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give distinct names from {','.join(MEMORY_NAMES)} separated by commas"
        )
    return names


def _guidance(text: str) -> float:
    from mirage_viz.models.inpaint import check_guidance_scale

    try:
        value: object = float(text)
    except ValueError:
        value = text  # not a number: the check says what is accepted
    try:
        return check_guidance_scale(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _output_folder(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("the output folder is empty; give a folder name such as mirage_out")
    return Path(text)


def build_parser() -> argparse.ArgumentParser:
    from mirage_viz.rollout.config import DEPTH_SOURCES, MAX_SEED, MEMORY_SETTINGS, RolloutConfig, option_groups
    from mirage_viz.scenes.trajectories import MAX_STEPS
    from mirage_viz.memories import MEMORY_NAMES
    from mirage_viz.models.hub_depth import DEFAULT_DEPTH_MODEL
    from mirage_viz.scenes.camera_files import CAMERA_FORMATS
    from mirage_viz.scenes.photo import DEFAULT_FOV_DEGREES
    from mirage_viz.scenes.trajectories import PRESETS
    from mirage_viz.scenes.worlds import DEFAULT_WORLD, WORLD_NAMES

    defaults = RolloutConfig()
    parser = argparse.ArgumentParser(
        prog="mirage-viz",
        description="See, teach and measure latent spatial memory for video world models (Mirage).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    presets = "; ".join(f"{n}: {p.description} (default {p.magnitude:g} {p.unit})" for n, p in PRESETS.items())
    rollout = commands.add_parser(
        "rollout",
        help="run a camera trajectory with the latent, RGB and no memory side by side",
        description="Run a camera trajectory through an embedded synthetic world with several spatial memories "
        "side by side, and write DIR: summary.json, the frames as PNG, rollout.mp4 (the labelled step view), both "
        "caches as PLY, trajectory.json and report.html (opens offline). Runs offline on the embedded models.",
        formatter_class=_HelpFormatter,
    )
    rollout.add_argument("--world", default=DEFAULT_WORLD, help=f"embedded synthetic world: {', '.join(WORLD_NAMES)}")
    rollout.add_argument("--world-seed", type=int, default=defaults.world_seed, help=f"seed of the procedural world (0 to {MAX_SEED})")
    rollout.add_argument("--trajectory", default=defaults.trajectory,
                         help=f"camera preset, optionally followed by +back_to_start (the preset, then back to the start pose "
                         f"in the last half of the steps). {presets}")
    rollout.add_argument("--trajectory-file", type=Path, default=None,
                         help=f"a camera path to run instead of --trajectory: {_formats_help()}; the format is detected "
                         "(or give --trajectory-format). Its intrinsics are used, scaled to --size, unless --fov is given")
    rollout.add_argument("--trajectory-format", choices=CAMERA_FORMATS, default=None, help="the format of --trajectory-file")
    rollout.add_argument("--steps", type=int, default=None,
                         help=f"generated steps after the first frame: 1 to {MAX_STEPS}, and steps x size^2 at most 400 x 256^2 "
                         f"(default {defaults.steps}; with --trajectory-file: the file's poses, or that many picked evenly along "
                         "them, keeping the first and the last)")
    rollout.add_argument("--magnitude", type=float, default=None,
                         help="total motion of the preset (metres, degrees or a zoom factor; default: the preset's)")
    rollout.add_argument("--size", type=int, default=defaults.size,
                         help="image size in pixels (square; a multiple of 32). On the CPU a size whose step is "
                         "estimated at over a minute or over the memory available is refused (about 1850 px on 2 cores)")
    rollout.add_argument("--fov", type=float, default=None,
                         help=f"horizontal field of view in degrees (default: a --trajectory-file's own intrinsics, else "
                         f"{DEFAULT_FOV_DEGREES:g}; with --image, the photo's EXIF 35 mm focal length when it has one)")
    rollout.add_argument("--image", type=Path, default=None,
                         help="a photo as the first frame (PNG, JPEG, WebP, TIFF, BMP; EXIF orientation applied, resized and "
                         "centre-cropped to --size); depth is then estimated and --world is not used")
    rollout.add_argument("--depth-model", default=None,
                         help=f"transformers depth-estimation model (hub id or folder) used when depth is estimated (default: "
                         f"{DEFAULT_DEPTH_MODEL} for --image, else the embedded estimator); 'embedded' for the shipped "
                         "estimator, which is also the fallback when the model cannot be loaded")
    rollout.add_argument("--sequence", type=Path, default=None,
                         help="a posed image sequence as the world: a nerfstudio transforms.json with its frames, a COLMAP "
                         "text model with its images folder, or a RealEstate10K file clip.txt with its frames in "
                         "clip/<timestamp>.png. Its first image is the first frame, its cameras the path (--steps picks "
                         "evenly), its images the truth each step is scored against; depth is estimated")
    rollout.add_argument("--depth-scale", type=float, default=None,
                         help="median depth in metres: given to relative depth predictions (default 3); with --sequence, "
                         "given to the first frame's estimated depth when the file has no sparse points to set it")
    rollout.add_argument("--vae", default=None, help="hub id or folder of an AutoencoderKL / AutoencoderTiny, or embedded-sharp: the embedded VAE "
                         "with a decoder trained to draw edges (default: embedded)")
    rollout.add_argument("--generator", default=None,
                         help="hub id or folder of a StableDiffusionInpaintPipeline conditioned on the warped latent (default: embedded)")
    rollout.add_argument("--prompt", default="", help="text prompt of a hub generator")
    rollout.add_argument("--guidance", type=_guidance, default=5.0,
                         help="classifier-free guidance of a hub generator, 0 to 100 (1 or less: off)")
    rollout.add_argument("--device", default="auto", help="auto (CUDA with float16 when present, else CPU), cpu or cuda[:N]")
    rollout.add_argument("--cpu-offload", action="store_true", help="offload a hub generator's parts to the CPU between uses (CUDA)")
    rollout.add_argument("--seed", type=int, default=defaults.seed,
                         help=f"generation seed (the same noise for every memory; 0 to {MAX_SEED})")
    rollout.add_argument("--memories", type=_memories, default=",".join(MEMORY_NAMES), help="comma-separated memories to compare")
    rollout.add_argument("--depth", choices=DEPTH_SOURCES, default=defaults.depth_source,
                         help="depth used to lift generated frames: the world's true depth or the embedded estimator")
    rollout.add_argument("--depth-errors", default="", metavar="SPEC",
                         help="errors put on the true depth, as monocular estimators make them: noise=SIGMA (smooth "
                         "multiplicative, std of log depth; grain=PX its scale), bias=FACTOR, smear=PX (edges), "
                         "holes=FRACTION, joined with + (noise=0.1+smear=2); each step records the depth error measured")
    rollout.add_argument("--memory-setting", choices=tuple(MEMORY_SETTINGS), default="paper", metavar="NAME",
                         help="a named memory setting, which sets the options below for you: "
                         + "; ".join(f"'{s.name}': {s.sentence.rstrip('.')}" for s in MEMORY_SETTINGS.values())
                         + " (figures: docs/memory-settings.md)")
    rollout.add_argument("--out", type=_output_folder, default=Path("mirage_out"), help="output directory (must be new or empty unless --overwrite)")
    rollout.add_argument("--overwrite", action="store_true",
                         help="replace an output directory mirage_viz wrote earlier (never one holding other files)")
    rollout.add_argument("--no-video", action="store_true", help="skip rollout.mp4")
    rollout.add_argument("--no-ply", action="store_true", help="skip the caches as PLY")
    rollout.add_argument("--gif", action="store_true", help="also write rollout.gif (the decoded frames side by side)")
    rollout.add_argument("--quiet", action="store_true", help="no progress bar")
    for group, kind in option_groups().items():
        _add_option_flags(rollout, group, kind)
    _add_cameras_command(commands)
    _add_sweep_command(commands)
    bench = commands.add_parser(
        "bench",
        help="measure latent vs RGB memory side by side: speed, bytes, peak memory, consistency",
        description="Run the latent and RGB memories side by side on the same trajectories and write DIR/bench.json, "
        "DIR/bench.md (tables) and DIR/bench.html (plots). The full run takes roughly 25 minutes on 2 CPU cores (the "
        "memory settings over 12- and 48-step loops and the SD-layout VAE at 512x512 take most of it); --quick about 150 "
        "seconds. Offline.",
        formatter_class=_HelpFormatter,
    )
    bench.add_argument("--quick", action="store_true",
                       help="sizes 128 and 256, the SD-layout VAE at 128, 12-step speed and fidelity loops in one world "
                       "(the cache variants keep their 48-step loop, the read their 100-step cache)")
    bench.add_argument("--sizes", type=_sizes, default=None, help="comma-separated image sizes, multiples of 32 (default 128,256,512; quick 128,256)")
    bench.add_argument("--vaes", type=_vaes, default=None, help="comma-separated VAEs to time: embedded, sd (the SD layout, random weights)")
    bench.add_argument("--steps", type=int, default=None, help="loop steps of the speed runs (default 48; quick 12)")
    bench.add_argument("--repeats", type=int, default=None, help="timed reads per memory (default 5)")
    bench.add_argument("--out", type=_output_folder, default=Path("mirage_bench"), help="output directory (must be new or empty unless --overwrite)")
    bench.add_argument("--overwrite", action="store_true",
                       help="replace an output directory mirage_viz wrote earlier (never one holding other files)")
    bench.add_argument("--quiet", action="store_true", help="no progress lines")
    bench.add_argument("--update-truth-free", type=Path, default=None, metavar="BENCH_JSON",
                       help="re-run only the truth-free scores' part (scored against PSNR on held-out worlds), with the "
                       "config of an existing bench.json, into it and its bench.md; every other figure kept as measured")
    return parser


def _add_option_flags(parser: argparse.ArgumentParser, group: str, kind: type) -> None:
    """One flag per option of ``kind`` (an option group), built from its fields: --name-with-dashes, its type or
    choices, its default and its help text; a bool option is --name / --no-name."""
    from mirage_viz.options import option_specs

    section = parser.add_argument_group(f"{group} options", (kind.__doc__ or "").split(" :")[0])  # the plain sentences
    for spec in option_specs(kind):
        if spec.kind is bool:
            section.add_argument(spec.flag, action=argparse.BooleanOptionalAction, default=spec.default, help=spec.help)
        else:
            section.add_argument(spec.flag, type=spec.kind, choices=spec.choices, default=spec.default,
                                 metavar=spec.metavar, help=spec.help)


def _axis(kind: type) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        values = [v.strip() for v in text.split(",") if v.strip()]
        try:
            parsed = tuple(kind(v) for v in values)
        except ValueError:
            parsed = ()
        if not parsed:
            what = "integers" if kind is int else "values"
            raise argparse.ArgumentTypeError(f"{text!r}: give one or more {what} separated by commas")
        return parsed
    return parse


def _add_sweep_command(commands: argparse._SubParsersAction) -> None:
    from mirage_viz.rollout.config import MEMORY_SETTINGS
    from mirage_viz.sweep import DEFAULT_MAX_RUNS, ENGINES

    sweep = commands.add_parser(
        "sweep", help="many rollouts over a grid of settings, in one table (Parquet) with a summary and plots",
        description="Run a rollout of the three memories for every combination of the axes (a grid file and/or the "
        "flags; a flag replaces the file's axis), write each run to OUT/runs/ as it finishes, then OUT/results.parquet "
        "(one row per run x memory x step), OUT/summary.parquet and summary.csv (means and 95%% intervals over worlds, "
        "world seeds and seeds) and OUT/figures.html. Rerunning the same command resumes: finished runs are skipped.",
        formatter_class=_HelpFormatter)
    sweep.add_argument("--grid", type=Path, default=None,
                       help='a JSON file of axes, such as {"worlds": ["room", "studio"], "depths": ["truth", "noise=0.1"]}')
    for flag, kind, default, what in (
            ("--worlds", str, "room", "synthetic worlds (room, studio, gallery)"),
            ("--world-seeds", int, "0", "seeds of the worlds' layouts"),
            ("--trajectories", str, "loop", "paths: presets, with +back_to_start for a revisit"),
            ("--steps", int, "12", "generated steps per rollout"),
            ("--sizes", int, "128", "image sizes (multiples of 32)"),
            ("--depths", str, "truth", "depth qualities: truth, estimated, or errors on the truth such as noise=0.05, "
             "bias=1.1, smear=2, holes=0.05 (join with +)"),
            ("--depth-modes", str, "bilinear", "depth downsampling to the latent grid"),
            ("--seeds", int, "0", "noise seeds"),
            ("--memory-settings", str, "paper", f"memory settings: {', '.join(MEMORY_SETTINGS)} (names hold spaces: "
             "quote the list, as in --memory-settings 'paper,keep what memory holds')"),
            ("--sequences", str, "none", "posed image sequences' camera files (as rollout --sequence), each run for "
             "every steps, size, depth mode, seed and memory setting with estimated depth; without --worlds, no "
             "procedural world runs")):
        sweep.add_argument(flag, type=_axis(kind), default=None, help=f"comma-separated {what} (default {default})")
    sweep.add_argument("--engine", choices=ENGINES, default="local",
                       help="local: this machine (one process, or --workers processes); ray: Ray tasks on a local Ray or "
                       "the cluster at --address")
    sweep.add_argument("--workers", type=int, default=1, help="parallel runs (processes locally; CPUs of a local Ray)")
    sweep.add_argument("--address", default=None, help="a Ray cluster's HOST:PORT (with --engine ray)")
    sweep.add_argument("--max-runs", type=int, default=DEFAULT_MAX_RUNS, help="refuse a grid with more runs than this")
    sweep.add_argument("--out", type=_output_folder, default=Path("mirage_sweep"),
                       help="the results folder: new, empty, or a sweep's folder to resume")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")


def _sweep(args: argparse.Namespace) -> int:
    import time
    from dataclasses import replace

    from tqdm import tqdm

    from mirage_viz.sweep import SweepGrid, load_grid, run_sweep

    grid = load_grid(args.grid) if args.grid is not None else SweepGrid()
    flags = {"worlds": args.worlds, "world_seeds": args.world_seeds, "trajectories": args.trajectories,
             "steps": args.steps, "sizes": args.sizes, "depths": args.depths, "depth_modes": args.depth_modes,
             "seeds": args.seeds, "memory_settings": args.memory_settings, "sequences": args.sequences}
    if args.sequences is not None and args.worlds is None and args.grid is None:
        flags["worlds"] = ()  # the sequences alone
    grid = replace(grid, **{axis: values for axis, values in flags.items() if values is not None})
    start = time.perf_counter()
    bar = tqdm(desc="sweep", unit="run", disable=args.quiet, file=sys.stderr)

    def progress(done: int, total: int, spec) -> None:
        if done and not _interrupt_note:  # from the first finished run on, an interrupt leaves runs to resume
            _interrupt_note.append(f"the finished runs are kept in {args.out}: run the same command to resume")
        bar.total = total
        bar.n = done
        bar.set_postfix_str(spec.run_id if spec is not None else f"{done} finished before")
        bar.refresh()

    try:
        result = run_sweep(grid, args.out, args.engine, args.workers, args.address, args.max_runs, progress)
    finally:
        bar.close()
    summary = result.summary
    pairs = summary[summary["memory"] == "latent - rgb"]
    for row in pairs.itertuples():
        if row.revisit_psnr == row.revisit_psnr:  # not NaN: a returning path
            setting = "" if row.memory_setting == "paper" else f", {row.memory_setting}"
            print(f"{row.trajectory}, depth {row.depth}{setting}: return frame latent - rgb {row.revisit_psnr:+.2f} dB "
                  f"(95% interval +/- {row.revisit_psnr_ci:.2f}, {row.runs} runs)")
    print(f"wrote {result.path}: {result.ran} runs ran, {result.skipped} were finished before; results.parquet "
          f"({result.table.num_rows:,} rows), summary.csv, figures.html in {time.perf_counter() - start:.0f} s")
    return 0


def _formats_help() -> str:
    return ("mirage_viz JSON, nerfstudio transforms.json (OpenGL camera-to-world), a COLMAP text model (the folder with "
            "cameras.txt and images.txt: world-to-camera quaternions; pinhole models), a RealEstate10K camera file, or "
            "open3d's PinholeCameraTrajectory JSON")


def _image_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        size = (0, 0)
    if not all(0 < side <= 100_000 for side in size):
        raise argparse.ArgumentTypeError(f"{text!r}: give the image size as WIDTHxHEIGHT in pixels, such as 640x360")
    return size


def _add_cameras_command(commands: argparse._SubParsersAction) -> None:
    from mirage_viz.scenes.camera_files import CAMERA_FORMATS

    cameras = commands.add_parser("cameras", help="camera paths in other tools' formats",
                                  description="Camera paths in the formats other tools use.")
    actions = cameras.add_subparsers(dest="action", metavar="ACTION")
    convert = actions.add_parser(
        "convert", help="convert a camera path from one format to another",
        description=f"Read IN ({_formats_help()}) and write OUT in the format --to names. Poses are converted between "
        "conventions explicitly (mirage_viz is OpenCV camera-to-world); intrinsics are carried over (a path without "
        "them gets --fov at --image-size). For --to colmap, OUT is a folder.",
        formatter_class=_HelpFormatter)
    convert.add_argument("input", type=Path, metavar="IN", help="the camera file (or COLMAP folder) to read")
    convert.add_argument("output", type=_output_folder, metavar="OUT", help="the file (or COLMAP folder) to write")
    convert.add_argument("--to", choices=CAMERA_FORMATS, required=True, help="the format of OUT")
    convert.add_argument("--from", dest="source_format", choices=CAMERA_FORMATS, default=None,
                         help="the format of IN (default: detected)")
    convert.add_argument("--image-size", type=_image_size, default=None,
                         help="WIDTHxHEIGHT of the images the cameras see: a RealEstate10K file's (it has none; default "
                         "640x360), or the size to scale the intrinsics to (default: the file's own; 256x256 for a path "
                         "without intrinsics)")
    convert.add_argument("--fov", type=float, default=None,
                         help="horizontal field of view in degrees for a path without intrinsics (default 60), or to "
                         "replace the file's")
    convert.add_argument("--steps", type=int, default=None,
                         help="keep this many steps after the first pose, picked evenly, the first and last kept")
    convert.add_argument("--overwrite", action="store_true",
                         help="replace OUT when it is a camera file of the --to format, or for colmap a folder "
                         "mirage_viz wrote (never one holding other files)")


def _cameras(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from mirage_viz.geometry.cameras import Intrinsics, check_fov_degrees
    from mirage_viz.outputs.folder import atomic_output_dir, check_output_dir
    from mirage_viz.scenes.camera_files import check_camera_output, detect_camera_format, read_cameras, write_cameras
    from mirage_viz.scenes.camera_files.colmap import write_colmap_files
    from mirage_viz.scenes.photo import DEFAULT_FOV_DEGREES

    if args.action is None:
        parser.parse_args(["cameras", "--help"])
    if args.to == "colmap":  # a folder: staged, replacing only a folder mirage_viz wrote, as rollout --out
        check_output_dir(args.output, args.overwrite)
        if args.output.suffix == ".txt":
            check_camera_output(args.output, "colmap")  # says a COLMAP model is a folder
    else:
        check_camera_output(args.output, args.to, args.overwrite)  # before anything is read
    source_format = args.source_format or detect_camera_format(args.input)
    image_size = args.image_size if source_format == "realestate10k" else None  # a RealEstate10K file has none
    trajectory = read_cameras(args.input, source_format, image_size=image_size)
    if args.steps is not None and args.steps != trajectory.steps:
        trajectory = trajectory.subsample(args.steps)
    own = trajectory.intrinsics is not None and args.fov is None
    width, height = args.image_size or (
        (trajectory.intrinsics[0].width, trajectory.intrinsics[0].height) if own else (256, 256))
    fov = DEFAULT_FOV_DEGREES if args.fov is None else check_fov_degrees(args.fov)
    cameras = trajectory.cameras(Intrinsics.from_fov(width, height, fov), own_intrinsics=own)
    if args.to == "colmap":
        with atomic_output_dir(args.output, args.overwrite, written_by="mirage-viz cameras convert") as staging:
            names = [path.name for path in write_colmap_files(cameras, staging)]
        written = [args.output / name for name in names]
    else:
        written = write_cameras(cameras, args.output, args.to, name=trajectory.name, overwrite=args.overwrite)
    print(f"wrote {', '.join(str(path) for path in written)}: {len(cameras)} cameras ({trajectory.steps} steps), "
          f"{args.to} format")
    return 0


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        sizes = ()
    if not sizes or any(s <= 0 or s % 32 or s > 2048 for s in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: give sizes that are positive multiples of 32 up to 2048, separated by commas")
    return sizes


def _vaes(text: str) -> tuple[str, ...]:
    from mirage_viz.bench.common import VAE_KINDS

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names or any(n not in VAE_KINDS for n in names):
        raise argparse.ArgumentTypeError(f"{text!r}: give VAEs from {','.join(VAE_KINDS)} separated by commas")
    return names


def _bench(args: argparse.Namespace) -> int:
    import time
    from dataclasses import replace

    from mirage_viz.bench import BenchConfig, run_bench, write_bench
    from mirage_viz.outputs.folder import check_output_dir

    if args.update_truth_free is not None:
        return _update_truth_free(args.update_truth_free, args.quiet)
    config = BenchConfig.quick_preset() if args.quick else BenchConfig()
    if args.sizes is not None:
        # every VAE at the sizes given; quick times the slow SD layout at the smallest only
        config = replace(config, sizes=args.sizes, sd_sizes=args.sizes[:1] if args.quick else None, peak_memory_sizes=None)
    if args.vaes is not None:
        config = replace(config, vaes=args.vaes)
    if args.steps is not None:
        config = replace(config, speed_steps=args.steps)
    if args.repeats is not None:
        config = replace(config, read_repeats=args.repeats)
    config.validate()
    check_output_dir(args.out, args.overwrite)  # before anything runs
    start = time.perf_counter()

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"[{time.perf_counter() - start:6.1f} s] {message}", file=sys.stderr, flush=True)

    result = run_bench(config, progress=progress)
    out = write_bench(result, args.out, overwrite=args.overwrite)
    for target in result["targets"]:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        value = "-" if target["value"] is None else f"{target['value']:,.2f}"
        print(f"{target['target']}: {value} (bar {target['bar']:,.2f}) {verdict}")
    print(f"wrote {out / 'bench.json'}, {out / 'bench.md'} and {out / 'bench.html'} in {time.perf_counter() - start:.0f} s")
    return 0


def _update_truth_free(path: Path, quiet: bool) -> int:
    """``bench --update-truth-free``: the truth-free part re-run into ``path`` (a bench.json) and its bench.md."""
    import json

    from mirage_viz.bench import bench_markdown, load_bench
    from mirage_viz.bench.run import with_truth_free
    from mirage_viz.scenes.camera_files.text import write_text_atomically

    say = (lambda message: None) if quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    result = with_truth_free(load_bench(path), say)
    write_text_atomically(path, json.dumps(result, indent=1))
    write_text_atomically(path.with_name("bench.md"), bench_markdown(result))
    print(f"wrote the truth-free part into {path} and {path.with_name('bench.md')}")
    return 0


def _rollout(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from mirage_viz.backbone import check_decoder_sharpness_models
    from mirage_viz.rollout.config import RolloutConfig, plan_rollout
    from mirage_viz.rollout.engine import iter_rollout
    from mirage_viz.outputs.folder import check_output_dir
    from mirage_viz.outputs.writer import OutputParts, write_rollout
    from mirage_viz.scenes.photo import load_photo
    from mirage_viz.scenes.camera_files import read_cameras
    from mirage_viz.scenes.sequence import load_sequence

    config = _config(args)
    config = _with_memory_setting(config, args.memory_setting)
    check_output_dir(args.out, args.overwrite)  # before any model runs
    trajectory, sequence = None, None
    if args.sequence is not None and (args.image is not None or args.trajectory_file is not None):
        raise ValueError("--sequence brings its first frame and its cameras; accepted: --sequence alone, or --image "
                         "and --trajectory-file without it")
    if args.sequence is not None:
        sequence = load_sequence(args.sequence, args.size, args.steps, args.trajectory_format, args.depth_scale)
    if args.trajectory_file is not None:
        trajectory = read_cameras(args.trajectory_file, args.trajectory_format)
        if args.steps is not None and args.steps != trajectory.steps:
            trajectory = trajectory.subsample(args.steps)
    photo = load_photo(args.image, args.size, args.fov) if args.image is not None else None
    # every setting and camera checked before models load; on the CPU, the size against this machine too
    plan = plan_rollout(config, trajectory=trajectory, photo=photo, device=args.device, sequence=sequence)
    check_decoder_sharpness_models(config.decoder.decoder_sharpness, args.vae, args.generator)
    backbone = _backbone(args, photo=photo is not None or sequence is not None)
    for notice in backbone.notices:
        print(f"mirage-viz rollout: note: {notice}", file=sys.stderr)
    first = photo if sequence is None else sequence.first_photo
    if first is not None:
        print(f"mirage-viz rollout: {first.name} ({first.original_size[0]}x{first.original_size[1]}) as the first frame, "
              f"field of view {plan.setup.fov_degrees:.1f} degrees ({plan.setup.fov_source})", file=sys.stderr)
    with tqdm(desc="rollout", unit="step", disable=args.quiet, file=sys.stderr) as bar:
        for rollout in iter_rollout(config, backbone=backbone, trajectory=trajectory, photo=photo, sequence=sequence):
            bar.total = len(rollout.cameras)
            bar.update()
    parts = OutputParts(video=not args.no_video, ply=not args.no_ply, gif=args.gif)
    if not args.quiet:
        print("mirage-viz rollout: writing the frames, the report" + ", the video" * parts.video + ", the caches" * parts.ply
              + ", the GIF" * parts.gif + "...", file=sys.stderr, flush=True)
    out = write_rollout(rollout, args.out, overwrite=args.overwrite, parts=parts)
    last = {name: records[-1] for name, records in rollout.records.items()}
    for name, record in last.items():
        scored = [r.psnr for r in rollout.records[name][1:] if r.psnr is not None]
        quality = f"mean PSNR {sum(scored) / len(scored):6.2f} dB over generated steps" if scored else "no truth to score against"
        print(f"{name:>6}: {quality}, cache {record.cache_points} points / {record.cache_bytes} bytes")
    files = sorted(path.name for path in out.iterdir() if path.is_file() and not path.name.startswith("."))
    print(f"wrote {out}: {', '.join(files)}, frames/ and cameras/ (the path for nerfstudio, COLMAP, RealEstate10K and "
          f"open3d); open {out / 'report.html'} in a browser")
    return 0


def _config(args: argparse.Namespace) -> RolloutConfig:
    """The rollout's config from its flags: the scene's, then each option group's from the flags built from its fields,
    under ``--memory-setting`` (:func:`_with_memory_setting`)."""
    from mirage_viz.options import option_specs
    from mirage_viz.rollout.config import RolloutConfig, option_groups

    groups = {group: kind(**{spec.name: getattr(args, spec.name) for spec in option_specs(kind)})
              for group, kind in option_groups().items()}
    config = RolloutConfig(
        world=args.world, world_seed=args.world_seed, trajectory=args.trajectory,
        steps=RolloutConfig().steps if args.steps is None else args.steps, magnitude=args.magnitude, size=args.size,
        fov_degrees=args.fov, seed=args.seed, memories=args.memories, depth_source=args.depth,
        depth_errors=args.depth_errors, **groups)
    return _with_memory_setting(config, args.memory_setting)


def _with_memory_setting(config: RolloutConfig, name: str) -> RolloutConfig:
    """``config`` under the memory setting ``name``; an option also given as a flag with another value is refused."""
    from mirage_viz.rollout.config import MEMORY_SETTINGS, RolloutConfig

    options, held, defaults = MEMORY_SETTINGS[name].options, config.options(), RolloutConfig().options()
    clashes = [f"{key} {held[key]!r}" for key, value in options.items() if held[key] != defaults[key] and held[key] != value]
    if clashes:
        raise ValueError(f"--memory-setting '{name}' sets {', '.join(f'{k} {v!r}' for k, v in options.items())}, but the "
                         f"flags ask for {', '.join(clashes)}; accepted: the setting alone, or the flags without it")
    return config.with_memory_setting(name)


def _backbone(args: argparse.Namespace, photo: bool):
    """The embedded backbone, or one with hub models when any is asked for (embedded fallbacks noted); the depth
    model as :func:`mirage_viz.backbone.depth_model_for` decides."""
    from mirage_viz.backbone import build_backbone, depth_model_for

    return build_backbone(vae=args.vae, generator=args.generator, depth=depth_model_for(args.depth_model, photo, args.depth),
                          prompt=args.prompt, device=args.device, cpu_offload=args.cpu_offload,
                          depth_scale=3.0 if args.depth_scale is None else args.depth_scale, guidance_scale=args.guidance)


def main(argv: list[str] | None = None) -> int:
    command = "mirage-viz"
    _signalled.clear()
    _interrupt_note.clear()
    previous = _install_handlers()
    try:
        _import_heavy_modules()
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        command = f"mirage-viz {args.command}"
        if args.command == "rollout":
            return _rollout(args)
        if args.command == "cameras":
            return _cameras(args, parser)
        if args.command == "sweep":
            return _sweep(args)
        return _bench(args)
    except BaseException as error:  # noqa: BLE001 - every failure is a message and an exit status
        if isinstance(error, SystemExit):  # argparse: --help, or a usage error already printed
            raise
        return _report(command, error)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if argv is None:  # the program ends now, and its final collections would walk every object of torch,
            gc.freeze()  # diffusers and Ray (1.2 s of a rollout's 1.4 s exit on 2 cores); frozen, they are skipped


def _report(command: str, error: BaseException) -> int:
    """Print one line for ``error`` and return the exit status."""
    if _signalled or isinstance(error, KeyboardInterrupt):  # however a library wrapped it
        terminated = signal.SIGTERM in _signalled or isinstance(error, Terminated)
        note = _interrupt_note[-1] if _interrupt_note else "nothing was written"
        print(f"{command}: {'terminated' if terminated else 'interrupted'}; {note}", file=sys.stderr)
        return 143 if terminated else 130
    if isinstance(error, ValueError):  # bad input: the message says what was wrong and what is accepted
        print(f"{command}: error: {error}", file=sys.stderr)
    elif isinstance(error, OSError):  # a file that cannot be read or written (disk full, permissions, ...)
        where = f" {error.filename}:" if error.filename else ""
        print(f"{command}: error:{where} {error.strerror or error}; nothing was written", file=sys.stderr)
    elif isinstance(error, MemoryError):
        print(f"{command}: error: out of memory; try fewer --steps or a smaller --size", file=sys.stderr)
    else:
        if os.environ.get("MIRAGE_VIZ_DEBUG"):
            raise error
        print(f"{command}: error: unexpected {type(error).__name__}: {error} (MIRAGE_VIZ_DEBUG=1 shows where; "
              "please report it)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
