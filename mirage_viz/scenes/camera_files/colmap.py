"""COLMAP's text model: a folder with ``cameras.txt``, ``images.txt`` (and ``points3D.txt``).

``cameras.txt``: ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS...``, the principal point in the pixel-corner convention
(the image centre at ``width / 2``: ``cx_mirage_viz = cx_colmap - 0.5``). ``images.txt``: two lines per image,
``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` (the OpenCV world-to-camera pose ``X_cam = R(q) X_world + t``)
and a POINTS2D line, which is skipped. ``#`` lines are comments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch

from mirage_viz.geometry.cameras import Camera, Intrinsics, invert_pose
from mirage_viz.geometry.conventions import quaternion_wxyz_from_rotation, rotation_from_quaternion_wxyz
from mirage_viz.scenes.camera_files.text import (NumberedLines, camera_to_world_from_world_to_camera, check_cameras,
                                                 check_pose_count, file_intrinsics, parse_numbers, trajectory_from_file)
from mirage_viz.scenes.trajectories import Trajectory

__all__ = ["FILES", "check_colmap_output", "colmap_image_names", "is_colmap_path", "read_colmap", "read_colmap_points",
           "write_colmap", "write_colmap_files"]

MAX_IMAGES_BYTES = 8 * 2**30  # read line by line: real POINTS2D lines are long, and only 10,000 images are kept
# model -> its parameters; the first 3 (f cx cy) or 4 (fx fy cx cy) are the pinhole, the rest distortion (must be 0)
MODELS = {"SIMPLE_PINHOLE": "f cx cy", "PINHOLE": "fx fy cx cy", "SIMPLE_RADIAL": "f cx cy k", "RADIAL": "f cx cy k1 k2",
          "OPENCV": "fx fy cx cy k1 k2 p1 p2"}
ACCEPTED_MODELS = ", ".join(f"{model} ({params})" for model, params in MODELS.items()) + ", with distortion 0"
FILES = ("cameras.txt", "images.txt", "points3D.txt")
IMAGE_LAYOUT = "IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME, then a POINTS2D line"
MAX_ID = 2**32 - 1  # COLMAP's camera and image ids are 32-bit unsigned


def _colmap_id(text: str, column: str, lines: NumberedLines) -> int:
    """A camera or image id (``column`` names it) as an int, or a ``ValueError`` naming the file and the line."""
    if not re.fullmatch(r"[0-9]{1,10}", text) or int(text) > MAX_ID:
        raise lines.error(f"{column} {text[:40]!r} is not an id; accepted: a whole number from 0 to {MAX_ID:,}")
    return int(text)


def is_colmap_path(path: str | Path) -> bool:
    """A folder holding ``cameras.txt`` and ``images.txt``, or the path of either file."""
    path = Path(path)
    if path.is_dir():
        return (path / "cameras.txt").exists() and (path / "images.txt").exists()
    return path.name in ("cameras.txt", "images.txt")


def _read_cameras(path: Path) -> dict[int, Intrinsics]:
    """Intrinsics (pixel centres at integers) by camera id."""
    cameras: dict[int, Intrinsics] = {}
    with NumberedLines(path, "COLMAP cameras.txt") as lines:
        for line in lines.data_lines():
            fields = line.split()
            model = fields[1] if len(fields) > 1 else "(none)"
            if model not in MODELS:
                raise lines.error(f"camera model {model} is not supported; accepted: {ACCEPTED_MODELS}")
            names = MODELS[model].split()
            if len(fields) != 4 + len(names):
                raise lines.error(f"{len(fields)} columns; accepted for {model}: CAMERA_ID (a whole number) MODEL "
                                  f"WIDTH HEIGHT {' '.join(names)}")
            camera_id = _colmap_id(fields[0], "CAMERA_ID", lines)
            width, height, *params = parse_numbers(fields[2:], lines.where, f"WIDTH HEIGHT {MODELS[model]}")
            pinhole = 4 if names[0] == "fx" else 3
            if any(params[pinhole:]):
                raise lines.error(f"{model} camera with distortion {' '.join(names[pinhole:])} = "
                                  f"{' '.join(fields[4 + pinhole:])}: distortion is not supported: undistort the images "
                                  f"first (colmap image_undistorter); accepted: {ACCEPTED_MODELS}")
            if camera_id in cameras:
                raise lines.error(f"camera {camera_id} is listed twice; accepted: one line per CAMERA_ID")
            check_pose_count(len(cameras) + 1, lines.where)
            fx, fy = params[0], params[pinhole - 3]
            cx, cy = params[pinhole - 2] - 0.5, params[pinhole - 1] - 0.5
            cameras[camera_id] = file_intrinsics(fx, fy, cx, cy, width, height, f"{lines.where} ({model} camera)")
    return cameras


def _natural_key(name: str) -> list[str | int]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _model_folder(path: str | Path) -> Path:
    path = Path(path)
    if not is_colmap_path(path):
        raise ValueError(f"{path} is not a COLMAP text model; accepted: a folder with cameras.txt and images.txt, or "
                         "the path of either (convert a binary model with colmap model_converter --output_type TXT)")
    return path if path.is_dir() else path.parent


def _read_images(folder: Path, cameras: dict[int, Intrinsics]) -> list[tuple[str, int, list[float], int, int]]:
    """``images.txt``'s images as (NAME, line, [IMAGE_ID qw qx qy qz tx ty tz], CAMERA_ID, IMAGE_ID), in the order of
    their names (natural: ``frame_2`` before ``frame_10``), a capture's frame order."""
    images = []
    seen: dict[int, int] = {}  # image id -> its line
    with NumberedLines(folder / "images.txt", "COLMAP images.txt", MAX_IMAGES_BYTES) as lines:
        for line in lines.data_lines():
            fields = line.split()
            if len(fields) != 10:
                raise lines.error(f"{len(fields)} columns; accepted: {IMAGE_LAYOUT}")
            check_pose_count(len(images) + 1, lines.where)
            image_id = _colmap_id(fields[0], "IMAGE_ID", lines)
            if image_id in seen:
                raise lines.error(f"image {image_id} is listed twice (first on line {seen[image_id]}); accepted: one "
                                  "image per IMAGE_ID")
            seen[image_id] = lines.number
            numbers = parse_numbers(fields[:8], lines.where, IMAGE_LAYOUT)
            camera_id = _colmap_id(fields[8], "CAMERA_ID", lines)
            if camera_id not in cameras:
                raise lines.error(f"CAMERA_ID {camera_id} is not in cameras.txt; accepted: one of {sorted(cameras)[:20]}")
            images.append((fields[9], lines.number, numbers, camera_id, image_id))
            lines.skip_line()  # POINTS2D
    return sorted(images, key=lambda image: _natural_key(image[0]))


