"""One writer for everything a rollout leaves on disk, used by ``mirage-viz rollout --out`` and the app's downloads.

A rollout's output folder holds:

- ``summary.json``: the configuration, notices and every step's figures per memory;
- ``frames/<memory>/step_###.png`` and ``frames/truth/`` (a photo has a truth at step 0 only);
- ``rollout.mp4``: the labelled step view at each step, H.264 (:func:`mirage_viz.outputs.exports.export_video`);
- ``rollout.gif`` when asked (the decoded frames side by side);
- ``<memory>_cache_step###.ply``: the latent and RGB caches at the last step (latent features as attributes);
- ``trajectory.json``: the cameras that ran, OpenCV camera-to-world with every camera's intrinsics
  (``mirage-viz rollout --trajectory-file`` replays it), and ``cameras/``: the same cameras for other tools
  (``transforms.json`` for nerfstudio, ``colmap/`` as a COLMAP text model, ``realestate10k.txt``, ``open3d.json``),
  when at least one step was generated;
- ``report.html``: the step views, the caches in 3D and the charts on one page that opens offline.

The folder is assembled in a staging folder beside its target and moved into place at the end
(:func:`mirage_viz.outputs.folder.atomic_output_dir`): a failing writer, a full disk, Ctrl-C or SIGTERM leave
the target as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from mirage_viz.rollout.records import Rollout
from mirage_viz.outputs.exports import export_animation, export_cache_ply, export_video
from mirage_viz.viz.figures import rollout_pca
from mirage_viz.image import to_uint8_image
from mirage_viz.outputs.folder import atomic_output_dir
from mirage_viz.viz.report import rollout_report_html
from mirage_viz.viz.step_view import step_view
from mirage_viz.geometry.cameras import Camera
from mirage_viz.scenes.camera_files import write_cameras

__all__ = ["OutputParts", "write_outputs", "write_rollout"]


@dataclass(frozen=True)
class OutputParts:
    """Which optional parts to write (``summary.json`` and ``trajectory.json`` are always written)."""

    frames: bool = True  # PNG frames per memory and the truth
    video: bool = True  # rollout.mp4
    gif: bool = False  # rollout.gif
    ply: bool = True  # the caches at the last step
    report: bool = True  # report.html


PNG_LEVEL = 1  # zlib level of the frames: a quarter of the time of Pillow's default (6) for files 27% larger
# (python experiments/writer_settings.py)


def _write_frames(rollout: Rollout, folder: Path) -> list[Path]:
    written = []
    for name, records in rollout.records.items():
        (folder / "frames" / name).mkdir(parents=True)
        for record in records:
            path = folder / "frames" / name / f"step_{record.step:03d}.png"
            Image.fromarray(to_uint8_image(record.frame)).save(path, compress_level=PNG_LEVEL)
            written.append(path)
    first = next(iter(rollout.records.values()))
    truths = [r for r in first if r.true_frame is not None]
    if truths:
        (folder / "frames" / "truth").mkdir(parents=True)
        for record in truths:
            path = folder / "frames" / "truth" / f"step_{record.step:03d}.png"
            Image.fromarray(to_uint8_image(record.true_frame)).save(path, compress_level=PNG_LEVEL)
            written.append(path)
    return written


def write_outputs(rollout: Rollout, folder: str | Path, parts: OutputParts = OutputParts()) -> list[Path]:
    """Write the rollout's files (see the module's docstring) into ``folder``, an existing empty folder of the
    caller's, and return them, main files first. Use :func:`write_rollout` for a folder that appears whole."""
    if len(rollout) == 0:
        raise ValueError("the rollout has no steps yet; nothing to write")
    folder = Path(folder)
    last = len(rollout) - 1
    basis = rollout_pca(rollout)
    views = [step_view(rollout, step, basis) for step in range(last + 1)] if parts.video or parts.report else None
    written = [folder / "summary.json"]
    written[0].write_text(json.dumps(rollout.summary(), indent=1))
    if parts.video:
        written.append(export_video(rollout, folder / "rollout.mp4", basis=basis, views=views))
    if parts.report:
        path = folder / "report.html"
        path.write_text(rollout_report_html(rollout, basis, views=views), encoding="utf-8")
        written.append(path)
    if parts.gif:
        written.append(export_animation(rollout, folder / "rollout.gif"))
    if parts.ply:
        for name in [*rollout.memories_holding("latent"), *rollout.memories_holding("color")]:
            if rollout.cache_at(name, last)[0].shape[0]:
                written.append(export_cache_ply(rollout, name, last, folder / f"{name}_cache_step{last:03d}.ply", basis))
    if last >= 1:  # a trajectory has a start and at least one step
        written.extend(_write_cameras(rollout.cameras[: last + 1], rollout.setup.trajectory, folder))
    if parts.frames:
        written.extend(_write_frames(rollout, folder))
    return written


def write_rollout(rollout: Rollout, out_dir: str | Path, overwrite: bool = False,
                  parts: OutputParts = OutputParts()) -> Path:
    """Write the rollout's output folder ``out_dir`` all at once (see the module's docstring) and return it.

    ``out_dir`` must be new or empty; ``overwrite`` replaces only a folder mirage_viz wrote
    (:mod:`mirage_viz.outputs.folder`). Nothing is left behind when a writer fails.
    """
    with atomic_output_dir(out_dir, overwrite, written_by="mirage-viz rollout") as staging:
        write_outputs(rollout, staging, parts)
    return Path(out_dir)


CAMERA_FILES = {"nerfstudio": "cameras/transforms.json", "colmap": "cameras/colmap", "realestate10k": "cameras/realestate10k.txt",
                "open3d": "cameras/open3d.json"}  # beside trajectory.json (mirage_viz's own format)


def _write_cameras(cameras: list[Camera], name: str, folder: Path) -> list[Path]:
    """The cameras that ran in every format: ``trajectory.json`` and ``cameras/``."""
    written = write_cameras(cameras, folder / "trajectory.json", "mirage_viz", name=name)
    (folder / "cameras").mkdir()
    for camera_format, relative in CAMERA_FILES.items():
        written.extend(write_cameras(cameras, folder / relative, camera_format, name=name))
    return written
