"""Camera files of other tools: round trips, hand-written known cameras in each format, refusals with places."""

import json
import math
import os
import shutil
import time

import numpy as np
import open3d as o3d
import pytest
import torch

from mirage_viz.geometry.cameras import Camera, Intrinsics
from mirage_viz.scenes.camera_files import CAMERA_FORMATS, detect_camera_format, read_cameras, write_cameras

FILE_FORMATS = [format for format in CAMERA_FORMATS if format != "colmap"]
SUFFIX = {"mirage_viz": ".json", "nerfstudio": ".json", "open3d": ".json", "realestate10k": ".txt", "colmap": ""}


def rotation(axis: str, angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor({"x": [[1, 0, 0], [0, c, -s], [0, s, c]], "y": [[c, 0, s], [0, 1, 0], [-s, 0, c]],
                         "z": [[c, -s, 0], [s, c, 0], [0, 0, 1]]}[axis], dtype=torch.float64)


def pose(rotation_matrix: torch.Tensor, position: tuple[float, float, float]) -> torch.Tensor:
    out = torch.eye(4, dtype=torch.float64)  # (4, 4) OpenCV camera_to_world
    out[:3, :3], out[:3, 3] = rotation_matrix, torch.tensor(position, dtype=torch.float64)
    return out


def some_cameras() -> list[Camera]:
    """Four cameras on a 160x90 image: rotations about x, y, z and all three, moving, zooming in."""
    poses = [pose(torch.eye(3, dtype=torch.float64), (0.0, 0.0, 0.0)),
             pose(rotation("x", 0.4), (0.5, -0.2, 1.0)),
             pose(rotation("y", -2.0), (1.0, 2.0, 3.0)),
             pose(rotation("z", 2.9) @ rotation("x", -1.1) @ rotation("y", 0.7), (-4.0, 0.3, 7.5))]
    return [Camera(Intrinsics(fx=120.0 * (1 + 0.25 * i), fy=118.0 * (1 + 0.25 * i), cx=79.5 + i, cy=44.5 - 0.5 * i,
                              width=160, height=90), p) for i, p in enumerate(poses)]


def target(tmp_path, format):
    return tmp_path / f"cameras_{format}{SUFFIX[format]}"


@pytest.mark.parametrize("format", CAMERA_FORMATS)
def test_round_trip_gives_back_poses_and_intrinsics(tmp_path, format):
    cameras = some_cameras()
    written = write_cameras(cameras, target(tmp_path, format), format, name="walkthrough")
    assert all(path.is_file() for path in written)
    trajectory = read_cameras(target(tmp_path, format), image_size=(160, 90) if format == "realestate10k" else None)
    expected = torch.stack([c.camera_to_world for c in cameras])
    assert torch.allclose(trajectory.camera_to_world, expected, atol=1e-5)
    assert len(trajectory.intrinsics) == len(cameras)
    for got, camera in zip(trajectory.intrinsics, cameras):
        want = camera.intrinsics
        assert (got.width, got.height) == (want.width, want.height)
        assert np.allclose([got.fx, got.fy, got.cx, got.cy], [want.fx, want.fy, want.cx, want.cy], rtol=1e-6, atol=0)
    assert detect_camera_format(target(tmp_path, format)) == format
    if format in ("mirage_viz", "nerfstudio", "realestate10k"):
        assert trajectory.name == "walkthrough"


# The known camera, derived by hand: at the world origin, looking down world +x, world +y is its down (OpenCV y).
#   camera z (forward) = world (1, 0, 0); camera y (down) = world (0, 1, 0);
#   camera x (right) = y cross z = (0, 1, 0) x (1, 0, 0) = (0, 0, -1)  [and x cross y = (1, 0, 0) = z: right-handed]
#   OpenCV camera_to_world R has these as columns: [[0, 0, 1], [0, 1, 0], [-1, 0, 0]] (det +1).
#   world_to_camera R' = R^T = [[0, 0, -1], [0, 1, 0], [1, 0, 0]]: a turn of -90 degrees about y
#   ([[cos, 0, sin], [0, 1, 0], [-sin, 0, cos]] with sin = -1), quaternion (cos -45, 0, sin -45, 0) = (s, 0, -s, 0).
#   At world C = (1, 2, 3): t = -R' C = -(-3, 2, 1) = (3, -2, -1).
# Intrinsics, ours (pixel centres at integers): fx 100, fy 110, cx 63.5, cy 47.5 on 128x96; pixel-corner formats
# (nerfstudio, COLMAP, RealEstate10K) write cx 64, cy 48; RealEstate10K normalized: 100/128 = 0.78125,
# 110/96 = 1.1458333333333333, 64/128 = 0.5, 48/96 = 0.5.
KNOWN_ROTATION = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]
KNOWN_INTRINSICS = Intrinsics(fx=100.0, fy=110.0, cx=63.5, cy=47.5, width=128, height=96)
S = 0.7071067811865476
KNOWN_FILES = {
    "mirage_viz": ("known.json", json.dumps({"format": "mirage_viz.trajectory/v1", "name": "known", "camera_to_world": [
        [[0, 0, 1, 0], [0, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 1]], [[0, 0, 1, 1], [0, 1, 0, 2], [-1, 0, 0, 3], [0, 0, 0, 1]]],
        "intrinsics": [{"fx": 100, "fy": 110, "cx": 63.5, "cy": 47.5, "width": 128, "height": 96}] * 2})),
    # OpenGL camera_to_world: x right = world (0, 0, -1), y up = world (0, -1, 0), z backward = world (-1, 0, 0).
    "nerfstudio": ("transforms.json", json.dumps({"fl_x": 100, "fl_y": 110, "cx": 64, "cy": 48, "w": 128, "h": 96, "frames": [
        {"file_path": "a.png", "transform_matrix": [[0, 0, -1, 0], [0, -1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 1]]},
        {"file_path": "b.png", "transform_matrix": [[0, 0, -1, 1], [0, -1, 0, 2], [-1, 0, 0, 3], [0, 0, 0, 1]]}]})),
    "colmap": ("sparse", {
        "cameras.txt": "# CAMERA_ID MODEL WIDTH HEIGHT PARAMS\n1 PINHOLE 128 96 100 110 64 48\n",
        "images.txt": f"# two lines per image\n1 {S} 0 {-S} 0 0 0 0 1 frame_0.png\n\n2 {S} 0 {-S} 0 3 -2 -1 1 frame_1.png\n\n"}),
    # world_to_camera 3x4 rows: [R' | t]
    "realestate10k": ("known.txt", "https://www.youtube.com/watch?v=known\n"
                      "0 0.78125 1.1458333333333333 0.5 0.5 0 0 0 0 -1 0 0 1 0 0 1 0 0 0\n"
                      "33333 0.78125 1.1458333333333333 0.5 0.5 0 0 0 0 -1 3 0 1 0 -2 1 0 0 -1\n"),
    # extrinsic = world_to_camera column by column: (0, 0, 1, 0), (0, 1, 0, 0), (-1, 0, 0, 0), (t, 1); K column by column
    "open3d": ("known_o3d.json", json.dumps({"class_name": "PinholeCameraTrajectory", "version_major": 1, "version_minor": 0,
        "parameters": [{"class_name": "PinholeCameraParameters", "version_major": 1, "version_minor": 0,
                        "extrinsic": [0, 0, 1, 0, 0, 1, 0, 0, -1, 0, 0, 0, *t, 1],
                        "intrinsic": {"width": 128, "height": 96, "intrinsic_matrix": [100, 0, 0, 0, 110, 0, 63.5, 47.5, 1]}}
                       for t in ([0, 0, 0], [3, -2, -1])]})),
}