def read_colmap(path: str | Path) -> Trajectory:
    """OpenCV ``camera_to_world`` poses and intrinsics from a COLMAP text model (the folder, or the path of its
    ``images.txt`` or ``cameras.txt``), ordered by image NAME in natural order (``frame_2`` before ``frame_10``):
    a capture's frame order. The trajectory is named after the folder."""
    folder = _model_folder(path)
    cameras = _read_cameras(folder / "cameras.txt")
    images = _read_images(folder, cameras)
    poses = []
    for _, number, numbers, _, _ in images:
        where = f"COLMAP images.txt file {folder / 'images.txt'} line {number}"
        try:
            rotation = rotation_from_quaternion_wxyz(numbers[1:5])  # (3, 3) world-to-camera
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        poses.append(camera_to_world_from_world_to_camera(rotation, numbers[5:8], where))
    intrinsics = [cameras[image[3]] for image in images]
    return trajectory_from_file(folder, "COLMAP", folder.name, poses, intrinsics)


def colmap_image_names(path: str | Path) -> list[tuple[str, int]]:
    """(NAME, IMAGE_ID) of a COLMAP text model's images, in :func:`read_colmap`'s order."""
    folder = _model_folder(path)
    return [(image[0], image[4]) for image in _read_images(folder, _read_cameras(folder / "cameras.txt"))]


def read_colmap_points(path: str | Path, image_id: int, max_points: int = 1_000_000) -> torch.Tensor:
    """The world positions (N, 3) of the sparse points in ``points3D.txt`` whose track holds ``image_id`` (the points
    that image sees); (0, 3) when the model has no ``points3D.txt`` or none of its points are seen there.
    Lines: ``POINT3D_ID X Y Z R G B ERROR TRACK[] as (IMAGE_ID, POINT2D_IDX)``."""
    file = _model_folder(path) / "points3D.txt"
    points: list[list[float]] = []
    if not file.is_file():
        return torch.zeros(0, 3, dtype=torch.float64)
    with NumberedLines(file, "COLMAP points3D.txt", MAX_IMAGES_BYTES) as lines:
        for line in lines.data_lines():
            fields = line.split()
            if len(fields) < 8 or len(fields) % 2:
                raise lines.error(f"{len(fields)} columns; accepted: POINT3D_ID X Y Z R G B ERROR, then pairs of "
                                  "IMAGE_ID POINT2D_IDX")
            if str(image_id) in fields[8::2]:
                points.append(parse_numbers(fields[1:4], lines.where, "X Y Z"))
                if len(points) > max_points:
                    raise lines.error(f"over {max_points:,} points seen by image {image_id}; accepted: at most that")
    return torch.tensor(points, dtype=torch.float64).reshape(-1, 3)  # [N, 3] world


