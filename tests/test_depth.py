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


def test_unknown_depth_mode_names_the_accepted_ones():
    with pytest.raises(ValueError, match="bilinear"):
        downsample_depth(torch.ones(8, 8), 2, 2, "cubic")
