import pytest
import torch

from mirage_viz.geometry.cameras import Camera, Intrinsics
from mirage_viz.scenes.trajectories import make_trajectory
from mirage_viz.scenes.worlds import WORLD_NAMES, make_world


@pytest.mark.parametrize("name", WORLD_NAMES)
def test_worlds_render_rgb_and_positive_finite_depth(name):
    world = make_world(name)
    render = world.render(Camera(Intrinsics.from_fov(64, 48), torch.eye(4)))
    assert render.rgb.shape == (3, 48, 64) and render.depth.shape == (48, 64)
    assert 0 <= render.rgb.min() and render.rgb.max() <= 1
    assert torch.isfinite(render.depth).all() and (render.depth > 0).all()
    assert world.object_count >= 5


def test_same_seed_same_world_other_seed_other_world():
    camera = Camera(Intrinsics.from_fov(48, 48), torch.eye(4))
    a, b, c = make_world("room", 0), make_world("room", 0), make_world("room", 1)
    assert torch.equal(a.render(camera).rgb, b.render(camera).rgb)
    assert not torch.equal(a.render(camera).rgb, c.render(camera).rgb)


def test_depth_is_z_along_the_optical_axis():
    world = make_world("room")
    looking_back = torch.diag(torch.tensor([-1.0, 1.0, -1.0, 1.0]))  # turned 180 degrees: no objects behind
    camera = Camera(Intrinsics.from_fov(33, 33, 90.0), looking_back)
    depth = world.render(camera).depth
    # The floor is the plane y = camera_height: a floor pixel at row v has z-depth fy * h / (v - cy).
    k = camera.intrinsics
    for v in (28, 32):
        assert float(depth[v, 0]) == pytest.approx(k.fy * world.camera_height / (v - k.cy), rel=1e-4)
        assert float(depth[v, 16]) == pytest.approx(float(depth[v, 0]), rel=1e-4)  # z-depth, not ray length


def test_moving_camera_sees_occlusion_change():
    world = make_world("room")
    k = Intrinsics.from_fov(64, 64)
    poses = make_trajectory("move_right", 4).camera_to_world
    first, last = (world.render(Camera(k, p)).depth for p in (poses[0], poses[-1]))
    assert (first - last).abs().mean() > 0.1


def test_unknown_world_is_refused():
    with pytest.raises(ValueError, match="accepted: room"):
        make_world("castle")
    with pytest.raises(ValueError, match="seed"):
        make_world("room", -1)
