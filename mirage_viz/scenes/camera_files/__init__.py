"""Camera trajectories in the files other tools read and write, to and from mirage_viz's convention.

Every format is read into a :class:`Trajectory`: OpenCV ``camera_to_world`` poses (x right, y down, z forward)
with the file's own intrinsics, one per pose, at the file's image size (pixel centres at integer coordinates).

==============  ==========================================  ============================================
format          file                                        poses as written
==============  ==========================================  ============================================
mirage_viz      JSON with ``camera_to_world``                OpenCV camera-to-world
nerfstudio      ``transforms.json`` (JSON with ``frames``)   OpenGL camera-to-world
colmap          folder with ``cameras.txt``, ``images.txt``  OpenCV world-to-camera (quaternion, t)
realestate10k   text: a URL line, then 19 numbers a frame    OpenCV world-to-camera (3x4), no image size
open3d          ``PinholeCameraTrajectory`` JSON             OpenCV world-to-camera (4x4 column-major)
==============  ==========================================  ============================================
"""

from __future__ import annotations

import codecs
import os

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from mirage_viz.checks import check_choice
from mirage_viz.geometry.cameras import Camera
from mirage_viz.inputs import open_input_file, read_json_file
from mirage_viz.scenes.camera_files.colmap import check_colmap_output, is_colmap_path, read_colmap, write_colmap
from mirage_viz.scenes.camera_files.mirage import read_mirage_viz, write_mirage_viz
from mirage_viz.scenes.camera_files.nerfstudio import read_nerfstudio, write_nerfstudio
from mirage_viz.scenes.camera_files.open3d_json import CLASS_NAME, read_open3d, write_open3d
from mirage_viz.scenes.camera_files.realestate10k import (DEFAULT_IMAGE_SIZE, is_realestate10k_file, read_realestate10k,
                                                          write_realestate10k)
from mirage_viz.scenes.camera_files.text import MAX_TEXT_BYTES, check_cameras
from mirage_viz.scenes.trajectories import Trajectory

__all__ = ["CAMERA_FORMATS", "CameraFormat", "check_camera_output", "detect_camera_format", "read_cameras", "write_cameras"]

CameraFormat = Literal["mirage_viz", "nerfstudio", "colmap", "realestate10k", "open3d"]
CAMERA_FORMATS: tuple[CameraFormat, ...] = ("mirage_viz", "nerfstudio", "colmap", "realestate10k", "open3d")
ACCEPTED = (f"accepted: mirage_viz (a JSON object with 'camera_to_world'), nerfstudio (a JSON object with 'frames', "
            f"as in transforms.json), open3d (a JSON object with class_name '{CLASS_NAME}'), colmap (a folder with "
            "cameras.txt and images.txt, or the path of either), realestate10k (a text file: a URL line, then lines of "
            "19 numbers); or name the format")
_READERS: dict[str, Callable[[str | Path], Trajectory]] = {
    "mirage_viz": read_mirage_viz, "nerfstudio": read_nerfstudio, "colmap": read_colmap, "open3d": read_open3d}
_WRITERS: dict[str, Callable[[Sequence[Camera], str | Path, str], list[Path]]] = {
    "mirage_viz": write_mirage_viz, "nerfstudio": write_nerfstudio, "colmap": write_colmap,
    "realestate10k": write_realestate10k, "open3d": write_open3d}


