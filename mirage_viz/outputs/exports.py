"""Exports of a rollout, one file each: caches as PLY (open3d), the rollout as an H.264 MP4 of the labelled
step view (PyAV) or as a side-by-side GIF. :mod:`mirage_viz.outputs` writes them all into one folder.

Every file is written beside its target under a temporary name and renamed into place, so a
failure never leaves a half-written file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import open3d as o3d
import torch
from PIL import Image

from mirage_viz.rollout.records import Rollout
from mirage_viz.image import to_uint8_image
from mirage_viz.viz.pca import PCABasis

if TYPE_CHECKING:
    from mirage_viz.viz.step_view import StepView

__all__ = ["export_cache_ply", "read_cache_ply", "export_animation", "export_video", "VIDEO_FPS"]

VIDEO_FPS = 2  # steps per second of rollout.mp4: each step stays half a second, long enough to read its labels


def _write_atomically(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        os.chmod(temporary, 0o644)  # an ordinary file, as open() would make it (mkstemp makes it private)
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def export_cache_ply(rollout: Rollout, memory: str, step: int, path: str | Path, basis: PCABasis | None = None) -> Path:
    """Write ``memory``'s cache after ``step`` as a PLY point cloud.

    Latent caches keep every feature channel as a per-point attribute ``latent_0`` .. ``latent_{C-1}``
    and carry PCA colours (``basis``, by default the rollout's) as colours; RGB caches carry their colours.
    """
    if memory not in rollout.caches:
        raise ValueError(f"no cache for memory {memory!r}; accepted: {', '.join(rollout.caches)}")
    if not 0 <= step < len(rollout.cameras):
        raise ValueError(f"step must be in [0, {len(rollout.cameras) - 1}], got {step}")
    if Path(path).suffix.lower() != ".ply":
        raise ValueError(f"PLY export needs a path ending in .ply, got {path}")
    points, features = rollout.cache_at(memory, step)
    if points.shape[0] == 0:
        raise ValueError(f"the {memory!r} memory holds no points at step {step}; nothing to export")
    cloud = o3d.t.geometry.PointCloud()
    cloud.point.positions = o3d.core.Tensor(points.float().numpy())
    if rollout.memory_info[memory].features == "latent":
        from mirage_viz.viz.figures import rollout_pca

        basis = basis or rollout_pca(rollout)
        cloud.point.colors = o3d.core.Tensor(basis.colors(features).numpy().astype(np.float32))
        for channel in range(features.shape[1]):
            cloud.point[f"latent_{channel}"] = o3d.core.Tensor(features[:, channel : channel + 1].float().numpy())
    else:
        cloud.point.colors = o3d.core.Tensor(features.float().clamp(0, 1).numpy())

    def write(temporary: str) -> None:
        if not o3d.t.io.write_point_cloud(temporary, cloud):
            raise OSError(f"open3d could not write {path}")

    return _write_atomically(Path(path), write)


def read_cache_ply(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a PLY written by :func:`export_cache_ply`: ``positions``, ``colors`` and ``latent`` (N, C) if present."""
    cloud = o3d.t.io.read_point_cloud(str(path))
    keys = set(cloud.point)  # noqa: SIM118 - open3d's TensorMap
    out = {"positions": torch.from_numpy(cloud.point.positions.numpy()), "colors": torch.from_numpy(cloud.point.colors.numpy())}
    channels = sorted((k for k in keys if k.startswith("latent_")), key=lambda k: int(k.split("_")[1]))
    if channels:
        out["latent"] = torch.cat([torch.from_numpy(cloud.point[k].numpy()) for k in channels], dim=1)
    return out


def export_animation(rollout: Rollout, path: str | Path, frame_ms: int = 400) -> Path:
    """The rollout as a GIF: at each step, every memory's decoded frame side by side (and the truth,
    when every step has one: a photo's rollout has it at step 0 only, and GIF frames keep one width)."""
    if Path(path).suffix.lower() != ".gif":
        raise ValueError(f"animation export writes GIF; the path must end in .gif, got {path}")
    names = list(rollout.records)
    steps = len(rollout.records[names[0]])
    with_truth = all(rollout.records[names[0]][step].true_frame is not None for step in range(steps))
    frames = []
    for step in range(steps):
        images = [rollout.records[name][step].frame for name in names]
        if with_truth:
            images.append(rollout.records[names[0]][step].true_frame)
        strip = Image.fromarray(np.concatenate([to_uint8_image(i) for i in images], axis=1))
        frames.append(strip.quantize(256, method=Image.Quantize.FASTOCTREE))  # 25x faster than Pillow's own GIF palette

    def write(temporary: str) -> None:
        frames[0].save(temporary, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)

    return _write_atomically(Path(path), write)


def export_video(rollout: Rollout, path: str | Path, fps: int = VIDEO_FPS, basis: PCABasis | None = None,
                 views: list[StepView] | None = None) -> Path:
    """The rollout as an H.264 MP4 (4:2:0, ``faststart``: plays in browsers): one frame per step, the labelled step
    view of :func:`mirage_viz.viz.step_view.step_view_image` (every memory's frame with its scores, the truth, and what
    each memory handed the generator, the warped latent included), all frames the same size.

    Encoded in process with PyAV (FFmpeg's libx264, ``crf`` 20): 107 MB installed, where imageio-ffmpeg installs
    173 MB (an FFmpeg executable it pipes frames to) and encodes the same frames 1.17x slower
    (``python experiments/mp4_writers.py``). Preset ``veryfast``: half the time of ``medium`` for a file 7% larger
    (``python experiments/writer_settings.py``).
    """
    import av

    from mirage_viz.viz.figures import rollout_pca
    from mirage_viz.viz.step_view import step_view, step_view_image

    if Path(path).suffix.lower() != ".mp4":
        raise ValueError(f"video export writes MP4; the path must end in .mp4, got {path}")
    if not isinstance(fps, int) or not 1 <= fps <= 60:
        raise ValueError(f"fps must be a whole number from 1 to 60, got {fps!r}")
    if len(rollout) == 0:
        raise ValueError("the rollout has no steps yet; nothing to export")
    basis = basis or rollout_pca(rollout)
    views = views or [step_view(rollout, step, basis) for step in range(len(rollout))]  # one per step, given or built
    columns = max(max(len(view.frames), len(view.conditioning)) for view in views)

    def write(temporary: str) -> None:
        with av.open(temporary, "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = None
            for view in views:
                picture = step_view_image(view, columns)  # (H, W, 3) uint8, even sides
                if stream is None:
                    stream = container.add_stream("libx264", rate=fps)
                    stream.height, stream.width = picture.shape[:2]
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": "20", "preset": "veryfast"}
                container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
            container.mux(stream.encode())  # flush the encoder's delayed frames

    return _write_atomically(Path(path), write)