def write_known(tmp_path, format):
    name, content = KNOWN_FILES[format]
    path = tmp_path / name
    if isinstance(content, dict):
        path.mkdir()
        for file_name, text in content.items():
            (path / file_name).write_text(text)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize("format", CAMERA_FORMATS)
def test_a_hand_written_known_camera_reads_as_expected(tmp_path, format):
    path = write_known(tmp_path, format)
    assert detect_camera_format(path) == format
    trajectory = read_cameras(path, format, image_size=(128, 96) if format == "realestate10k" else None)
    expected = torch.tensor([pose(torch.tensor(KNOWN_ROTATION), (0, 0, 0)).tolist(),
                             pose(torch.tensor(KNOWN_ROTATION), (1, 2, 3)).tolist()])
    assert torch.allclose(trajectory.camera_to_world, expected.float(), atol=1e-6), trajectory.camera_to_world
    assert all(k == KNOWN_INTRINSICS for k in trajectory.intrinsics), trajectory.intrinsics
    # What the camera sees: a point 5 m down world +x is the image centre, world +y is down, world -z is right.
    camera = Camera(trajectory.intrinsics[0], trajectory.camera_to_world[0])
    for point, (u_sign, v_sign) in {(5, 0, 0): (0, 0), (5, 1, 0): (0, 1), (5, 0, -1): (1, 0)}.items():
        x, y, z = (camera.world_to_camera.double() @ torch.tensor([*point, 1.0], dtype=torch.float64))[:3].tolist()
        u, v = 100 * x / z + 63.5, 110 * y / z + 47.5
        assert z > 0 and np.sign(round(u - 63.5, 6)) == u_sign and np.sign(round(v - 47.5, 6)) == v_sign


