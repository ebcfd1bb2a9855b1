import pytest
import torch

from mirage_viz.geometry import backproject_depth, splat_points, splat_points_reference
from mirage_viz.geometry.cameras import Camera, Intrinsics


@pytest.mark.parametrize("tie_bits", [23, 7, 2, 0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorized_splat_matches_the_loop_reference(random_camera, seed, tie_bits):
    g = torch.Generator().manual_seed(seed)
    points = torch.randn(600, 3, generator=g) * torch.tensor([2.0, 1.5, 1.0]) + torch.tensor([0.0, 0.0, 3.0])
    features = torch.randn(600, 5, generator=g)
    camera = random_camera(seed)
    expected, expected_mask = splat_points_reference(points, features, camera, depth_tie_bits=tie_bits)
    result = splat_points(points, features, camera, depth_tie_bits=tie_bits)
    assert torch.equal(result.mask, expected_mask)
    assert torch.allclose(result.features, expected, atol=1e-6)


def test_identity_camera_returns_its_input():
    camera = Camera(Intrinsics.from_fov(32, 24, 70.0), torch.eye(4))
    depth = 1.0 + torch.rand(24, 32)
    features = torch.randn(24 * 32, 4)
    result = splat_points(backproject_depth(depth, camera), features, camera)
    assert result.mask.all()
    assert torch.allclose(result.features, features.T.reshape(4, 24, 32))
    assert torch.allclose(result.depth, depth)


def test_fronto_parallel_plane_shifts_by_predicted_cells():
    k = Intrinsics(fx=16.0, fy=16.0, cx=15.5, cy=15.5, width=32, height=32)
    depth, shift = 4.0, 1.0  # a plane 4 m away, camera moves 1 m to the right
    source = Camera(k, torch.eye(4))
    moved = torch.eye(4)
    moved[0, 3] = shift
    target = Camera(k, moved)
    columns = torch.arange(32.0).repeat(32, 1)
    result = splat_points(backproject_depth(torch.full((32, 32), depth), source), columns.reshape(-1, 1), target)
    expected_cells = k.fx * shift / depth  # = 4 cells to the left
    assert expected_cells == 4.0
    assert not result.mask[:, -4:].any() and result.mask[:, :-4].all()
    assert torch.equal(result.features[0][:, :-4], columns[:, 4:])


def test_nearer_of_two_points_in_one_cell_wins():
    camera = Camera(Intrinsics(fx=10.0, fy=10.0, cx=2.0, cy=2.0, width=5, height=5), torch.eye(4))
    points = torch.tensor([[0.0, 0.0, 3.0], [0.0, 0.0, 2.0], [0.01, 0.0, 5.0]])
    features = torch.tensor([[1.0], [2.0], [3.0]])
    result = splat_points(points, features, camera)
    assert result.features[0, 2, 2] == 2.0 and result.depth[2, 2] == 2.0
    assert result.point_index[2, 2] == 1
    assert result.mask.sum() == 1 and result.features.sum() == 2.0


def test_within_the_depth_tolerance_the_earliest_point_wins():
    camera = Camera(Intrinsics(fx=10.0, fy=10.0, cx=2.0, cy=2.0, width=5, height=5), torch.eye(4))
    points = torch.tensor([[0.0, 0.0, 3.01], [0.0, 0.0, 3.005], [0.0, 0.0, 2.5]])  # 0.2% and 17% nearer
    features = torch.tensor([[1.0], [2.0], [3.0]])
    assert splat_points(points[:2], features[:2], camera).point_index[2, 2] == 0  # a tie: the first written
    assert splat_points(points[:2], features[:2], camera, depth_tie_bits=23).point_index[2, 2] == 1
    assert splat_points(points, features, camera).point_index[2, 2] == 2  # clearly nearer still wins
    with pytest.raises(ValueError, match="depth_tie_bits must be an integer in \\[0, 23\\]"):
        splat_points(points, features, camera, depth_tie_bits=24)


def test_the_tolerance_is_relative_to_the_nearest_point_not_a_bin():
    """1.99 m and 2.01 m are 1% apart: a tie at any tolerance from 2**-6 up, though they straddle a power of two
    (the octave bins of float32 depth bits would have split them); with tie bits 0, anything up to twice as far ties."""
    camera = Camera(Intrinsics(fx=10.0, fy=10.0, cx=2.0, cy=2.0, width=5, height=5), torch.eye(4))
    features = torch.tensor([[1.0], [2.0]])
    straddling = torch.tensor([[0.0, 0.0, 2.01], [0.0, 0.0, 1.99]])
    for bits in (0, 3, 6):
        assert splat_points(straddling, features, camera, depth_tie_bits=bits).point_index[2, 2] == 0
    assert splat_points(straddling, features, camera, depth_tie_bits=8).point_index[2, 2] == 1
    twice = torch.tensor([[0.0, 0.0, 3.9], [0.0, 0.0, 2.0]])
    assert splat_points(twice, features, camera, depth_tie_bits=0).point_index[2, 2] == 0
    farther = torch.tensor([[0.0, 0.0, 4.1], [0.0, 0.0, 2.0]])  # more than twice as far: the nearer wins
    assert splat_points(farther, features, camera, depth_tie_bits=0).point_index[2, 2] == 1


def test_points_behind_or_outside_leave_empty_zero_cells():
    camera = Camera(Intrinsics.from_fov(8, 8), torch.eye(4))
    points = torch.tensor([[0.0, 0.0, -1.0], [100.0, 0.0, 1.0]])
    result = splat_points(points, torch.ones(2, 3), camera)
    assert not result.mask.any() and result.features.abs().sum() == 0 and (result.point_index == -1).all()


def test_no_points_give_an_empty_grid_and_bad_shapes_a_message():
    camera = Camera(Intrinsics.from_fov(8, 6), torch.eye(4))
    result = splat_points(torch.zeros(0, 3), torch.zeros(0, 4), camera)
    assert result.features.shape == (4, 6, 8) and not result.mask.any() and (result.point_index == -1).all()
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        splat_points(torch.zeros(5, 2), torch.zeros(5, 4), camera)


def test_empty_cells_stay_zero_whatever_the_points_hold():
    camera = Camera(Intrinsics(fx=10.0, fy=10.0, cx=2.0, cy=2.0, width=5, height=5), torch.eye(4))
    features = torch.tensor([[float("nan")], [1.0]])
    result = splat_points(torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 2.0]]), features, camera)
    assert result.features[0, 2, 2] == 1.0 and result.features[0][~result.mask].eq(0).all()
