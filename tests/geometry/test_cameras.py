import math

import pytest
import torch

from mirage_viz.geometry.cameras import Camera, Intrinsics, invert_pose, look_at_camera_to_world


def test_from_fov_puts_principal_point_at_centre():
    k = Intrinsics.from_fov(256, 128, 90.0)
    assert k.cx == pytest.approx(127.5) and k.cy == pytest.approx(63.5)
    assert k.fx == pytest.approx(128.0) and k.fy == k.fx


def test_scaling_to_latent_grid_is_per_axis():
    k = Intrinsics(fx=200.0, fy=150.0, cx=127.5, cy=63.5, width=256, height=128)
    s = k.scaled_to(32, 32)  # 8x in x, 4x in y
    assert (s.fx, s.fy) == pytest.approx((25.0, 37.5))
    assert (s.cx, s.cy) == pytest.approx((15.5, 15.5))  # the image centre stays at the grid centre
    assert (s.width, s.height) == (32, 32)


def test_scaled_camera_projects_a_point_to_the_same_relative_place():
    k = Intrinsics.from_fov(256, 256, 60.0)
    point = torch.tensor([0.3, -0.2, 2.0])
    u = k.fx * point[0] / point[2] + k.cx
    s = k.scaled_to(32, 32)
    u_latent = s.fx * point[0] / point[2] + s.cx
    assert float(u_latent + 0.5) * 8 == pytest.approx(float(u) + 0.5, abs=1e-4)


@pytest.mark.parametrize(
    "kwargs",
    [dict(fx=0.0), dict(fy=-1.0), dict(fx=math.nan), dict(cx=math.inf), dict(width=0), dict(height=-4)],
)
def test_degenerate_intrinsics_are_refused(kwargs):
    base = dict(fx=100.0, fy=100.0, cx=32.0, cy=32.0, width=64, height=64)
    with pytest.raises(ValueError, match="intrinsics"):
        Intrinsics(**(base | kwargs))


def test_world_to_camera_inverts_camera_to_world():
    c2w = look_at_camera_to_world(torch.tensor([1.0, -0.5, -2.0]), torch.tensor([0.0, 0.0, 3.0]))
    camera = Camera(Intrinsics.from_fov(64, 64), c2w)
    assert torch.allclose(camera.world_to_camera @ camera.camera_to_world, torch.eye(4), atol=1e-5)
    assert torch.allclose(invert_pose(invert_pose(c2w)), c2w, atol=1e-6)


def test_look_at_faces_the_target_along_plus_z():
    c2w = look_at_camera_to_world(torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 5.0]))
    assert torch.allclose(c2w, torch.eye(4), atol=1e-6)


def test_camera_refuses_a_non_rotation():
    pose = torch.eye(4)
    pose[0, 0] = 2.0
    with pytest.raises(ValueError, match="rotation"):
        Camera(Intrinsics.from_fov(8, 8), pose)
