import pytest
import torch

from mirage_viz.geometry import (backproject_depth, refine_splat_subcell, refine_splat_subcell_reference, seen_along_ray,
                                 splat_points, splat_points_reference)
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


def _ramp_plane_moved_by(shift_cells: float):
    """A fronto-parallel plane lifted from a 32x32 grid whose feature is a linear ramp (2 * col + row), and the same
    camera moved sideways so the plane slides by ``shift_cells`` cells."""
    k = Intrinsics(fx=16.0, fy=16.0, cx=15.5, cy=15.5, width=32, height=32)
    depth = 4.0
    moved = torch.eye(4)
    moved[0, 3] = shift_cells * depth / k.fx  # metres that slide the plane by shift_cells to the left
    rows, cols = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    features = torch.stack([2 * cols + rows, torch.ones(32, 32)]).reshape(2, -1).T  # [N, 2]
    points = backproject_depth(torch.full((32, 32), depth), Camera(k, torch.eye(4)))
    return points, features, Camera(k, moved), cols, rows


@pytest.mark.parametrize("shift", [0.3, 0.6, 1.7])
def test_subcell_refinement_resamples_a_grid_where_rounding_shifts_it(shift):
    points, features, target, cols, rows = _ramp_plane_moved_by(shift)
    nearest = splat_points(points, features, target)
    refined = refine_splat_subcell(points, features, target, nearest)
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[1:-1, 1:-4] = True  # cells whose four neighbours in the source grid all exist
    expected = 2 * (cols + shift) + rows  # the ramp sampled at the moved camera's cell centres
    assert torch.equal(refined.mask, nearest.mask) and torch.equal(refined.point_index, nearest.point_index)
    assert torch.allclose(refined.features[0][inside], expected[inside], atol=1e-3)
    assert torch.allclose(refined.features[1][refined.mask], torch.ones(int(refined.mask.sum())))  # weights normalized
    rounding_error = (nearest.features[0][inside] - expected[inside]).abs().max()
    assert rounding_error >= 2 * min(shift % 1, 1 - shift % 1) - 1e-3  # nearest rounding is off by the fraction


