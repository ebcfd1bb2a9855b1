"""nerfstudio's ``transforms.json``: an OpenGL camera-to-world ``transform_matrix`` per frame.

OpenGL cameras look down their -z with y up; mirage_viz's (OpenCV) look down +z with y down: the same pose with
the camera's y and z axes flipped. Intrinsics ``fl_x fl_y cx cy w h`` stand at the top level or in a frame (a
frame's own win); the principal point is in the pixel-corner convention (the image centre at ``w / 2``), so
``cx_mirage_viz = cx - 0.5``. Only undistorted pinhole cameras are read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from mirage_viz.geometry.cameras import Camera, Intrinsics
from mirage_viz.geometry.conventions import opencv_from_opengl_camera_to_world, opengl_from_opencv_camera_to_world
from mirage_viz.inputs import read_json_file
from mirage_viz.scenes.camera_files.text import (check_cameras, check_pose, check_pose_count, file_intrinsics,
                                                 json_numbers, read_name, trajectory_from_file, write_text_atomically)
from mirage_viz.scenes.trajectories import Trajectory

__all__ = ["nerfstudio_file_paths", "read_nerfstudio", "write_nerfstudio"]

WHAT = "nerfstudio transforms"
INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE")
ACCEPTED = (f"camera_model {', '.join(MODELS)} or none, with fl_x, fl_y (default fl_x), cx, cy, w, h at the top "
            f"level or in each frame, and distortion {' '.join(DISTORTION_KEYS)} absent or 0")


def _intrinsics(values: dict, where: str) -> Intrinsics:
    """mirage_viz intrinsics (pixel centres at integers) from a frame's nerfstudio keys (pixel corners)."""
    model = values.get("camera_model", "OPENCV")
    if model not in MODELS:
        raise ValueError(f"{where}: camera_model {str(model)[:40]!r} is not supported; accepted: {ACCEPTED}")
    numbers = {key: float(json_numbers(values[key], (), f"{where} '{key}'", "a number"))
               for key in INTRINSIC_KEYS + DISTORTION_KEYS if key in values}
    missing = [key for key in ("fl_x", "cx", "cy", "w", "h") if key not in numbers]
    if missing:
        raise ValueError(f"{where}: no {', '.join(missing)}; accepted: {ACCEPTED}")
    distortion = {key: numbers[key] for key in DISTORTION_KEYS if numbers.get(key)}
    if distortion:
        raise ValueError(f"{where}: distortion {distortion}: distortion is not supported: undistort the images first; "
                         f"accepted: {ACCEPTED}")
    return file_intrinsics(numbers["fl_x"], numbers.get("fl_y", numbers["fl_x"]), numbers["cx"] - 0.5,
                           numbers["cy"] - 0.5, numbers["w"], numbers["h"], where)


def read_nerfstudio(path: str | Path) -> Trajectory:
    """OpenCV ``camera_to_world`` poses and intrinsics from a nerfstudio ``transforms.json``, frames in file order."""
    data = read_json_file(path, WHAT)
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise ValueError(f"{WHAT} file {path} has no 'frames' list; accepted: a JSON object with 'frames', each with a "
                         "4x4 OpenGL camera-to-world 'transform_matrix' (nerfstudio's transforms.json)")
    check_pose_count(len(data["frames"]), f"{WHAT} file {path} 'frames'")
    shared = {key: data[key] for key in INTRINSIC_KEYS + DISTORTION_KEYS + ("camera_model",) if key in data}
    poses, intrinsics = [], []
    for index, frame in enumerate(data["frames"]):
        where = f"{WHAT} file {path} frames[{index}]"
        if not isinstance(frame, dict):
            raise ValueError(f"{where} is {str(frame)[:80]}; accepted: an object with a 'transform_matrix'")
        intrinsics.append(_intrinsics({**shared, **frame}, where))
        opengl = json_numbers(frame.get("transform_matrix"), (4, 4), f"{where} 'transform_matrix'",
                              "a 4x4 OpenGL camera-to-world matrix, 4 rows of 4 numbers")  # (4, 4)
        poses.append(check_pose(opencv_from_opengl_camera_to_world(opengl), where))
    own = data.get("mirage_viz")
    return trajectory_from_file(path, WHAT, read_name(own.get("name") if isinstance(own, dict) else None, path),
                                poses, intrinsics)


def nerfstudio_file_paths(path: str | Path) -> list[str]:
    """Each frame's ``file_path`` (the image, relative to the file's folder), in :func:`read_nerfstudio`'s order."""
    data = read_json_file(path, WHAT)
    frames = data.get("frames") if isinstance(data, dict) else None
    paths = [frame.get("file_path") if isinstance(frame, dict) else None for frame in frames or []]
    for index, file_path in enumerate(paths):
        if not isinstance(file_path, str) or not file_path.strip() or len(file_path) > 4096:
            raise ValueError(f"{WHAT} file {path} frames[{index}] has no 'file_path'; accepted: each frame's image as "
                             "a path relative to the file's folder (images/frame_00000.png)")
    return paths


def _keys(k: Intrinsics) -> dict:
    return {"fl_x": k.fx, "fl_y": k.fy, "cx": k.cx + 0.5, "cy": k.cy + 0.5, "w": k.width, "h": k.height}


def write_nerfstudio(cameras: Sequence[Camera], path: str | Path, name: str = "custom") -> list[Path]:
    """Write cameras (OpenCV) as a nerfstudio ``transforms.json``: intrinsics at the top level when all cameras
    share them, else in each frame; images named ``images/frame_00000.png``..."""
    cameras = check_cameras(cameras, name)
    keys = [_keys(camera.intrinsics) for camera in cameras]
    shared = all(k == keys[0] for k in keys)
    frames = [{"file_path": f"images/frame_{index:05d}.png",
               "transform_matrix": opengl_from_opencv_camera_to_world(camera.camera_to_world.double()).tolist(),
               **({} if shared else keys[index])} for index, camera in enumerate(cameras)]
    data = {"camera_model": "OPENCV", **(keys[0] if shared else {}), "mirage_viz": {"name": name}, "frames": frames}
    return [write_text_atomically(path, json.dumps(data, indent=1))]