def test_open3d_reads_what_we_write_and_we_read_what_open3d_writes(tmp_path):
    cameras = some_cameras()
    write_cameras(cameras, tmp_path / "ours.json", "open3d")
    loaded = o3d.io.read_pinhole_camera_trajectory(str(tmp_path / "ours.json"))
    assert len(loaded.parameters) == len(cameras)
    for parameters, camera in zip(loaded.parameters, cameras):
        assert np.allclose(parameters.extrinsic, camera.world_to_camera.double().numpy(), atol=1e-6)
        assert np.allclose(parameters.intrinsic.intrinsic_matrix, camera.intrinsics.matrix.numpy(), rtol=1e-9)
        assert (parameters.intrinsic.width, parameters.intrinsic.height) == (160, 90)
    o3d.io.write_pinhole_camera_trajectory(str(tmp_path / "theirs.json"), loaded)
    back = read_cameras(tmp_path / "theirs.json")
    assert torch.allclose(back.camera_to_world, torch.stack([c.camera_to_world for c in cameras]), atol=1e-5)


@pytest.mark.parametrize("format", ["colmap", "nerfstudio"])
def test_open3d_intrinsics_from_a_read_camera_match_its_principal_point_convention(tmp_path, format):
    k = read_cameras(write_known(tmp_path, format)).intrinsics[0]
    intrinsic = o3d.camera.PinholeCameraIntrinsic(k.width, k.height, k.fx, k.fy, k.cx, k.cy)
    assert np.allclose(intrinsic.intrinsic_matrix, [[100, 0, 63.5], [0, 110, 47.5], [0, 0, 1]])
    # open3d's own centred default puts the centre of a 640-wide image at 319.5: pixel centres at integers, as ours.
    default = o3d.camera.PinholeCameraIntrinsic(o3d.camera.PinholeCameraIntrinsicParameters.PrimeSenseDefault)
    assert default.intrinsic_matrix[0, 2] == (default.width - 1) / 2 and k.cx == (k.width - 1) / 2