def test_subcell_refinement_blends_only_the_winners_group_and_surface():
    points, features, target, _, _ = _ramp_plane_moved_by(0.4)
    later = points.clone()  # the same plane written again by a later frame, with other features
    behind = points.clone()
    behind[:, 2] += 1.0  # and a plane 1 m behind it, in the winner's group
    all_points = torch.cat([points, later, behind])
    all_features = torch.cat([features, torch.full_like(features, -100.0), torch.full_like(features, 100.0)])
    groups = torch.cat([torch.zeros(len(points)), torch.ones(len(points)), torch.zeros(len(points))]).long()
    nearest = splat_points(all_points, all_features, target, depth_tie_bits=0)
    refined = refine_splat_subcell(all_points, all_features, target, nearest, groups=groups)
    alone = refine_splat_subcell(points, features, target, splat_points(points, features, target))
    assert torch.allclose(refined.features[:, refined.mask], alone.features[:, refined.mask], atol=1e-4)
    with pytest.raises(ValueError, match="groups"):
        refine_splat_subcell(all_points, all_features, target, nearest, groups=groups[:5])
    with pytest.raises(ValueError, match="depth_tolerance"):
        refine_splat_subcell(all_points, all_features, target, nearest, depth_tolerance=-1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorized_subcell_refinement_matches_the_loop_reference(random_camera, seed):
    g = torch.Generator().manual_seed(seed)
    points = torch.randn(400, 3, generator=g) * torch.tensor([1.5, 1.0, 0.3]) + torch.tensor([0.0, 0.0, 3.0])
    features = torch.randn(400, 3, generator=g)
    groups = torch.randint(0, 3, (400,), generator=g)
    camera = random_camera(seed)
    splat = splat_points(points, features, camera, depth_tie_bits=0)
    refined = refine_splat_subcell(points, features, camera, splat, groups=groups)
    expected = refine_splat_subcell_reference(points, features, camera, splat, groups=groups)
    assert splat.mask.sum() > 20
    assert torch.allclose(refined.features, expected, atol=1e-5)
    with pytest.raises(ValueError, match="refine the splat of these points into this camera"):
        refine_splat_subcell(points, features[:, :2], camera, splat)


def _turned(yaw: float, center: tuple[float, float, float], intrinsics: Intrinsics) -> Camera:
    c, s = torch.cos(torch.tensor(yaw)), torch.sin(torch.tensor(yaw))
    pose = torch.eye(4)
    pose[:3, :3] = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    pose[:3, 3] = torch.tensor(center)
    return Camera(intrinsics, pose)


def test_points_are_seen_along_the_ray_only_from_the_same_ray_and_no_farther():
    intrinsics = Intrinsics(fx=20.0, fy=20.0, cx=15.5, cy=15.5, width=32, height=32)  # a cell: 1/20 rad
    points = torch.tensor([[0.0, 0.0, 2.0], [0.5, -0.2, 3.0], [-0.4, 0.3, 1.5]])
    source = torch.zeros(3, 3)  # every point lifted from a camera at the origin
    # the same centre, turned and zoomed: the same rays, so every point is seen
    assert seen_along_ray(points, source, _turned(0.3, (0.0, 0.0, 0.0), intrinsics)).all()
    # 1 mm sideways: the rays differ by ~0.001 / 2 rad (0.01 to 0.02 cells) -> seen; 10 cm: 1 to 2 cells -> not
    assert seen_along_ray(points, source, _turned(0.0, (0.001, 0.0, 0.0), intrinsics)).all()
    assert not seen_along_ray(points, source, _turned(0.0, (0.02, 0.0, 0.0), intrinsics)).any()  # 0.2 to 0.4 cells
    assert not seen_along_ray(points, source, _turned(0.0, (0.1, 0.0, 0.0), intrinsics)).any()
    # along the ray towards the point (nearer) is seen; backing away from it (farther than the source) is not
    assert seen_along_ray(points[:1], source[:1], _turned(0.0, (0.0, 0.0, 1.0), intrinsics)).all()
    assert not seen_along_ray(points[:1], source[:1], _turned(0.0, (0.0, 0.0, -1.0), intrinsics)).any()
    # past the point, looking back along the ray: the other side of the surface
    assert not seen_along_ray(points[:1], source[:1], _turned(3.14159, (0.0, 0.0, 4.0), intrinsics)).any()
    # the tolerance is in the new camera's cells: a wider one admits the 10 cm step, where it brings the camera no
    # farther from the point (the third point is 2% farther away from there)
    wide = seen_along_ray(points, source, _turned(0.0, (0.1, 0.0, 0.0), intrinsics), angle_cells=4.0)
    assert wide.tolist() == [True, True, False]
    with pytest.raises(ValueError, match="both have shape \\(N, 3\\)"):
        seen_along_ray(points, source[:2], _turned(0.0, (0.0, 0.0, 0.0), intrinsics))
    with pytest.raises(ValueError, match="angle_cells must be > 0"):
        seen_along_ray(points, source, _turned(0.0, (0.0, 0.0, 0.0), intrinsics), angle_cells=0.0)


def test_a_seen_point_keeps_its_cell_from_a_point_in_front_that_only_shares_it():
    camera = Camera(Intrinsics(fx=10.0, fy=10.0, cx=2.0, cy=2.0, width=5, height=5), torch.eye(4))
    # cell (2, 2): a wall point on the cell's centre ray (seen), and a point of another view 2.5x nearer, off-centre;
    # cell (2, 3): the same pair, nothing seen
    points = torch.tensor([[0.0, 0.0, 5.0], [0.03, 0.02, 2.0], [0.5, 0.0, 5.0], [0.23, 0.02, 2.0]])
    features = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    seen = torch.tensor([True, False, False, False])
    plain = splat_points(points, features, camera, depth_tie_bits=0)
    assert plain.point_index[2, 2] == 1 and plain.point_index[2, 3] == 3  # the z-test: the nearer point wins
    result = splat_points(points, features, camera, depth_tie_bits=0, seen=seen)
    assert result.point_index[2, 2] == 0 and result.depth[2, 2] == 5.0  # the seen point keeps its cell
    assert result.point_index[2, 3] == 3  # a cell no seen point reaches: the z-test as before
    expected, expected_mask = splat_points_reference(points, features, camera, depth_tie_bits=0, seen=seen)
    assert torch.equal(result.mask, expected_mask) and torch.equal(result.features, expected)
    # on its own surface the seen point only ties: a point written before it at 5% nearer keeps the cell (first-hand)
    earlier = torch.tensor([[0.01, 0.0, 4.75], [0.0, 0.0, 5.0], [0.03, 0.02, 2.0]])
    tied = splat_points(earlier, features[:3], camera, depth_tie_bits=0, seen=torch.tensor([False, True, False]))
    assert tied.point_index[2, 2] == 0
    with pytest.raises(ValueError, match="seen must be a bool tensor of shape \\(N,\\)"):
        splat_points(points, features, camera, seen=torch.ones(3, dtype=torch.bool))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorized_splat_with_seen_points_matches_the_loop_reference(random_camera, seed):
    g = torch.Generator().manual_seed(seed)
    points = torch.randn(600, 3, generator=g) * torch.tensor([2.0, 1.5, 1.0]) + torch.tensor([0.0, 0.0, 3.0])
    features = torch.randn(600, 5, generator=g)
    seen = torch.rand(600, generator=g) < 0.2
    camera = random_camera(seed)
    expected, expected_mask = splat_points_reference(points, features, camera, depth_tie_bits=2, seen=seen)
    result = splat_points(points, features, camera, depth_tie_bits=2, seen=seen)
    assert torch.equal(result.mask, expected_mask)
    assert torch.allclose(result.features, expected, atol=1e-6)
    assert not torch.equal(result.features, splat_points(points, features, camera, depth_tie_bits=2).features)