def write_colmap(cameras: Sequence[Camera], path: str | Path, name: str = "custom") -> list[Path]:
    """Write cameras (OpenCV) as a COLMAP text model (:func:`write_colmap_files`) in the folder ``path``, which must
    be new (it is made) or empty; a failure removes what was written. Replacing a model is the command line's
    (``mirage-viz cameras convert --overwrite``: staged, and only a model mirage_viz wrote)."""
    cameras, folder = check_cameras(cameras, name), Path(path)
    check_colmap_output(folder)
    made = not folder.exists()
    folder.mkdir(exist_ok=True)
    try:
        return write_colmap_files(cameras, folder)
    except BaseException:
        for file_name in FILES:  # the folder was empty: these are ours
            (folder / file_name).unlink(missing_ok=True)
        if made:
            folder.rmdir()
        raise


def write_colmap_files(cameras: Sequence[Camera], folder: Path) -> list[Path]:
    """COLMAP's three files of ``cameras`` (OpenCV) written into the existing ``folder``, whose atomicity is the
    caller's (a staging folder): one PINHOLE camera per distinct intrinsics, images ``frame_00000.png``... with no
    points, and an empty ``points3D.txt``."""
    written = []
    for file_name, text in _colmap_texts(list(cameras)).items():
        written.append(folder / file_name)
        written[-1].write_text(text)
    return written


def check_colmap_output(folder: Path) -> None:
    """Refuse a COLMAP output that is not a new or empty folder in an existing one, saying what is accepted."""
    accepted = "accepted: a new folder, or an empty one (mirage-viz cameras convert --overwrite replaces a model it wrote)"
    if folder.suffix == ".txt" or folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise ValueError(f"cannot write {folder}: a COLMAP model is a folder; {accepted}")
    if not folder.parent.is_dir():
        raise ValueError(f"cannot write {folder}: the folder {folder.parent} does not exist; accepted: a path in an existing folder")
    others = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    if others:
        raise ValueError(f"cannot write {folder}: it holds files ({', '.join(others[:5])}); {accepted}")


def _colmap_texts(cameras: list[Camera]) -> dict[str, str]:
    """The three files of a COLMAP text model of ``cameras``, by name."""
    ids: dict[Intrinsics, int] = {}
    for camera in cameras:
        ids.setdefault(camera.intrinsics, len(ids) + 1)
    texts = {"cameras.txt": ["# Camera list with one line of data per camera:", "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
                             f"# Number of cameras: {len(ids)}"],
             "images.txt": ["# Image list with two lines of data per image:",
                            "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME", "#   POINTS2D[] as (X, Y, POINT3D_ID)",
                            f"# Number of images: {len(cameras)}, mean observations per image: 0"],
             "points3D.txt": ["# 3D point list with one line of data per point:",
                              "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
                              "# Number of points: 0, mean track length: 0"]}
    for k, camera_id in ids.items():
        texts["cameras.txt"].append(" ".join([str(camera_id), "PINHOLE", str(k.width), str(k.height)]
                                             + [repr(float(v)) for v in (k.fx, k.fy, k.cx + 0.5, k.cy + 0.5)]))
    for index, camera in enumerate(cameras):
        world_to_camera = invert_pose(camera.camera_to_world.double())  # (4, 4) OpenCV
        numbers = quaternion_wxyz_from_rotation(world_to_camera[:3, :3]).tolist() + world_to_camera[:3, 3].tolist()
        texts["images.txt"] += [" ".join([str(index + 1)] + [repr(float(v)) for v in numbers]
                                         + [str(ids[camera.intrinsics]), f"frame_{index:05d}.png"]), ""]
    return {file_name: "\n".join(lines) + "\n" for file_name, lines in texts.items()}
