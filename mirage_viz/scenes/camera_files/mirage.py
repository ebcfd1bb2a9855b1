"""mirage_viz's own trajectory JSON (``mirage_viz.trajectory/v1``): OpenCV ``camera_to_world`` poses and, from a
camera file, one intrinsics object per pose (pixel centres at integers). See :class:`Trajectory`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from mirage_viz.geometry.cameras import Camera
from mirage_viz.inputs import read_json_file
from mirage_viz.scenes.camera_files.text import check_cameras, file_intrinsics, json_numbers, read_name, write_atomically
from mirage_viz.scenes.trajectories import Trajectory

__all__ = ["read_mirage_viz", "write_mirage_viz"]

WHAT = "mirage_viz trajectory"


def read_mirage_viz(path: str | Path) -> Trajectory:
    """A trajectory file written by :meth:`Trajectory.save` (OpenCV ``camera_to_world``); named after the file
    when it names none. A file from a preset has no intrinsics (``None``: the rollout's own)."""
    data = read_json_file(path, WHAT)
    _check_intrinsics(data, path)
    if isinstance(data, dict) and "name" not in data:
        data = {**data, "name": read_name(None, path)}
    try:
        return Trajectory.from_dict(data)
    except ValueError as error:
        raise ValueError(f"{WHAT} file {path}: {error}") from None


def _check_intrinsics(data: object, path: str | Path) -> None:
    """Each pose's intrinsics (when the file has them) finite and sane, by ``file_intrinsics``, naming ``intrinsics[i]``."""
    intrinsics = data.get("intrinsics") if isinstance(data, dict) else None
    for index, k in enumerate(intrinsics if isinstance(intrinsics, list) else []):
        where = f"{WHAT} file {path} intrinsics[{index}]"
        if isinstance(k, dict):
            file_intrinsics(*(float(json_numbers(k.get(key), (), f"{where} '{key}'", "a number"))
                              for key in ("fx", "fy", "cx", "cy", "width", "height")), where)


def write_mirage_viz(cameras: Sequence[Camera], path: str | Path, name: str = "custom") -> list[Path]:
    """Write cameras (OpenCV) as a mirage_viz trajectory file with each pose's intrinsics."""
    cameras = check_cameras(cameras, name)
    trajectory = Trajectory(name=name, camera_to_world=torch.stack([c.camera_to_world for c in cameras]),
                            intrinsics=tuple(c.intrinsics for c in cameras))
    return [write_atomically(path, trajectory.save)]