def test_colmap_orders_images_by_name_and_skips_long_points2d_lines(tmp_path):
    folder = write_known(tmp_path, "colmap")
    points = " ".join(["12.5 30.25 -1"] * 20_000)  # a 280 kB POINTS2D line
    (folder / "images.txt").write_text(f"2 {S} 0 {-S} 0 3 -2 -1 1 frame_10.png\n{points}\n"
                                       f"1 {S} 0 {-S} 0 0 0 0 1 frame_2.png\n{points}\n")
    trajectory = read_cameras(folder / "images.txt")
    assert trajectory.name == "sparse"
    assert torch.allclose(trajectory.camera_to_world[:, :3, 3], torch.tensor([[0.0, 0, 0], [1, 2, 3]]), atol=1e-6)


def test_colmap_accepts_undistorted_radial_and_opencv_models(tmp_path):
    folder = write_known(tmp_path, "colmap")
    (folder / "cameras.txt").write_text("1 SIMPLE_RADIAL 128 96 100 64 48 0\n2 OPENCV 128 96 100 110 64 48 0 0 0 0\n")
    (folder / "images.txt").write_text("1 1 0 0 0 0 0 0 1 a.png\n\n2 1 0 0 0 0 0 0 2 b.png\n\n")
    first, second = read_cameras(folder).intrinsics
    assert (first.fx, first.fy, first.cx, second.fy, second.cy) == (100, 100, 63.5, 110, 47.5)


MIRROR = [[-1, 0, 0], [0, 1, 0], [0, 0, 1]]
SCALED = [[2, 0, 0], [0, 2, 0], [0, 0, 2]]


def nerfstudio_with(tmp_path, matrix, **keys):
    frame = {"transform_matrix": [[*row, 0] for row in matrix] + [[0, 0, 0, 1]]}
    data = {"fl_x": 100, "cx": 64, "cy": 48, "w": 128, "h": 96, **keys,
            "frames": [{"transform_matrix": np.eye(4).tolist()}, frame]}
    (tmp_path / "transforms.json").write_text(json.dumps(data))
    return tmp_path / "transforms.json"


def realestate10k_with(tmp_path, *lines):
    (tmp_path / "re10k.txt").write_text("\n".join(["https://youtu.be/x"] + list(lines)) + "\n")
    return tmp_path / "re10k.txt"


GOOD_RE10K = "0 0.8 1.1 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0"


def colmap_with(tmp_path, cameras="1 PINHOLE 128 96 100 110 64 48", image="1 1 0 0 0 0 0 0 1 b.png"):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "cameras.txt").write_text(f"# cameras\n{cameras}\n")
    (folder / "images.txt").write_text(f"# images\n1 1 0 0 0 0 0 0 1 a.png\n\n{image}\n\n")
    return folder


def mirage_with(tmp_path, matrix):
    poses = [np.eye(4).tolist(), [[*row, 0] for row in matrix] + [[0, 0, 0, 1]]]
    (tmp_path / "trajectory.json").write_text(json.dumps({"camera_to_world": poses}))
    return tmp_path / "trajectory.json"


def open3d_with(tmp_path, extrinsic_rotation=MIRROR, k=(100, 0, 0, 0, 110, 0, 63.5, 47.5, 1)):
    column_major = [v for column in zip(*extrinsic_rotation) for v in (*column, 0)] + [0, 0, 0, 1]
    entry = {"extrinsic": column_major, "intrinsic": {"width": 128, "height": 96, "intrinsic_matrix": list(k)}}
    (tmp_path / "o3d.json").write_text(json.dumps({"class_name": "PinholeCameraTrajectory", "parameters": [entry] * 2}))
    return tmp_path / "o3d.json"


