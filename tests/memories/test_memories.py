import pytest
import torch
import torch.nn.functional as F

from mirage_viz.geometry.cameras import Intrinsics
from mirage_viz.memories import LatentSpatialMemory, NoMemory, Observation, PointCache, RGBPointCloudMemory
from mirage_viz.scenes.trajectories import make_trajectory
from mirage_viz.scenes.worlds import make_world

SIZE, FACTOR, CHANNELS = 256, 8, 4


def pooling_encoder(images: torch.Tensor) -> torch.Tensor:
    """A stand-in VAE encoder with f = 8 and C = 4: (B, 3, H, W) -> (B, 4, H / 8, W / 8)."""
    pooled = F.avg_pool2d(images, FACTOR)
    return torch.cat([pooled, pooled.mean(1, keepdim=True)], dim=1)


def observation(world, camera) -> Observation:
    render = world.render(camera)
    return Observation(camera=camera, image=render.rgb, latent=pooling_encoder(render.rgb[None])[0], depth=render.depth)


@pytest.fixture(scope="module")
def scene():
    world = make_world("room")
    k = Intrinsics.from_fov(SIZE, SIZE, 60.0)
    cameras = make_trajectory("move_right", 4, magnitude=0.6).cameras(k)
    return world, cameras, [observation(world, c) for c in cameras]


