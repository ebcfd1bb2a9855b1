import pytest
import torch

from mirage_viz.geometry.depth import DEPTH_DOWNSAMPLE_MODES, downsample_depth


@pytest.mark.parametrize("mode", DEPTH_DOWNSAMPLE_MODES)
def test_depth_downsampling_modes(mode):
    depth = torch.arange(1.0, 65.0).reshape(8, 8)
    out = downsample_depth(depth, 2, 2, mode)
    assert out.shape == (2, 2) and (out > 0).all()
    if mode == "min":
        assert out[0, 0] == 1.0
    if mode == "area":
        assert out[0, 0] == depth[:4, :4].mean()
    if mode == "nearest":
        assert out.tolist() == [[depth[0, 0], depth[0, 4]], [depth[4, 0], depth[4, 4]]]  # each block's first pixel
    if mode == "center":
        assert out.tolist() == [[depth[2, 2], depth[2, 6]], [depth[6, 2], depth[6, 6]]]  # the pixel at its centre


def test_unknown_depth_mode_names_the_accepted_ones():
    with pytest.raises(ValueError, match="bilinear"):
        downsample_depth(torch.ones(8, 8), 2, 2, "cubic")


def test_depth_edges_flag_the_cells_across_a_discontinuity_and_nothing_on_a_plane():
    from mirage_viz.geometry.depth import check_edge_threshold, depth_edges, mask_depth_edges

    step = torch.ones(64, 64)
    step[:, 20:] = 3.0  # an edge between columns 19 and 20: inside latent column 2 (pixels 16-23)
    cells = depth_edges(step, 8, 8, 0.1)
    assert cells[:, 2].all() and not cells[:, [0, 1, 3, 4, 5, 6, 7]].any()
    pixels = depth_edges(step, 64, 64, 0.1)  # the 3 x 3 neighbourhood: the two columns beside the edge
    assert pixels[:, 19:21].all() and pixels.sum() == 2 * 64
    on_block_border = torch.ones(64, 64)
    on_block_border[:, 24:] = 3.0  # between latent columns 2 and 3: the one-pixel ring counts it for both
    assert depth_edges(on_block_border, 8, 8, 0.1)[:, 2:4].all()
    slope = torch.linspace(2.0, 2.4, 64).repeat(64, 1)  # a tilted plane: 0.6% spread per cell
    assert not depth_edges(slope, 8, 8, 0.1).any()
    masked = mask_depth_edges(downsample_depth(step, 8, 8), step, 0.1)
    assert masked[:, 2].isnan().all() and masked[:, 3:].eq(3.0).all()
    assert mask_depth_edges(masked, step, None) is masked
    for bad in (0, -0.1, 11, True, "0.1"):
        with pytest.raises(ValueError, match="edge_threshold must be a relative depth spread"):
            check_edge_threshold(bad)


def test_nearest_depth_keeps_cells_on_a_surface_where_bilinear_lifts_them_between_two():
    """A silhouette through the middle of a cell: bilinear gives a depth between the object's and the wall's (a cell
    floating in free space, which later views see in front of the wall); nearest gives one of the two depths."""
    depth = torch.full((16, 16), 4.0)  # the wall
    depth[:, :4] = 1.0  # an object whose edge runs through the middle of the first column of 8x8 cells
    bilinear = downsample_depth(depth, 2, 2, "bilinear")
    nearest = downsample_depth(depth, 2, 2, "nearest")
    assert 1.0 < float(bilinear[0, 0]) < 4.0
    assert set(nearest.flatten().tolist()) <= {1.0, 4.0}


def test_centre_depth_is_the_depth_the_cells_centre_ray_meets_on_a_slanted_surface():
    """A lift puts a cell's point on its centre ray: on a tilted plane, the centre pixel's depth puts it on the plane,
    the first pixel's (nearest) 3.5 pixels away, off it by 3.5 pixels' worth of slope."""
    slope = torch.linspace(2.0, 3.0, 64).repeat(64, 1)  # depth grows to the right
    centre = downsample_depth(slope, 8, 8, "center")
    block_means = downsample_depth(slope, 8, 8, "area")  # on a plane, the mean is the centre's depth
    nearest = downsample_depth(slope, 8, 8, "nearest")
    assert (centre - block_means).abs().max() < 0.5 * (slope[0, 1] - slope[0, 0]) + 1e-6  # half a pixel's slope
    assert (nearest - block_means).abs().min() > 3.0 * (slope[0, 1] - slope[0, 0])
    holes = slope.clone()
    holes[4, 4] = float("nan")  # the centre pixel of the first cell
    assert downsample_depth(holes, 8, 8, "center", allow_holes=True).isnan().sum() == 1