@pytest.mark.parametrize("make, where, message", [
    (lambda p: nerfstudio_with(p, MIRROR), "frames[1]", "mirror"),
    (lambda p: nerfstudio_with(p, SCALED), "frames[1]", "must be a rotation matrix"),
    (lambda p: mirage_with(p, MIRROR), "pose 1", "mirror"),
    (lambda p: mirage_with(p, SCALED), "pose 1", "must be a rotation matrix"),
    (lambda p: realestate10k_with(p, GOOD_RE10K, "1 0.8 1.1 0.5 0.5 0 0 -1 0 0 0 0 1 0 0 0 0 1 0"), "line 3", "mirror"),
    (lambda p: realestate10k_with(p, GOOD_RE10K, "1 0.8 1.1 0.5 0.5 0 0 2 0 0 0 0 2 0 0 0 0 2 0"), "line 3", "rotation matrix"),
    (lambda p: open3d_with(p), "parameters[0]", "mirror"),
    # a quaternion cannot hold a mirror; a scaled rotation in COLMAP is a quaternion of another length
    (lambda p: colmap_with(p, image="2 2 0 0 0 0 0 0 1 b.png"), "images.txt line 4", "unit quaternion"),
])
def test_mirrors_and_scaled_rotations_are_refused_with_their_place(tmp_path, make, where, message):
    with pytest.raises(ValueError, match=message) as error:
        read_cameras(make(tmp_path))
    assert where in str(error.value)


@pytest.mark.parametrize("make, format, where, message", [
    (lambda p: realestate10k_with(p, GOOD_RE10K, "1 0.8 1.1 0.5 0.5 0 0 1 0 0 0 0 1"), "realestate10k", "line 3", "13 columns"),
    (lambda p: realestate10k_with(p, GOOD_RE10K, GOOD_RE10K.replace("0.8", "nan")), "realestate10k", "line 3", "column 2"),
    (lambda p: realestate10k_with(p, GOOD_RE10K, GOOD_RE10K.replace("0.8", "eight")), "realestate10k", "line 3", "not a number"),
    (lambda p: realestate10k_with(p, GOOD_RE10K, GOOD_RE10K.replace("0.8", "0")), "realestate10k", "line 3", "focal lengths must be > 0"),
    (lambda p: realestate10k_with(p, GOOD_RE10K), "realestate10k", "1 pose", "accepted: 2 to 10,000"),
    (lambda p: colmap_with(p, image="1 1 0 0 0 0 0"), "colmap", "images.txt line 4", "7 columns"),
    (lambda p: colmap_with(p, cameras="1 PINHOLE 128 96 100 64 48"), "colmap", "cameras.txt line 2", "accepted for PINHOLE"),
    (lambda p: colmap_with(p, cameras="1 OPENCV_FISHEYE 128 96 100 100 64 48 0 0 0 0"), "colmap", "line 2", "OPENCV_FISHEYE is not supported"),
    (lambda p: colmap_with(p, cameras="1 SIMPLE_RADIAL 128 96 100 64 48 0.1"), "colmap", "line 2", "distortion is not supported"),
    (lambda p: colmap_with(p, cameras="1 PINHOLE 128 96 0 110 64 48"), "colmap", "line 2", "focal lengths must be > 0"),
    (lambda p: colmap_with(p, cameras="1 PINHOLE 0 96 100 110 64 48"), "colmap", "line 2", "width and height"),
    (lambda p: colmap_with(p, image="2 1 0 0 0 0 0 0 7 b.png"), "colmap", "line 4", "CAMERA_ID 7 is not in cameras.txt"),
    (lambda p: nerfstudio_with(p, np.eye(3).tolist(), camera_model="OPENCV_FISHEYE"), "nerfstudio", "frames[0]", "OPENCV_FISHEYE"),
    (lambda p: nerfstudio_with(p, np.eye(3).tolist(), camera_model="EQUIRECTANGULAR"), "nerfstudio", "frames[0]", "not supported"),
    (lambda p: nerfstudio_with(p, np.eye(3).tolist(), k1=0.1), "nerfstudio", "frames[0]", "undistort the images first"),
    (lambda p: nerfstudio_with(p, np.eye(3).tolist(), fl_x=-5), "nerfstudio", "frames[0]", "focal lengths must be > 0"),
    (lambda p: nerfstudio_with(p, [[float("nan"), 0, 0], [0, 1, 0], [0, 0, 1]]), "nerfstudio", "frames[1] 'transform_matrix'", "finite"),
    (lambda p: open3d_with(p, np.eye(3).tolist(), k=(100, 0, 0, 0, -110, 0, 63.5, 47.5, 1)), "open3d", "parameters[0]", "> 0"),
])
def test_bad_files_are_refused_naming_the_place_and_what_is_accepted(tmp_path, make, format, where, message):
    path = make(tmp_path)
    with pytest.raises(ValueError, match="accepted") as error:
        read_cameras(path, format)
    assert where in str(error.value) and message in str(error.value), str(error.value)
    assert str(path) in str(error.value)