def test_latent_cache_is_over_40x_smaller_than_the_rgb_cache(scene):
    _, _, observations = scene
    latent, rgb = LatentSpatialMemory(), RGBPointCloudMemory(pooling_encoder)
    for obs in observations:
        latent.write(obs)
        rgb.write(obs)
    latent_stats, rgb_stats = latent.stats(), rgb.stats()
    frames = len(observations)
    assert latent_stats.points == frames * (SIZE // FACTOR) ** 2
    assert rgb_stats.points == frames * SIZE**2
    assert latent_stats.bytes == frames * (SIZE // FACTOR) ** 2 * (3 + CHANNELS) * 4  # xyz + C float32
    assert rgb_stats.bytes / latent_stats.bytes >= 40.0
    assert rgb_stats.bytes / latent_stats.bytes == pytest.approx(64 * 6 / 7, rel=1e-6)


def test_masks_of_both_memories_agree_up_to_resolution(scene):
    _, cameras, observations = scene
    latent, rgb = LatentSpatialMemory(), RGBPointCloudMemory(pooling_encoder)
    latent.write(observations[0])
    rgb.write(observations[0])
    shape = (CHANNELS, SIZE // FACTOR, SIZE // FACTOR)
    latent_read, rgb_read = latent.read(cameras[-1], shape), rgb.read(cameras[-1], shape)
    assert 0.5 < latent_read.coverage < 1.0  # a real disocclusion to compare
    agreement = (latent_read.mask == rgb_read.mask).float().mean().item()
    assert agreement > 0.9
    # Where they disagree, the pixel render is partly covered: a boundary effect, not a different answer.
    pixel_coverage = F.avg_pool2d(rgb_read.render_mask[None, None].float(), FACTOR)[0, 0]
    disagree = latent_read.mask != rgb_read.mask
    assert ((pixel_coverage[disagree] > 0.0) & (pixel_coverage[disagree] < 1.0)).float().mean() > 0.5


def test_reading_the_written_camera_returns_the_written_latent(scene):
    _, cameras, observations = scene
    memory = LatentSpatialMemory()
    memory.write(observations[0])
    read = memory.read(cameras[0], tuple(observations[0].latent.shape))
    assert read.mask.all()
    assert torch.allclose(read.latent, observations[0].latent)


def test_rgb_read_is_the_vae_round_trip_of_its_render(scene):
    _, cameras, observations = scene
    memory = RGBPointCloudMemory(pooling_encoder)
    memory.write(observations[0])
    read = memory.read(cameras[1], (CHANNELS, SIZE // FACTOR, SIZE // FACTOR))
    assert read.render.shape == (3, SIZE, SIZE)
    assert torch.allclose(read.latent, pooling_encoder(read.render[None])[0] * read.mask)


def test_half_precision_cache_halves_the_bytes(scene):
    _, _, observations = scene
    full, half = LatentSpatialMemory(), LatentSpatialMemory(latent_dtype="float16")
    full.write(observations[0])
    half.write(observations[0])
    assert half.stats().bytes * 2 == full.stats().bytes


def test_no_memory_and_empty_memories_read_nothing(scene):
    _, cameras, observations = scene
    shape = (CHANNELS, 32, 32)
    none = NoMemory()
    none.write(observations[0])
    for memory in (none, LatentSpatialMemory(), RGBPointCloudMemory(pooling_encoder)):
        read = memory.read(cameras[0], shape)
        assert not read.mask.any() and read.latent.abs().sum() == 0


def test_reset_forgets(scene):
    _, _, observations = scene
    memory = LatentSpatialMemory()
    memory.write(observations[0])
    memory.reset()
    assert memory.stats().points == 0 and memory.stats().bytes == 0


def test_unknown_depth_mode_is_refused():
    with pytest.raises(ValueError, match="depth_mode"):
        LatentSpatialMemory(depth_mode="bicubic")


# -- undo: snapshot and restore ------------------------------------------------------------------
def _state(memory) -> list[torch.Tensor]:
    """Everything a memory answers with: its cache and a read (stored dtype, so nothing is hidden by a cast)."""
    cache = getattr(memory, "cache", None)
    stored = list(cache.tensors()) if cache is not None else list(memory.cached_points())
    if cache is not None and hasattr(cache, "_counts"):
        stored.append(cache._counts)
    return stored + [memory.stats().points, memory.stats().bytes]


def _assert_same_state(a, b, camera) -> None:
    for x, y in zip(_state(a), _state(b), strict=True):
        assert torch.equal(torch.as_tensor(x), torch.as_tensor(y))
    shape = (CHANNELS, SIZE // FACTOR, SIZE // FACTOR)
    read_a, read_b = a.read(camera, shape), b.read(camera, shape)
    assert torch.equal(read_a.latent, read_b.latent) and torch.equal(read_a.mask, read_b.mask)


MEMORY_KINDS = {
    "flat": lambda: LatentSpatialMemory(),
    "flat_float16": lambda: LatentSpatialMemory(latent_dtype="float16"),
    "pixel_lift": lambda: LatentSpatialMemory(lift="pixel"),
    "voxel": lambda: LatentSpatialMemory(voxel_size=0.05),
    "rgb": lambda: RGBPointCloudMemory(pooling_encoder),
    "none": lambda: NoMemory(),
}


@pytest.mark.parametrize("kind", MEMORY_KINDS)
def test_restore_after_an_undo_equals_never_having_written_the_undone_frames(scene, kind):
    _, cameras, observations = scene
    undone, fresh = MEMORY_KINDS[kind](), MEMORY_KINDS[kind]()
    undone.write(observations[0])
    after_first = undone.snapshot()
    undone.write(observations[1])
    undone.write(observations[2])
    undone.restore(after_first)
    undone.write(observations[1])  # the 2nd again: the 3rd never happened
    for obs in observations[:2]:
        fresh.write(obs)
    _assert_same_state(undone, fresh, cameras[3])
    if kind != "none":
        assert undone.stats().points > 0


def test_a_flat_cache_undo_copies_nothing_and_reuses_its_spare_rows():
    cache = PointCache()
    cache.append(torch.randn(4, 3), torch.randn(4, 2))
    mark = cache.snapshot()
    cache.append(torch.randn(3, 3), torch.randn(3, 2))
    buffer = cache._points
    earlier = [t.clone() for t in cache.tensors()]
    cache.restore(mark)
    assert len(cache) == 4 and cache._points is buffer  # no copy
    assert torch.equal(cache.tensors()[0], earlier[0][:4]) and torch.equal(cache.tensors()[1], earlier[1][:4])
    points, features = torch.randn(3, 3), torch.randn(3, 2)
    cache.append(points, features)
    assert cache._points is buffer and torch.equal(cache.tensors()[0][4:], points)  # the spare rows, overwritten
    assert torch.equal(cache.tensors()[1][4:], features)
    with pytest.raises(ValueError, match=r"\[0, 7\]"):
        cache.restore(9)  # a later state cannot come back
    cache.restore(0)
    cache.append(torch.randn(2, 3), torch.randn(2, 5))  # emptied: another channel count is fine
    assert cache.tensors()[1].shape == (2, 5)


def test_a_voxel_snapshot_keeps_its_tensors_untouched_by_later_writes(scene):
    """The snapshot holds the stored tensors themselves, so no later append may change them in place."""
    _, _, observations = scene
    memory = LatentSpatialMemory(voxel_size=0.05)
    memory.write(observations[0])
    snapshot = memory.snapshot()
    copies = [t.clone() for t in snapshot]
    for obs in observations[1:4]:
        memory.write(obs)
    assert all(torch.equal(t, c) for t, c in zip(snapshot, copies, strict=True))
    memory.restore(snapshot)
    assert memory.stats().points == copies[0].shape[0]


def test_edge_aware_lifting_drops_the_cells_and_pixels_on_depth_edges():
    from mirage_viz.geometry.cameras import Camera
    from mirage_viz.geometry.depth import depth_edges

    camera = Camera(Intrinsics.from_fov(64, 64, 60.0), torch.eye(4))
    depth = torch.full((64, 64), 2.0)
    depth[:, 36:] = 4.0  # a wall behind an edge: latent column 4 straddles it
    observation = Observation(camera=camera, image=torch.rand(3, 64, 64), latent=torch.rand(4, 8, 8), depth=depth)
    every = LatentSpatialMemory()
    aware = LatentSpatialMemory(edge_threshold=0.1)
    every.write(observation)
    aware.write(observation)
    assert every.stats().points == 64 and aware.stats().points == 64 - 8  # one column of cells dropped
    floating = every.cache.tensors()[0][:, 2]  # depths of the lifted cells
    assert ((floating > 2.01) & (floating < 3.99)).sum() == 8  # the paper's rule: cells between the surfaces
    kept = aware.cache.tensors()[0][:, 2]
    assert not ((kept > 2.01) & (kept < 3.99)).any()
    rgb = RGBPointCloudMemory(encode=lambda x: x[:, :, ::8, ::8], edge_threshold=0.1)
    rgb.write(observation)
    assert rgb.stats().points == 64 * 64 - int(depth_edges(depth, 64, 64, 0.1).sum()) == 64 * 62
    with pytest.raises(ValueError, match="edge_threshold"):
        LatentSpatialMemory(edge_threshold=0.0)


def test_coarser_depth_ties_keep_the_first_hand_view_where_surfaces_agree():
    from mirage_viz.geometry.cameras import Camera

    camera = Camera(Intrinsics.from_fov(64, 64, 60.0), torch.eye(4))
    first, later = torch.full((4, 8, 8), 1.0), torch.full((4, 8, 8), -1.0)
    reads = {}
    for bits in (5, 0):
        memory = LatentSpatialMemory(depth_tie_bits=bits)
        memory.write(Observation(camera=camera, image=torch.rand(3, 64, 64), latent=first, depth=torch.full((64, 64), 2.2)))
        memory.write(Observation(camera=camera, image=torch.rand(3, 64, 64), latent=later, depth=torch.full((64, 64), 2.1)))
        reads[bits] = memory.read(camera, (4, 8, 8)).latent
    assert reads[5].eq(-1.0).all()  # 2.1 m is 4.8% nearer than 2.2 m: beyond the 3.1% tolerance of 5 bits
    assert reads[0].eq(1.0).all()  # at 0 bits (within a factor of 2) they tie, and the earliest written wins
    with pytest.raises(ValueError, match="depth_tie_bits"):
        LatentSpatialMemory(depth_tie_bits=-1)


def test_subcell_warp_reads_the_same_cells_closer_to_the_truth_and_keeps_frames_apart(scene):
    world, cameras, observations = scene
    nearest, subcell = LatentSpatialMemory(), LatentSpatialMemory(warp="subcell")
    for memory in (nearest, subcell):
        memory.write(observations[0])
        memory.write(observations[1])
    shape = (CHANNELS, SIZE // FACTOR, SIZE // FACTOR)
    truth = pooling_encoder(world.render(cameras[3]).rgb[None])[0]  # the latent the target camera would see
    read_nearest, read_subcell = nearest.read(cameras[3], shape), subcell.read(cameras[3], shape)
    assert torch.equal(read_nearest.mask, read_subcell.mask)
    covered = read_nearest.mask
    error_nearest = (read_nearest.latent - truth)[:, covered].square().mean()
    error_subcell = (read_subcell.latent - truth)[:, covered].square().mean()
    assert error_subcell < 0.9 * error_nearest
    # reading a written camera gives back its latent (up to float rounding): its own points sit on the cell centres
    alone = LatentSpatialMemory(warp="subcell")
    alone.write(observations[0])
    assert torch.allclose(alone.read(cameras[0], shape).latent, observations[0].latent, atol=1e-4)
    assert subcell.frame_of_points().tolist() == [0] * (32 * 32) + [1] * (32 * 32)
    mark = subcell.snapshot()
    subcell.write(observations[2])
    subcell.restore(mark)
    subcell.write(observations[3])  # the undone frame's points are overwritten and counted as the new frame's
    assert subcell.frame_of_points().tolist() == [0] * (32 * 32) + [1] * (32 * 32) + [2] * (32 * 32)
    subcell.reset()
    assert subcell.frame_of_points().numel() == 0
    with pytest.raises(ValueError, match="flat cache"):
        LatentSpatialMemory(warp="subcell", voxel_size=0.05)
    with pytest.raises(ValueError, match="flat cache"):
        LatentSpatialMemory(voxel_size=0.05).frame_of_points()
    with pytest.raises(ValueError, match="warp"):
        LatentSpatialMemory(warp="bicubic")


def test_a_subcell_read_blends_only_the_first_frame_where_a_later_one_saw_the_same_surface():
    """Two frames of one plane a third of a cell apart, with different latents: with first-hand ties the first frame
    wins every cell, and the blend takes its points alone (without frame groups the second frame's would mix in)."""
    from mirage_viz.geometry.cameras import Camera

    intrinsics = Intrinsics.from_fov(64, 64, 60.0)
    moved = torch.eye(4)
    moved[0, 3] = 0.02  # about a third of a cell on a plane 2 m away
    first = Observation(camera=Camera(intrinsics, torch.eye(4)), image=torch.rand(3, 64, 64),
                        latent=torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(0)), depth=torch.full((64, 64), 2.0))
    later = Observation(camera=Camera(intrinsics, moved), image=torch.rand(3, 64, 64), latent=torch.full((4, 8, 8), 50.0),
                        depth=torch.full((64, 64), 2.0))
    both, alone = LatentSpatialMemory(warp="subcell", depth_tie_bits=0), LatentSpatialMemory(warp="subcell", depth_tie_bits=0)
    both.write(first)
    both.write(later)
    alone.write(first)
    target = Camera(intrinsics, torch.eye(4))
    target.camera_to_world[1, 3] = 0.05  # a new camera: every cell between the first frame's points
    read_both, read_alone = both.read(target, (4, 8, 8)), alone.read(target, (4, 8, 8))
    assert read_alone.mask.sum() >= 40 and torch.equal(read_both.mask & read_alone.mask, read_alone.mask)
    assert torch.allclose(read_both.latent[:, read_alone.mask], read_alone.latent[:, read_alone.mask], atol=1e-5)
    assert read_both.latent.max() < 10  # none of the later frame's 50s


def test_with_seen_rays_a_revisited_camera_reads_back_its_own_frame_whatever_later_frames_put_in_front():
    """A later frame from 20 cm to the side lifts a near object (0.8 m) that lands in front of the first frame's wall
    (2 m) and wins its cells in the z-test; with seen rays the first frame saw those cells along the same rays, so
    back at its camera every cell is its own again. Elsewhere the z-test is unchanged, and an undo forgets the frame's
    camera with its points."""
    from mirage_viz.geometry.cameras import Camera

    intrinsics = Intrinsics.from_fov(64, 64, 60.0)
    moved = torch.eye(4)
    moved[0, 3] = 0.2
    first_latent = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(0))
    near = torch.full((64, 64), 2.0)
    near[:, 24:40] = 0.8  # a near object in the middle of the second view
    first = Observation(camera=Camera(intrinsics, torch.eye(4)), image=torch.rand(3, 64, 64), latent=first_latent,
                        depth=torch.full((64, 64), 2.0))
    later = Observation(camera=Camera(intrinsics, moved), image=torch.rand(3, 64, 64), latent=torch.full((4, 8, 8), 50.0),
                        depth=near)
    plain, seen = LatentSpatialMemory(depth_tie_bits=0), LatentSpatialMemory(depth_tie_bits=0, seen_rays=True)
    for memory in (plain, seen):
        memory.write(first)
        memory.write(later)
    read_plain, read_seen = plain.read(first.camera, (4, 8, 8)), seen.read(first.camera, (4, 8, 8))
    assert read_plain.latent.eq(50.0).any()  # the z-test gives some of the first frame's cells to the near object
    assert torch.equal(read_seen.latent, first_latent) and read_seen.mask.all()
    other = Camera(intrinsics, moved.clone())
    other.camera_to_world[1, 3] = 0.3  # a camera 30 cm from both frames': no ray is shared, the z-test decides
    assert torch.equal(seen.read(other, (4, 8, 8)).latent, plain.read(other, (4, 8, 8)).latent)
    mark = seen.snapshot()
    seen.write(later)
    seen.restore(mark)
    assert len(seen._frame_centers) == 2
    seen.reset()
    assert seen._frame_centers == [] and not seen.read(first.camera, (4, 8, 8)).mask.any()
    with pytest.raises(ValueError, match="seen_rays needs the camera each point was lifted from"):
        LatentSpatialMemory(seen_rays=True, voxel_size=0.05)
    with pytest.raises(ValueError, match="seen_rays must be True or False"):
        LatentSpatialMemory(seen_rays="yes")
