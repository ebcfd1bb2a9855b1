"""open3d's ``PinholeCameraTrajectory`` JSON (what ``open3d.io.read_pinhole_camera_trajectory`` loads).

Each entry of ``parameters`` holds an ``extrinsic``: the OpenCV world-to-camera 4x4 as 16 numbers, column by
column; and an ``intrinsic``: ``width``, ``height`` and ``intrinsic_matrix``, K as 9 numbers column by column.
open3d puts pixel centres at integers as mirage_viz does (its 640-wide PrimeSense default has cx = 319.5).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from mirage_viz.geometry.cameras import Camera, invert_pose
from mirage_viz.inputs import read_json_file
from mirage_viz.scenes.camera_files.text import (camera_to_world_from_world_to_camera, check_cameras, check_pose_count,
                                                 file_intrinsics, json_numbers, read_name, trajectory_from_file,
                                                 write_text_atomically)
from mirage_viz.scenes.trajectories import Trajectory

__all__ = ["CLASS_NAME", "read_open3d", "write_open3d"]

WHAT = "open3d camera trajectory"
CLASS_NAME = "PinholeCameraTrajectory"
VERSION = {"version_major": 1, "version_minor": 0}


def read_open3d(path: str | Path) -> Trajectory:
    """OpenCV ``camera_to_world`` poses and intrinsics from an open3d ``PinholeCameraTrajectory`` JSON, in file order."""
    data = read_json_file(path, WHAT)
    if not isinstance(data, dict) or data.get("class_name") != CLASS_NAME or not isinstance(data.get("parameters"), list):
        raise ValueError(f"{WHAT} file {path} is not one; accepted: a JSON object with class_name '{CLASS_NAME}' and a "
                         "'parameters' list (open3d.io.write_pinhole_camera_trajectory writes one)")
    check_pose_count(len(data["parameters"]), f"{WHAT} file {path} 'parameters'")
    poses, intrinsics = [], []
    for index, entry in enumerate(data["parameters"]):
        where = f"{WHAT} file {path} parameters[{index}]"
        entry = entry if isinstance(entry, dict) else {}
        intrinsic = entry.get("intrinsic") if isinstance(entry.get("intrinsic"), dict) else {}
        extrinsic = json_numbers(entry.get("extrinsic"), (16,), f"{where} 'extrinsic'",
                                 "16 numbers: the 4x4 world-to-camera matrix column by column").reshape(4, 4).T  # (4, 4)
        k = json_numbers(intrinsic.get("intrinsic_matrix"), (9,), f"{where} 'intrinsic.intrinsic_matrix'",
                         "9 numbers: K column by column").reshape(3, 3).T  # (3, 3)
        if k[0, 1] != 0 or k[1, 0] != 0 or k[2].tolist() != [0.0, 0.0, 1.0]:
            raise ValueError(f"{where}: K = {k.tolist()} is not a pinhole matrix; accepted: [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]")
        size = [json_numbers(intrinsic.get(key), (), f"{where} 'intrinsic.{key}'", "a whole number of pixels > 0")
                for key in ("width", "height")]
        intrinsics.append(file_intrinsics(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]),
                                          float(size[0]), float(size[1]), where))
        if extrinsic[3].tolist() != [0.0, 0.0, 0.0, 1.0]:
            raise ValueError(f"{where}: the extrinsic's bottom row is {extrinsic[3].tolist()}; accepted: [0, 0, 0, 1]")
        poses.append(camera_to_world_from_world_to_camera(extrinsic[:3, :3], extrinsic[:3, 3], where))
    return trajectory_from_file(path, WHAT, read_name(None, path), poses, intrinsics)


def write_open3d(cameras: Sequence[Camera], path: str | Path, name: str = "custom") -> list[Path]:
    """Write cameras (OpenCV) as an open3d ``PinholeCameraTrajectory`` JSON (it keeps no name: ``name`` is only checked)."""
    parameters = []
    for camera in check_cameras(cameras, name):
        k = camera.intrinsics
        world_to_camera = invert_pose(camera.camera_to_world.double())  # (4, 4) OpenCV
        parameters.append({"class_name": "PinholeCameraParameters", "extrinsic": world_to_camera.T.reshape(-1).tolist(),
                           "intrinsic": {"width": k.width, "height": k.height,
                                         "intrinsic_matrix": k.matrix.T.reshape(-1).tolist()}, **VERSION})
    data = {"class_name": CLASS_NAME, "parameters": parameters, **VERSION}
    return [write_text_atomically(path, json.dumps(data, indent=1))]