def mirage_intrinsics_with(tmp_path, **keys):
    k = {"fx": 100, "fy": 110, "cx": 63.5, "cy": 47.5, "width": 128, "height": 96}
    data = {"camera_to_world": [np.eye(4).tolist()] * 2, "intrinsics": [k, {**k, **keys}]}
    (tmp_path / "trajectory.json").write_text(json.dumps(data))  # NaN and Infinity as Python's json writes them
    return tmp_path / "trajectory.json"


@pytest.mark.parametrize("make, format, where, message", [
    (lambda p: nerfstudio_with(p, np.eye(3).tolist(), w=1e30), "nerfstudio", "frames[0]", "got width 1e+30"),
    (lambda p: nerfstudio_with(p, np.eye(3).tolist(), w=100_001), "nerfstudio", "frames[0]", "in [1, 100,000]"),
    (lambda p: nerfstudio_with(p, np.eye(3).tolist(), fl_x=1e300), "nerfstudio", "frames[0]", "fx = 1e+300"),
    (lambda p: nerfstudio_with(p, np.eye(3).tolist(), cy=-500), "nerfstudio", "frames[0]", "cy = -500.5 is outside"),
    (lambda p: nerfstudio_with(p, np.eye(3).tolist(), fl_x=float("nan")), "nerfstudio", "frames[0] 'fl_x'", "finite"),
    (lambda p: nerfstudio_with(p, np.eye(3).tolist(), fl_x=10**400), "nerfstudio", "frames[0] 'fl_x'", "finite"),
    (lambda p: colmap_with(p, cameras="1 PINHOLE 1e11 96 100 110 64 48"), "colmap", "cameras.txt line 2", "width 1e+11"),
    (lambda p: colmap_with(p, cameras="1 PINHOLE 128 96 100 inf 64 48"), "colmap", "cameras.txt line 2", "'inf'"),
    (lambda p: colmap_with(p, cameras="1 PINHOLE 128 96 100 110 64 48\n1 PINHOLE 128 96 90 90 64 48"), "colmap",
     "cameras.txt line 3", "camera 1 is listed twice"),
    (lambda p: colmap_with(p, image="1 1 0 0 0 0 0 1 1 b.png"), "colmap", "images.txt line 4",
     "image 1 is listed twice (first on line 2)"),
    (lambda p: colmap_with(p, image="2 1 0 0 0 nan 0 1 1 b.png"), "colmap", "images.txt line 4", "column 6 is 'nan'"),
    (lambda p: colmap_with(p, image="9" * 5000 + " 1 0 0 0 0 0 1 1 b.png"), "colmap", "images.txt line 4",
     "IMAGE_ID '9999"),
    (lambda p: realestate10k_with(p, GOOD_RE10K, GOOD_RE10K.replace("0.8", "1e300")), "realestate10k", "line 3", "fx = "),
    (lambda p: realestate10k_with(p, GOOD_RE10K, GOOD_RE10K.replace("1 0 0 0 0 1", "1 0 inf 0 0 1")), "realestate10k",
     "line 3", "'inf'"),
    (lambda p: open3d_with(p, np.eye(3).tolist(), k=(1e-9, 0, 0, 0, 110, 0, 63.5, 47.5, 1)), "open3d",
     "parameters[0]", "fx = 1e-09"),
    (lambda p: mirage_intrinsics_with(p, width=1e11), "mirage_viz", "intrinsics[1]", "width 1e+11"),
    (lambda p: mirage_intrinsics_with(p, fx=float("inf")), "mirage_viz", "intrinsics[1] 'fx'", "finite"),
    (lambda p: mirage_intrinsics_with(p, cx=float("nan")), "mirage_viz", "intrinsics[1] 'cx'", "finite"),
])
def test_absurd_intrinsics_duplicate_ids_and_non_finite_numbers_are_refused_with_their_place(tmp_path, make, format,
                                                                                             where, message):
    path = make(tmp_path)
    for given in (format, None):  # named, and detected
        with pytest.raises(ValueError, match="accepted") as error:
            read_cameras(path, given)
        assert where in str(error.value) and message in str(error.value) and str(path) in str(error.value), str(error.value)
        assert len(str(error.value)) < 600


