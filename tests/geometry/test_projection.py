import pytest
import torch

from mirage_viz.geometry import backproject_depth, camera_rays, make_pose, project_points, rotation_x, rotation_y
from mirage_viz.geometry.cameras import Camera, Intrinsics


def test_rays_and_poses_follow_the_opencv_convention():
    k = Intrinsics(fx=10.0, fy=20.0, cx=1.5, cy=0.5, width=4, height=2)
    rays = camera_rays(k)  # row-major: (u, v) = (0, 0), (1, 0), ... (3, 1)
    assert rays.shape == (8, 3) and torch.equal(rays[:, 2], torch.ones(8))
    assert torch.allclose(rays[5], torch.tensor([(1 - 1.5) / 10.0, (1 - 0.5) / 20.0, 1.0]))
    forward = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    assert torch.allclose(rotation_y(torch.pi / 2) @ forward, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))  # right
    assert torch.allclose(rotation_x(torch.pi / 2) @ forward, torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64))
    pose = make_pose(rotation_y(0.3), (1.0, 2.0, 3.0))
    assert pose.dtype == torch.float64 and torch.equal(pose[3], torch.tensor([0.0, 0, 0, 1], dtype=torch.float64))
    assert torch.allclose(torch.linalg.det(pose[:3, :3]), torch.tensor(1.0, dtype=torch.float64))


def test_backproject_then_project_is_identity(random_camera):
    camera = random_camera(7, width=20, height=12)
    depth = 0.5 + 3 * torch.rand(12, 20)
    uv, z = project_points(backproject_depth(depth, camera), camera)
    v, u = torch.meshgrid(torch.arange(12.0), torch.arange(20.0), indexing="ij")
    assert torch.allclose(uv, torch.stack([u.flatten(), v.flatten()], -1), atol=1e-3)
    assert torch.allclose(z, depth.flatten(), atol=1e-4)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -1.0])
def test_bad_depth_is_refused_with_a_clear_message(bad):
    depth = torch.ones(4, 4)
    depth[1, 2] = bad
    with pytest.raises(ValueError, match="depth"):
        backproject_depth(depth, Camera(Intrinsics.from_fov(4, 4), torch.eye(4)))


def test_depth_must_match_the_camera_grid():
    with pytest.raises(ValueError, match="scale the intrinsics"):
        backproject_depth(torch.ones(4, 4), Camera(Intrinsics.from_fov(8, 8), torch.eye(4)))
