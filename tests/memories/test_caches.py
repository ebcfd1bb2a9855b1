"""The caches under the memories: the flat growing cache and the voxel-fused one (mirage_viz.memories.point_cache,
mirage_viz.memories.voxel_cache)."""

import pytest
import torch

from mirage_viz.bench.fidelity import trajectory_views
from mirage_viz.memories import LatentSpatialMemory, PointCache, VoxelPointCache


@pytest.fixture(scope="module")
def loop_views(backbone):
    return trajectory_views("room", "loop", 6, 64, backbone)


def test_fusion_keeps_a_cache_of_revisited_views_bounded(loop_views):
    flat = LatentSpatialMemory()
    fused = LatentSpatialMemory(voxel_size=0.05, latent_dtype="float16")
    counts = []
    for lap in range(3):  # the same loop three times round: every later view is a revisit
        for view in loop_views:
            flat.write(view)
            fused.write(view)
        counts.append(fused.stats().points)
    assert counts[0] == counts[1] == counts[2]  # nothing new after the first lap
    assert flat.stats().points == 3 * len(loop_views) * 8 * 8
    assert fused.stats().bytes < flat.stats().bytes / 3
    assert not fused.append_only and flat.append_only


def test_fusion_keeps_the_first_point_written_in_each_voxel():
    point = torch.tensor([[0.51, 0.52, 3.03]])
    cache = VoxelPointCache(0.1)
    cache.append(point, torch.tensor([[1.0, 0.0]]))
    cache.append(torch.cat([point + 0.01, point + 1.0]), torch.tensor([[3.0, 2.0], [5.0, 5.0]]))  # same voxel, another
    points, features = cache.tensors()
    assert len(cache) == 2 and cache.nbytes == points.nbytes + features.nbytes
    assert torch.equal(points[0], point[0]) and features.tolist() == [[1.0, 0.0], [5.0, 5.0]]  # its own position kept
    with pytest.raises(ValueError, match="voxel_size"):
        VoxelPointCache(0.0)
    with pytest.raises(ValueError, match="larger voxel_size"):
        VoxelPointCache(0.001).append(torch.tensor([[100.0, 0.0, 0.0]]), torch.ones(1, 2))  # 100,000 voxels out


def test_point_cache_grows_without_losing_rows():
    cache = PointCache(torch.float16)
    chunks = [(torch.randn(n, 3), torch.randn(n, 4)) for n in (5, 7, 30, 1)]
    for points, features in chunks:
        before = cache.tensors()[0].clone()
        cache.append(points, features)
        assert torch.equal(cache.tensors()[0][: before.shape[0]], before)  # earlier rows kept through growth
    points, features = cache.tensors()
    assert points.shape == (43, 3) and features.shape == (43, 4) and points.dtype == torch.float16
    assert torch.allclose(features.float(), torch.cat([f for _, f in chunks]), atol=1e-2)
    assert cache.nbytes == 43 * 7 * 2 <= cache.capacity_nbytes
    with pytest.raises(ValueError, match="channels"):
        cache.append(torch.zeros(1, 3), torch.zeros(1, 5))
