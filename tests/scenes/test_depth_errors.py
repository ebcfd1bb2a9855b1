"""Depth quality as a setting: true depth with controlled errors, holes the memories skip, records that say how much."""

import math

import pytest
import torch

from mirage_viz.geometry.cameras import Camera, Intrinsics
from mirage_viz.geometry.depth import DEPTH_DOWNSAMPLE_MODES
from mirage_viz.geometry.projection import check_depth
from mirage_viz.memories import LatentSpatialMemory, Observation, RGBPointCloudMemory
from mirage_viz.memories.latent import lift_latents
from mirage_viz.rollout import RolloutConfig, plan_rollout, run_rollout
from mirage_viz.scenes.depth_errors import DepthErrors, depth_abs_rel, hole_fraction, parse_depth_errors, smear_depth


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def true_depth(size: int = 256) -> torch.Tensor:
    """A smooth positive depth map (H, W) between 1 and 5 metres."""
    v, u = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return 1.0 + 2.0 * u + 2.0 * v * v  # (H, W)


def log_ratio(noisy: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    return torch.log(noisy.double() / depth.double())


def neighbour_correlation(field: torch.Tensor) -> float:
    """Correlation of each pixel with its right neighbour."""
    a, b = field[:, :-1].flatten(), field[:, 1:].flatten()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


# ---- the spec -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, canonical", [
    ("", ""),
    ("noise=0.05", "noise=0.05"),
    ("noise=0.1+bias=1.1+smear=3+holes=0.05", "noise=0.1+bias=1.1+smear=3+holes=0.05"),
    ("noise=0.1+grain=1", "noise=0.1+grain=1"),
    ("holes=0.2 + noise=0.3", "noise=0.3+holes=0.2"),  # any order in, one order out
    ("bias=2.0", "bias=2"),
    ("noise=0+grain=4", ""),  # no noise: its grain means nothing
    ("grain=16+noise=1e-2", "noise=0.01"),
])
def test_a_spec_reads_back_to_its_canonical_form(spec, canonical):
    errors = parse_depth_errors(spec)
    assert errors.spec == canonical
    assert parse_depth_errors(errors.spec) == errors
    assert errors.is_exact == (canonical == "")


def test_the_settings_map_to_the_fields():
    errors = parse_depth_errors("noise=0.1+bias=1.1+smear=3+holes=0.05+grain=8")
    assert errors == DepthErrors(noise=0.1, grain=8, bias=1.1, smear=3, holes=0.05)
    assert DepthErrors(noise=0.25, grain=1).spec == "noise=0.25+grain=1"
    assert DepthErrors().spec == "" and DepthErrors().is_exact