def test_a_json_integer_of_thousands_of_digits_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "transforms.json"
    path.write_text('{"fl_x": ' + "9" * 5000 + ', "frames": []}')
    for format in ("nerfstudio", None):
        with pytest.raises(ValueError, match=r"holds an integer of more than 4,300 digits; accepted: numbers of at most "
                                             r"4,300 digits") as error:
            read_cameras(path, format)
        assert str(path) in str(error.value)


def test_a_nan_in_the_first_line_is_detected_and_refused_with_its_place(tmp_path):
    path = realestate10k_with(tmp_path, GOOD_RE10K.replace("1.1", "nan"), GOOD_RE10K)
    with pytest.raises(ValueError, match=r"line 2: column 3 is 'nan'; accepted: finite numbers"):
        read_cameras(path)


def test_a_truncated_json_file_is_refused(tmp_path):
    path = write_known(tmp_path, "nerfstudio")
    path.write_text(path.read_text()[:150])
    with pytest.raises(ValueError, match="not valid JSON"):
        read_cameras(path, "nerfstudio")


def test_a_hundred_thousand_pose_file_is_refused_quickly_at_the_limit(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("https://youtu.be/long\n" + "".join(f"{i} {GOOD_RE10K[2:]}\n" for i in range(100_000)))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"line 10002: more than 10,000 poses; accepted: 2 to 10,000"):
        read_cameras(path)
    assert time.perf_counter() - start < 5.0


def test_a_file_over_the_size_bound_a_fifo_and_a_folder_are_refused(tmp_path):
    big = tmp_path / "big.txt"
    with open(big, "wb") as handle:
        handle.truncate(65 * 2**20)  # sparse: nothing is written, nothing should be read
    with pytest.raises(ValueError, match="accepted: at most 64.0 MB"):
        read_cameras(big, "realestate10k")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ValueError, match="FIFO"):
        read_cameras(tmp_path / "pipe", "realestate10k")
    with pytest.raises(ValueError, match="FIFO"):
        detect_camera_format(tmp_path / "pipe")
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(ValueError, match="folder without COLMAP's cameras.txt and images.txt"):
        read_cameras(tmp_path / "empty_folder")
    with pytest.raises(ValueError, match="is a folder; accepted: a regular file"):
        read_cameras(tmp_path / "empty_folder", "nerfstudio")


def test_detection_refuses_unrelated_files_saying_how_formats_are_recognized(tmp_path):
    (tmp_path / "other.json").write_text(json.dumps({"vertices": [1, 2, 3]}))
    (tmp_path / "notes.txt").write_text("shopping list\neggs 12\n")
    for path in (tmp_path / "other.json", tmp_path / "notes.txt"):
        with pytest.raises(ValueError, match="cannot tell the camera format") as error:
            detect_camera_format(path)
        for hint in ("'camera_to_world'", "'frames'", "PinholeCameraTrajectory", "cameras.txt and images.txt", "19 numbers"):
            assert hint in str(error.value)


