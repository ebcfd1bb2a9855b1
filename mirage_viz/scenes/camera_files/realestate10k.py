"""RealEstate10K camera files: a text line per frame, OpenCV world-to-camera, intrinsics normalized by the image size.

The first line is the video's URL (one word, not a number; mirage_viz writes the trajectory's name there), then
one line per frame of 19 numbers::

    timestamp fx fy cx cy 0 0 r00 r01 r02 t0 r10 r11 r12 t1 r20 r21 r22 t2

``fx, cx`` are divided by the image width and ``fy, cy`` by its height, with the principal point in the
pixel-corner convention (the image centre at 0.5): ``cx_mirage_viz = cx * width - 0.5``. The 3x4 is the OpenCV
world-to-camera pose ``X_cam = R X_world + t``, row by row. The two zeros are kept by the dataset and ignored here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from mirage_viz.geometry.cameras import Camera, invert_pose
from mirage_viz.scenes.camera_files.text import (NumberedLines, camera_to_world_from_world_to_camera, check_cameras,
                                                 check_pose_count, file_intrinsics, parse_numbers, read_name,
                                                 trajectory_from_file, write_text_atomically)
from mirage_viz.scenes.trajectories import Trajectory

__all__ = ["DEFAULT_IMAGE_SIZE", "is_realestate10k_file", "is_url_line", "read_realestate10k", "realestate10k_timestamps",
           "write_realestate10k"]

WHAT = "RealEstate10K camera"
COLUMNS = 19
LAYOUT = "19 numbers: timestamp fx fy cx cy 0 0, then the 3x4 world-to-camera pose row by row"
DEFAULT_IMAGE_SIZE = (640, 360)  # RealEstate10K's frames
FRAMES_PER_SECOND = 30


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_url_line(line: str) -> bool:
    """The first line of a RealEstate10K file: one word that is not a number (the video's URL)."""
    fields = line.split()
    return len(fields) == 1 and not _is_number(fields[0])


def is_realestate10k_file(path: str | Path) -> bool:
    """A text file that starts with a URL line (the reader then says which line is wrong, if any) or whose first line
    is 19 numbers (NaN included: the reader then says where it is)."""
    try:
        with NumberedLines(path, WHAT) as lines:
            for line in lines.data_lines():
                if is_url_line(line):
                    return True
                fields = line.split()
                return len(fields) == COLUMNS and all(_is_number(field) for field in fields)
    except ValueError:
        return False
    return False


def read_realestate10k(path: str | Path, image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE) -> Trajectory:
    """OpenCV ``camera_to_world`` poses and intrinsics at ``image_size`` (width, height; the file has none, and a
    rollout rescales the intrinsics per axis to its own size anyway) from a RealEstate10K file, frames in file order."""
    width, height = image_size
    name, rows = None, []  # rows: (line number, 19 numbers); checked as poses once the count is known to fit
    with NumberedLines(path, WHAT) as lines:
        for line in lines.data_lines():
            if name is None and not rows and is_url_line(line):
                name = line
                continue
            fields = line.split()
            if len(fields) != COLUMNS:
                raise lines.error(f"{len(fields)} columns; accepted: {LAYOUT}")
            check_pose_count(len(rows) + 1, lines.where)
            rows.append((lines.number, parse_numbers(fields, lines.where, LAYOUT)))
    poses, intrinsics = [], []
    for number, row in rows:
        where = f"{WHAT} file {path} line {number}"
        fx, fy, cx, cy = row[1:5]
        intrinsics.append(file_intrinsics(fx * width, fy * height, cx * width - 0.5, cy * height - 0.5, width, height, where))
        world_to_camera = torch.tensor(row[7:], dtype=torch.float64).reshape(3, 4)  # (3, 4) OpenCV
        poses.append(camera_to_world_from_world_to_camera(world_to_camera[:, :3], world_to_camera[:, 3], where))
    return trajectory_from_file(path, WHAT, read_name(name, path), poses, intrinsics)


def realestate10k_timestamps(path: str | Path) -> list[str]:
    """Each frame's timestamp (microseconds, as written: the name of its image, ``<timestamp>.png``), in
    :func:`read_realestate10k`'s order."""
    stamps = []
    with NumberedLines(path, WHAT) as lines:
        for line in lines.data_lines():
            if not stamps and is_url_line(line):
                continue
            stamp = line.split()[0]
            if not stamp.isdigit() or len(stamp) > 20:
                raise lines.error(f"timestamp {stamp[:40]!r} is not a whole number of microseconds; accepted: {LAYOUT}")
            stamps.append(stamp)
    return stamps


def write_realestate10k(cameras: Sequence[Camera], path: str | Path, name: str = "custom") -> list[Path]:
    """Write cameras (OpenCV, one image size for all: the file keeps none) as a RealEstate10K file, 30 frames a second."""
    cameras = check_cameras(cameras, name)
    if not is_url_line(name):
        raise ValueError(f"a RealEstate10K file's first line is one word that is not a number, got the name {name!r}")
    sizes = {(c.intrinsics.width, c.intrinsics.height) for c in cameras}
    if len(sizes) != 1:
        raise ValueError(f"a RealEstate10K file keeps no image size, so its cameras must share one; got {sorted(sizes)}")
    lines = [name.strip()]
    for index, camera in enumerate(cameras):
        k = camera.intrinsics
        world_to_camera = invert_pose(camera.camera_to_world.double())[:3]  # (3, 4) OpenCV
        numbers = [k.fx / k.width, k.fy / k.height, (k.cx + 0.5) / k.width, (k.cy + 0.5) / k.height, 0.0, 0.0]
        numbers += world_to_camera.reshape(-1).tolist()
        lines.append(" ".join([str(round(index * 1e6 / FRAMES_PER_SECOND))] + [repr(float(v)) for v in numbers]))
    return [write_text_atomically(path, "\n".join(lines) + "\n")]