@pytest.mark.parametrize("spec, message", [
    ("noise=2", r"noise must be a number in \[0, 1\]"),
    ("noise=-0.1", "noise"),
    ("noise=nan", "noise"),
    ("noise=abc", "noise must be a number"),
    ("grain=0", r"grain must be an integer in \[1, 64\]"),
    ("noise=0.1+grain=1.5", "grain must be an integer"),
    ("bias=0.1", r"bias must be a number in \[0.25, 4\]"),
    ("bias=5", "bias"),
    ("smear=17", r"smear must be an integer in \[0, 16\]"),
    ("smear=-1", "smear"),
    ("holes=0.95", r"holes must be a number in \[0, 0.9\]"),
    ("blur=3", "unknown setting 'blur'.*accepted: noise, grain, bias, smear, holes"),
    ("noise", "malformed setting 'noise'.*key=value"),
    ("noise=0.1+", "malformed setting ''"),
    ("=0.1", "malformed"),
    ("noise:0.1", "malformed"),
    ("noise=0.1+noise=0.2", "noise is given twice"),
])
def test_bad_specs_are_refused_saying_what_is_accepted(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_depth_errors(spec)


def test_bad_fields_and_inputs_are_refused():
    with pytest.raises(ValueError, match="spec string"):
        parse_depth_errors(0.1)
    with pytest.raises(ValueError, match="noise"):
        DepthErrors(noise=True)
    with pytest.raises(ValueError, match="smear must be an integer"):
        DepthErrors(smear=2.0)
    with pytest.raises(ValueError, match="true depth"):
        DepthErrors(noise=0.1).apply(torch.zeros(8, 8), seeded())
    with pytest.raises(ValueError, match="torch.Generator"):
        DepthErrors(noise=0.1).apply(torch.ones(8, 8), 0)


# ---- measured statistics ----------------------------------------------------------------------------------------

def test_noise_has_the_log_std_it_is_set_to():
    depth = true_depth()
    for noise in (0.02, 0.1, 0.5):
        measured = float(log_ratio(DepthErrors(noise=noise).apply(depth, seeded()), depth).std())
        print(f"noise {noise}: std of log(noisy / true) {measured:.6f}")
        assert abs(measured - noise) <= 0.02 * noise


def test_bias_scales_depth_by_its_median_ratio():
    depth = true_depth()
    for bias in (0.8, 1.25):
        ratio = float((DepthErrors(bias=bias).apply(depth, seeded()) / depth).median())
        assert abs(ratio - bias) < 1e-3


def test_holes_are_blobs_of_the_asked_fraction():
    depth = true_depth()
    for holes in (0.05, 0.3):
        out = DepthErrors(holes=holes).apply(depth, seeded(1))
        mask = torch.isnan(out)  # (H, W)
        assert abs(hole_fraction(out) - holes) < 0.01
        assert torch.equal(out[~mask], depth[~mask])  # the rest is untouched
        # blobs, not salt: a hole's right neighbour is nearly always a hole (salt: only `holes` of the time)
        both = (mask[:, :-1] & mask[:, 1:]).sum() / mask[:, :-1].sum()
        assert float(both) > 0.8


def test_smear_leaves_a_plane_and_blurs_a_step_edge():
    plane = true_depth(64)
    smeared, moved = smear_depth(plane, 3)
    change = (smeared - plane).abs() / plane  # (H, W) relative
    assert moved == 0 and float(change[3:-3, 3:-3].max()) < 0.005  # the border sees replicated pixels
    step = torch.ones(64, 64)
    step[:, 32:] = 3.0  # a wall 1 m away, then one 3 m away
    smeared, moved = smear_depth(step, 3)
    between = (smeared > 1.05) & (smeared < 2.95)  # flying depths
    assert moved == int(between.sum()) == 64 * 6  # the 2 * smear columns nearest the edge
    assert torch.equal(DepthErrors(smear=3).apply(step, seeded()), smeared)


def test_grain_sets_the_spatial_correlation_of_the_noise():
    depth = true_depth()
    smooth = neighbour_correlation(log_ratio(DepthErrors(noise=0.1, grain=16).apply(depth, seeded()), depth))
    grainy = neighbour_correlation(log_ratio(DepthErrors(noise=0.1, grain=1).apply(depth, seeded()), depth))
    print(f"neighbour correlation: grain 16 {smooth:.3f}, grain 1 {grainy:.3f}")
    assert smooth > 0.9 and abs(grainy) < 0.05


def test_the_same_seed_gives_the_same_errors_and_each_error_has_its_own_stream():
    depth = true_depth(64)
    errors = parse_depth_errors("noise=0.1+bias=1.1+smear=2+holes=0.1")
    first, again, other = errors.apply(depth, seeded(5)), errors.apply(depth, seeded(5)), errors.apply(depth, seeded(6))
    assert torch.equal(torch.isnan(first), torch.isnan(again))
    assert torch.equal(first.nan_to_num(), again.nan_to_num())
    assert not torch.equal(first.nan_to_num(), other.nan_to_num())
    holes_alone = DepthErrors(holes=0.1).apply(depth, seeded(5))
    assert torch.equal(torch.isnan(holes_alone), torch.isnan(first))  # the noise does not move the holes
    assert DepthErrors().apply(depth, seeded()) is depth  # exact: the truth itself


def test_abs_rel_measures_over_the_pixels_with_depth():
    depth = true_depth(32)
    assert depth_abs_rel(depth, depth) == 0.0
    assert abs(depth_abs_rel(depth * 1.1, depth) - 0.1) < 1e-6
    holed = (depth * 1.2).masked_fill(torch.arange(32)[:, None] < 16, float("nan"))
    assert abs(depth_abs_rel(holed, depth) - 0.2) < 1e-6 and hole_fraction(holed) == 0.5
    assert math.isnan(depth_abs_rel(torch.full((4, 4), float("nan")), torch.ones(4, 4)))


# ---- holes in the memories ---------------------------------------------------------------------------------------

def test_nan_depth_is_accepted_only_where_holes_are_allowed():
    depth = torch.ones(4, 4)
    depth[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        check_depth(depth)
    assert torch.isnan(check_depth(depth, allow_holes=True)).sum() == 1
    for bad, message in ((float("inf"), "inf"), (0.0, "<= 0"), (-1.0, "<= 0")):
        wrong = depth.clone()
        wrong[0, 0] = bad
        with pytest.raises(ValueError, match=message):
            check_depth(wrong, allow_holes=True)


def holed_observation(holes: list[tuple[slice, slice]], size: int = 16) -> Observation:
    """A 16 x 16 frame 2 m away with a 2 x 2 latent (f = 8), NaN depth at ``holes``."""
    depth = torch.full((size, size), 2.0)
    for rows, cols in holes:
        depth[rows, cols] = float("nan")
    latent = torch.arange(4 * 4, dtype=torch.float32).reshape(4, 2, 2)  # cell (i, j) carries its own values
    camera = Camera(Intrinsics.from_fov(size, size, 60.0), torch.eye(4))
    return Observation(camera=camera, image=torch.rand(3, size, size, generator=seeded()), latent=latent, depth=depth)


@pytest.mark.parametrize("mode", DEPTH_DOWNSAMPLE_MODES)
def test_a_latent_cell_whose_depth_footprint_holds_a_hole_is_not_lifted(mode):
    whole_block = holed_observation([(slice(0, 8), slice(0, 8))])
    points, features = lift_latents(whole_block, mode)
    assert points.shape == (3, 3) and torch.isfinite(points).all()
    assert torch.equal(features, whole_block.latent.reshape(4, -1).T[1:])  # cells (0, 1), (1, 0), (1, 1)
    # one pixel in the block's middle: in the footprint of every mode but the one-pixel ones (nearest samples the
    # block's corner, center its pixel (4, 4))
    points, _ = lift_latents(holed_observation([(3, 3)]), mode)
    assert points.shape[0] == (4 if mode in ("nearest", "center") else 3)
    points, _ = lift_latents(holed_observation([(4, 4)]), mode)
    assert points.shape[0] == (4 if mode == "nearest" else 3)


def test_pixels_without_depth_are_not_lifted_and_all_holes_lift_nothing():
    observation = holed_observation([(slice(0, 4), slice(None))])  # the top 4 rows
    points, features = lift_latents(observation, resolution="pixel")
    assert points.shape == (12 * 16, 3) and features.shape == (12 * 16, 4)
    rgb = RGBPointCloudMemory(encode=lambda images: images[:, :, ::8, ::8].repeat(1, 2, 1, 1)[:, :4])
    rgb.write(observation)
    points, colors = rgb.cached_points()
    assert points.shape == (12 * 16, 3) and torch.equal(colors, observation.image[:, 4:].reshape(3, -1).T)
    empty = holed_observation([(slice(None), slice(None))])
    for memory in (LatentSpatialMemory(), LatentSpatialMemory(lift="pixel"), LatentSpatialMemory(voxel_size=0.1), rgb):
        memory.reset()
        memory.write(empty)
        assert memory.stats().points == 0
        assert not memory.read(empty.camera, (4, 2, 2)).mask.any()
    voxels = LatentSpatialMemory(voxel_size=0.1)
    voxels.write(observation)
    assert 0 < voxels.stats().points


# ---- in a rollout -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exact_and_noisy(backbone):
    config = RolloutConfig(steps=2, size=64, memories=("latent", "rgb"))
    exact = run_rollout(config, backbone=backbone)
    noisy = run_rollout(RolloutConfig(steps=2, size=64, memories=("latent", "rgb"), depth_errors="noise=0.1+holes=0.1"),
                        backbone=backbone)
    return exact, noisy


def test_a_rollout_with_depth_errors_records_them_and_drops_the_holes(exact_and_noisy):
    exact, noisy = exact_and_noisy
    assert noisy.setup.depth_errors == "noise=0.1+holes=0.1" and exact.setup.depth_errors == ""
    assert noisy.summary()["setup"]["depth_errors"] == "noise=0.1+holes=0.1"
    for name in ("latent", "rgb"):
        for record, truth in zip(noisy.records[name], exact.records[name]):
            assert record.depth_errors == "noise=0.1+holes=0.1" and record.depth_source == "truth"
            assert 0.05 < record.depth_abs_rel < 0.2 and abs(record.depth_holes - 0.1) < 0.01
            assert truth.depth_errors == "" and truth.depth_abs_rel == 0.0 and truth.depth_holes == 0.0
        print(name, "cache points exact", [r.cache_points for r in exact.records[name]],
              "with errors", [r.cache_points for r in noisy.records[name]])
        assert noisy.records[name][-1].cache_points < exact.records[name][-1].cache_points
    step = noisy.summary()["memories"]["latent"]["steps"][1]
    assert step["depth_errors"] == "noise=0.1+holes=0.1" and step["depth_abs_rel"] > 0 and step["depth_holes"] > 0
    # every memory lifts with the same errors at a step; another step draws other errors
    latent, rgb = noisy.records["latent"], noisy.records["rgb"]
    assert torch.equal(torch.isnan(latent[1].depth), torch.isnan(rgb[1].depth))
    assert not torch.equal(torch.isnan(latent[1].depth), torch.isnan(latent[2].depth))


def test_a_rerun_draws_the_same_depth_errors(backbone, exact_and_noisy):
    _, noisy = exact_and_noisy
    again = run_rollout(RolloutConfig(steps=2, size=64, memories=("none",), depth_errors="noise=0.1+holes=0.1"),
                        backbone=backbone)
    for first, second in zip(noisy.records["latent"], again.records["none"]):
        assert torch.equal(first.depth.nan_to_num(), second.depth.nan_to_num())


def test_depth_errors_on_estimated_depth_are_refused(backbone):
    with pytest.raises(ValueError, match="depth_errors 'noise=0.1' apply to a world's true depth"):
        RolloutConfig(depth_source="estimated", depth_errors="noise=0.1").validate()
    with pytest.raises(ValueError, match="depth_errors: unknown setting"):
        RolloutConfig(depth_errors="blur=1").validate()
    RolloutConfig(depth_source="estimated", depth_errors="noise=0").validate()  # no errors at all
    from mirage_viz.scenes.photo import load_photo, sample_photos

    photo = load_photo(sample_photos()[0], 64)
    with pytest.raises(ValueError, match="a photo, which has no true depth"):
        plan_rollout(RolloutConfig(size=64, depth_errors="holes=0.1"), photo=photo, backbone=backbone)


def test_the_estimators_depth_error_is_measured_against_the_truth(backbone):
    config = RolloutConfig(steps=1, size=64, memories=("none",), depth_source="estimated")
    rollout = run_rollout(config, backbone=backbone)
    for record in rollout.records["none"]:
        print("estimator abs rel", record.depth_abs_rel)
        assert record.depth_source == "estimated" and record.depth_errors == ""
        assert math.isfinite(record.depth_abs_rel) and record.depth_abs_rel > 0