def detect_camera_format(path: str | Path) -> CameraFormat:
    """The format of a camera file (or COLMAP folder), told from its content and never guessed: a ``ValueError``
    saying how each format is recognized when none matches."""
    if is_colmap_path(path):
        return "colmap"
    if Path(path).is_dir():
        raise ValueError(f"{path} is a folder without COLMAP's cameras.txt and images.txt; {ACCEPTED}")
    with open_input_file(path, "camera", MAX_TEXT_BYTES) as handle:  # refuses folders, FIFOs, devices
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head)  # a character cut at 4096 bytes is no error
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not text (not UTF-8); {ACCEPTED}") from None
    if head.startswith((b"{", b"[")):
        data = read_json_file(path, "camera")  # says what is wrong with broken or hostile JSON
        if isinstance(data, dict) and data.get("class_name") == CLASS_NAME:
            return "open3d"
        if isinstance(data, dict) and "camera_to_world" in data:
            return "mirage_viz"
        if isinstance(data, dict) and "frames" in data:
            return "nerfstudio"
        keys = sorted(data)[:10] if isinstance(data, dict) else []
        raise ValueError(f"cannot tell the camera format of the JSON file {path} (its keys: {keys}); {ACCEPTED}")
    if is_realestate10k_file(path):
        return "realestate10k"
    raise ValueError(f"cannot tell the camera format of {path}; {ACCEPTED}")


def read_cameras(path: str | Path, format: CameraFormat | None = None,
                 image_size: tuple[int, int] | None = None) -> Trajectory:
    """The OpenCV ``camera_to_world`` poses and per-pose intrinsics (at the file's image size) of a camera file in
    ``format`` (detected when ``None``; a file of another format is refused). ``image_size`` (width, height) is
    for RealEstate10K only, whose files keep none (default 640x360, its frames)."""
    if format is not None:
        check_choice("camera format", format, CAMERA_FORMATS)
    if image_size is not None and (len(tuple(image_size)) != 2 or any(
            isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in image_size)):
        raise ValueError(f"image_size is (width, height) in whole pixels > 0, got {image_size!r}")
    format = format or detect_camera_format(path)
    if format == "realestate10k":
        return read_realestate10k(path, tuple(image_size or DEFAULT_IMAGE_SIZE))
    if image_size is not None:
        raise ValueError(f"image_size is for realestate10k files, which keep none; a {format} file keeps its own")
    return _READERS[format](path)


def check_camera_output(path: str | Path, format: CameraFormat, overwrite: bool = False) -> None:
    """Refuse an output ``path`` for cameras in ``format`` before anything is read or run, saying what is accepted.

    A file format takes a new path in an existing folder or, with ``overwrite``, a regular file (not a link) that
    reads back as a camera file of that format. A COLMAP model takes a new or empty folder (:func:`write_cameras`;
    the command line's ``--overwrite`` replaces a model mirage_viz wrote, by ``mirage_viz.outputs``' rules).
    """
    path = Path(path)
    check_choice("camera format", format, CAMERA_FORMATS)
    if format == "colmap":
        return check_colmap_output(path)
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: the folder {path.parent} does not exist; accepted: a path in an existing folder")
    if not os.path.lexists(path):
        return
    if not overwrite:
        raise ValueError(f"{path} exists; give another OUT, or --overwrite to replace it (a {format} camera file only)")
    what = ("a symbolic link" if path.is_symlink() else "a folder" if path.is_dir()
            else "not a regular file" if not path.is_file() else None)
    if what is None:
        size = DEFAULT_IMAGE_SIZE if format == "realestate10k" else None
        try:
            read_cameras(path, format, image_size=size)
        except ValueError as error:
            what = f"not a {format} camera file ({str(error)[:200]})"
    if what is not None:
        raise ValueError(f"{path} is {what}, so --overwrite leaves it alone; accepted: a new path, or with --overwrite "
                         f"a {format} camera file to replace")


def write_cameras(cameras: Sequence[Camera], path: str | Path, format: CameraFormat, name: str = "custom",
                  overwrite: bool = False) -> list[Path]:
    """Write cameras (OpenCV, each with its own intrinsics) in ``format`` so :func:`read_cameras` gives them back;
    everything is checked first (``path`` by :func:`check_camera_output`) and written atomically: an error leaves
    nothing behind and an existing file as it was. Returns the paths written."""
    check_cameras(cameras, name)
    check_camera_output(path, format, overwrite)
    return _WRITERS[format](cameras, path, name)