def test_a_named_format_refuses_a_file_of_another(tmp_path):
    path = write_known(tmp_path, "nerfstudio")
    for format, message in [("open3d", "class_name 'PinholeCameraTrajectory'"), ("mirage_viz", "camera_to_world"),
                            ("colmap", "not a COLMAP text model"), ("realestate10k", "accepted: 19 numbers")]:
        with pytest.raises(ValueError, match=message):
            read_cameras(path, format)
    with pytest.raises(ValueError, match="unknown camera format 'blender'"):
        read_cameras(path, "blender")
    with pytest.raises(ValueError, match="image_size is for realestate10k"):
        read_cameras(path, image_size=(64, 48))


@pytest.mark.parametrize("format", CAMERA_FORMATS)
def test_a_failing_write_leaves_nothing_behind(tmp_path, format):
    cameras = some_cameras()
    with pytest.raises(ValueError, match="2 to 10,000 Camera objects"):
        write_cameras(cameras[:1], target(tmp_path, format), format)
    with pytest.raises(ValueError, match="does not exist"):
        write_cameras(cameras, tmp_path / "missing" / "cameras", format)
    with pytest.raises(ValueError, match="one line"):
        write_cameras(cameras, target(tmp_path, format), format, name="two\nlines")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "keep").write_text("keep")
    with pytest.raises(ValueError, match="2 to 10,000"):
        write_cameras(cameras[:1], tmp_path / "keep", format)
    assert list(tmp_path.iterdir()) == [tmp_path / "keep"] and (tmp_path / "keep").read_text() == "keep"


def test_writers_refuse_what_their_format_cannot_hold(tmp_path):
    cameras = some_cameras()
    with pytest.raises(ValueError, match="first line is one word"):
        write_cameras(cameras, tmp_path / "a.txt", "realestate10k", name="two words")
    cameras[1] = Camera(cameras[1].intrinsics.scaled_to(320, 180), cameras[1].camera_to_world)
    with pytest.raises(ValueError, match="must share one"):
        write_cameras(cameras, tmp_path / "a.txt", "realestate10k")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "project.ini").write_text("")
    with pytest.raises(ValueError, match=r"it holds files \(project.ini\); accepted: a new folder, or an empty one"):
        write_cameras(cameras, tmp_path / "model", "colmap")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_colmap_writes_pinhole_cameras_into_a_new_or_empty_folder_only(tmp_path):
    cameras = some_cameras()
    write_cameras(cameras[:2], tmp_path / "model", "colmap")
    with pytest.raises(ValueError, match="it holds files"):  # replacing is the command line's, by the marker rules
        write_cameras(cameras, tmp_path / "model", "colmap", overwrite=True)
    (tmp_path / "empty").mkdir()
    paths = write_cameras(cameras, tmp_path / "empty", "colmap")
    assert sorted(p.name for p in paths) == sorted(os.listdir(tmp_path / "empty")) == ["cameras.txt", "images.txt", "points3D.txt"]
    assert sorted(os.listdir(tmp_path)) == ["empty", "model"]
    assert len(read_cameras(tmp_path / "model").camera_to_world) == 2
    shutil.rmtree(tmp_path / "model")
    (tmp_path / "empty").rename(tmp_path / "model")
    lines = [line for line in (tmp_path / "model" / "cameras.txt").read_text().splitlines() if not line.startswith("#")]
    assert len(lines) == 4 and all(line.split()[1] == "PINHOLE" for line in lines)
    assert (tmp_path / "model" / "points3D.txt").read_text().startswith("# 3D point list")
    assert len(read_cameras(tmp_path / "model").camera_to_world) == 4


@pytest.mark.parametrize("format", FILE_FORMATS)
def test_a_write_failing_at_the_last_step_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, format):
    cameras = some_cameras()
    path = target(tmp_path, format)
    write_cameras(cameras[:2], path, format)
    before = path.read_text()
    move = os.replace

    def failing_move(source, destination):
        if ".tmp" in str(source):  # the new file, moving into place
            raise OSError("disk full")
        return move(source, destination)

    monkeypatch.setattr(os, "replace", failing_move)
    with pytest.raises(OSError, match="disk full"):
        write_cameras(cameras, path, format, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == [path.name] and path.read_text() == before
