"""The shipped models load offline and meet their bars; the loading code works on tiny saved models."""

import json

import pytest
import torch
from diffusers import AutoencoderKL

from mirage_viz.backbone import ASSETS_DIR, SHARP_VAE, build_backbone, load_backbone
from mirage_viz.scenes.data import HELD_OUT_SEED_START, render_views
from mirage_viz.metrics import gradient_energy, psnr
from mirage_viz.models.denoiser import WarpConditionedPipeline, build_scheduler
from mirage_viz.models.depth_net import DepthNet


def test_shipped_models_are_safetensors_and_load_offline(backbone):
    for folder in ("vae", "vae_sharp", "denoiser/unet", "depth"):
        assert list((ASSETS_DIR / folder).glob("*.safetensors")), folder
    assert sum(f.stat().st_size for f in ASSETS_DIR.rglob("*.safetensors")) <= 30e6  # issue 15: <= 30 MB in all
    assert backbone.downsample_factor == 8 and backbone.latent_channels == 4
    assert backbone.name == "embedded"


def test_shipped_vae_reconstructs_held_out_views_at_26_db(backbone):
    images = render_views(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + 4), 4, 256, rng_seed=123).float() / 255
    reconstruction = torch.cat([backbone.decode(backbone.encode(chunk)) for chunk in images.split(4)])
    assert psnr(reconstruction, images) >= 26.0
    recorded = json.loads((ASSETS_DIR / "vae" / "training_result.json").read_text())
    assert recorded["held_out_psnr_db"] >= 26.0


def test_sharp_decoder_reads_the_embedded_latents_and_draws_sharper_edges(backbone):
    """``vae="embedded-sharp"``: the same encoder (so the same latents and the same denoiser), a decoder whose
    held-out reconstructions keep more of the truth's gradient energy, within 1 dB of the standard decoder."""
    sharp = build_backbone(vae=SHARP_VAE, depth=None, device="cpu")
    assert sharp.notices == [] and f"vae: {SHARP_VAE}" in sharp.name and sharp.denoiser is backbone.denoiser
    images = render_views(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + 4), 2, 128, rng_seed=7).float() / 255
    latents = backbone.encode(images)  # (8, 4, 16, 16)
    assert torch.equal(sharp.encode(images), latents)
    standard, drawn = backbone.decode(latents), sharp.decode(latents)
    assert gradient_energy(drawn) > 1.2 * gradient_energy(standard)
    assert psnr(drawn, images) > psnr(standard, images) - 1.0
    recorded = json.loads((ASSETS_DIR / "vae_sharp" / "training_result.json").read_text())
    assert recorded["decoder_only"] and recorded["adversarial_weight"] > 0


def test_shipped_depth_estimator_is_close_on_held_out_views(backbone):
    from mirage_viz.geometry.cameras import Intrinsics
    from mirage_viz.scenes.data import random_camera
    from mirage_viz.scenes.worlds import SyntheticWorld
    import numpy as np

    world = SyntheticWorld(name="held_out", seed=HELD_OUT_SEED_START + 1)
    rng = np.random.default_rng(5)
    errors = []
    for _ in range(4):
        render = world.render(random_camera(world, rng, Intrinsics.from_fov(256, 256)))
        estimate = backbone.estimate_depth(render.rgb)
        errors.append(((estimate - render.depth).abs() / render.depth).mean().item())
    assert sum(errors) / len(errors) < 0.25


def test_denoiser_copies_a_fully_covered_conditioning(backbone):
    image = render_views([HELD_OUT_SEED_START + 2], 1, 256, rng_seed=9).float() / 255
    latent = backbone.encode(image)[0]
    generated = backbone.generate(latent, torch.ones(latent.shape[1:]), torch.Generator().manual_seed(0))
    noise_only = backbone.generate(torch.zeros_like(latent), torch.zeros(latent.shape[1:]), torch.Generator().manual_seed(0))
    assert (generated - latent).pow(2).mean() < 0.25 * (noise_only - latent).pow(2).mean()


# The previously shipped denoiser (small UNet, 3,000 CPU steps on 3,000 'near' pairs; commit 8db6668) on the fixed
# held-out set below: mean latent MSE over the pairs with a memory, and over the 'revisit' pairs (a loop's return).
PREVIOUS_HELD_OUT_MSE = {"memory": 0.2635, "revisit": 0.0927}


def test_shipped_denoiser_beats_the_previous_one_on_held_out_warps(backbone):
    """A fixed held-out set, small and fast: 24 warp pairs from 4 worlds the training never saw (seeds 5010-5013),
    128 px, 'near', 'revisit' and 'far' sources, sampled with 6 steps from a fixed seed."""
    from mirage_viz.models.vae import load_vae
    from mirage_viz.training.denoiser import evaluate
    from mirage_viz.training.pair_data import SCENARIOS, parse_shares
    from mirage_viz.training.warp_pairs import make_pairs

    pairs = make_pairs(load_vae(ASSETS_DIR / "vae"), range(HELD_OUT_SEED_START + 10, HELD_OUT_SEED_START + 14), 6, 128, 7,
                       parse_shares("near=2,revisit=1,far=1"))
    figures = evaluate(backbone.denoiser, pairs, 6)
    assert int((pairs["scenarios"] == SCENARIOS.index("revisit")).sum()) >= 4
    assert figures["mse_memory"] < 0.95 * PREVIOUS_HELD_OUT_MSE["memory"], figures["mse_memory"]
    assert figures["mse_revisit"] < 0.75 * PREVIOUS_HELD_OUT_MSE["revisit"], figures["mse_revisit"]


def test_load_backbone_from_tiny_saved_models(tmp_path):
    vae = AutoencoderKL(block_out_channels=(8, 8, 8, 8), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=4,
                        layers_per_block=1)
    vae.save_pretrained(tmp_path / "vae")
    from diffusers import UNet2DModel

    unet = UNet2DModel(sample_size=8, in_channels=9, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=4)
    WarpConditionedPipeline(unet, build_scheduler()).save_pretrained(tmp_path / "denoiser")
    DepthNet(widths=(8, 8, 8, 8)).save_pretrained(tmp_path / "depth")

    backbone = load_backbone(tmp_path / "vae", tmp_path / "denoiser", tmp_path / "depth", name="tiny")
    assert backbone.downsample_factor == 8 and backbone.size_multiple == 16
    latent = backbone.encode(torch.rand(1, 3, 64, 64))
    assert latent.shape == (1, 4, 8, 8)
    generated = backbone.generate(latent[0], torch.ones(8, 8), torch.Generator().manual_seed(0))
    assert generated.shape == (4, 8, 8)
    assert backbone.decode(generated[None]).shape == (1, 3, 64, 64)
    assert backbone.estimate_depth(torch.rand(3, 64, 64)).shape == (64, 64)


def test_denoiser_pipeline_checks_its_inputs():
    from diffusers import UNet2DModel

    unet = UNet2DModel(sample_size=8, in_channels=9, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=4)
    pipeline = WarpConditionedPipeline(unet, build_scheduler())
    with pytest.raises(ValueError, match="warped_latent"):
        pipeline(torch.zeros(1, 3, 8, 8), torch.ones(1, 8, 8))
    with pytest.raises(ValueError, match="mask"):
        pipeline(torch.zeros(1, 4, 8, 8), torch.ones(1, 4, 4))


def test_mean_colour_init_is_a_working_autoencoder_before_training():
    from mirage_viz.models.vae import build_embedded_vae, decode_latents, encode_images, init_mean_colour_path

    images = render_views([HELD_OUT_SEED_START], 2, 128, rng_seed=4).float() / 255
    with torch.no_grad():
        untrained = build_embedded_vae()
        started = init_mean_colour_path(build_embedded_vae())
        assert psnr(decode_latents(started, encode_images(started, images)), images) > 18.0
        assert psnr(decode_latents(untrained, encode_images(untrained, images)), images) < 12.0


def test_the_embedded_layout_builds_finer_latents_and_names_what_it_accepts():
    """build_embedded_vae(f, C): one latent cell per f x f pixels and C channels; the mean-colour start works at each
    factor (the shipped f = 8 config unchanged); a factor or channel count it cannot build is refused with a message."""
    from mirage_viz.models.vae import (EMBEDDED_DOWNSAMPLE_FACTORS, build_embedded_vae, decode_latents, embedded_vae_config,
                                       encode_images, init_mean_colour_path, vae_downsample_factor)

    assert embedded_vae_config()["encoder_block_out_channels"] == (32, 32, 32, 32)
    assert embedded_vae_config()["num_encoder_blocks"] == (1, 3, 3, 3)  # diffusers' default: the shipped VAE's layout
    images = render_views([HELD_OUT_SEED_START], 1, 128, rng_seed=4).float() / 255
    for factor in EMBEDDED_DOWNSAMPLE_FACTORS:
        vae = init_mean_colour_path(build_embedded_vae(factor, latent_channels=5))
        with torch.no_grad():
            latents = encode_images(vae, images)
            assert latents.shape == (1, 5, 128 // factor, 128 // factor) and vae_downsample_factor(vae) == factor
            assert psnr(decode_latents(vae, latents), images) > 18.0
    with pytest.raises(ValueError, match=r"downsample_factor must be one of \(2, 4, 8\), got 16"):
        build_embedded_vae(16)
    with pytest.raises(ValueError, match="latent_channels must be a whole number >= 3"):
        build_embedded_vae(8, latent_channels=2)


def test_a_new_generator_and_depth_estimator_are_classes_and_nothing_else(backbone):
    """A backend is a class with the protocol's methods: the backbone, engine and step take it unchanged."""
    import dataclasses

    from mirage_viz.rollout import RolloutConfig, run_rollout
    from mirage_viz.models.protocols import DepthEstimator, LatentCodec, LatentGenerator

    class CopyGenerator:  # keeps what memory covers, zero elsewhere
        size_multiple = 1

        def generate(self, warped_latent, mask, num_inference_steps, generator, device, dtype):
            return warped_latent * mask

        def with_prompt(self, prompt):
            return self

    class WallDepth:  # a flat wall 2 m away
        size_multiple = 1

        def estimate(self, image, device, dtype):
            return torch.full(image.shape[-2:], 2.0)

    assert isinstance(CopyGenerator(), LatentGenerator) and isinstance(WallDepth(), DepthEstimator)
    assert isinstance(backbone.vae, LatentCodec) and backbone.vae.downsample_factor == backbone.downsample_factor == 8
    custom = dataclasses.replace(backbone, denoiser=CopyGenerator(), depth_estimator=WallDepth(), name="custom")
    assert custom.size_multiple == backbone.downsample_factor  # the generator's own factor is 1
    rollout = run_rollout(RolloutConfig(steps=1, size=64, memories=("latent",), depth_source="estimated"), backbone=custom)
    record = rollout.records["latent"][1]
    assert torch.equal(record.generated_latent, record.conditioning_latent * record.mask)
    assert torch.equal(record.depth, torch.full((64, 64), 2.0)) and custom.with_prompt("a room") is custom


def test_known_cells_keep_what_memory_covers_and_fill_only_the_holes(backbone):
    image = render_views([HELD_OUT_SEED_START + 1], 1, 64, rng_seed=3).float() / 255
    latent = backbone.encode(image)[0]  # (C, 8, 8)
    mask = torch.zeros(8, 8)
    mask[:, :5] = 1.0  # memory covers the left five columns
    warped = latent * mask
    kept = backbone.generate(warped, mask, torch.Generator().manual_seed(0), known_cells=True)
    # within float32 rounding of the conditioning on covered cells (tolerance 1e-6)
    assert (kept - warped)[:, mask.bool()].abs().max() <= 1e-6
    assert (kept[:, ~mask.bool()] - warped[:, ~mask.bool()]).abs().mean() > 0.05  # the holes are generated
    plain = backbone.generate(warped, mask, torch.Generator().manual_seed(0))
    assert (plain - warped)[:, mask.bool()].abs().max() > 1e-3  # the paper's conditioning alone: only close


def test_averaged_samples_are_the_mean_of_the_draws_and_keep_the_known_cells(backbone):
    """``samples=K``: the mean of K draws taken one after another from the same generator; covered cells the sampler
    keeps stay within 1e-6 of the conditioning, as with one draw."""
    image = render_views([HELD_OUT_SEED_START + 2], 1, 64, rng_seed=4).float() / 255
    latent = backbone.encode(image)[0]  # (C, 8, 8)
    mask = torch.zeros(8, 8)
    mask[:4] = 1.0
    warped = latent * mask
    generator = torch.Generator().manual_seed(1)
    draws = [backbone.generate(warped, mask, generator, 1, known_cells=True) for _ in range(3)]
    averaged = backbone.generate(warped, mask, torch.Generator().manual_seed(1), 1, known_cells=True, samples=3)
    assert torch.allclose(averaged, torch.stack(draws).mean(0), atol=1e-6)
    assert not torch.allclose(draws[0], draws[1])  # the draws differ, so the mean is not one of them
    assert (averaged - warped)[:, mask.bool()].abs().max() <= 1e-6
    with pytest.raises(ValueError, match=r"average_samples must be a whole number in \[1, 16\] \(draws averaged per frame\), got 0"):
        backbone.generate(warped, mask, generator, samples=0)


def test_decoder_sharpness_interpolates_the_two_shipped_decoders(backbone):
    """0 decodes as the embedded VAE, 1 as ``embedded-sharp``, 0.5 in between in sharpness; the encoder is shared."""
    from mirage_viz.models.vae import interpolate_decoders, load_vae

    images = render_views(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + 2), 2, 64, rng_seed=5).float() / 255
    latents = backbone.encode(images)
    sharp = build_backbone(vae=SHARP_VAE, depth=None, device="cpu")
    assert backbone.with_decoder_sharpness(0) is backbone
    full, half = backbone.with_decoder_sharpness(1.0), backbone.with_decoder_sharpness(0.5)
    assert torch.allclose(full.decode(latents), sharp.decode(latents), atol=1e-5)
    assert torch.equal(half.encode(images), latents) and half.denoiser is backbone.denoiser
    energies = [gradient_energy(b.decode(latents)) for b in (backbone, half, full)]
    assert energies[0] < energies[1] < energies[2]
    assert half.vae_name == half.name == "embedded, decoder sharpness 0.5"
    # two VAEs that differ outside the decoder do not decode the same latents: refused
    embedded, other = load_vae(ASSETS_DIR / "vae"), load_vae(ASSETS_DIR / "vae_sharp")
    with torch.no_grad():
        other.encoder.layers[0].weight.add_(0.1)
    with pytest.raises(ValueError, match="differ outside the decoder"):
        interpolate_decoders(embedded, other, 0.5)
    with pytest.raises(ValueError, match=r"amount must be in \[0, 1\], got 1.5"):
        interpolate_decoders(embedded, embedded, 1.5)


def test_decoder_sharpness_needs_the_embedded_vae(tmp_path, backbone):
    """Another VAE has no sharp twin: asking for decoder sharpness with it is a ValueError naming it and what is
    accepted, before a model runs (the plan checks it)."""
    from mirage_viz.rollout import RolloutConfig, plan_rollout

    vae = AutoencoderKL(block_out_channels=(8, 8, 8, 8), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=4,
                        layers_per_block=1)
    vae.save_pretrained(tmp_path / "vae")
    other = build_backbone(vae=str(tmp_path / "vae"), depth=None, device="cpu")
    assert other.vae_name == str(tmp_path / "vae")
    config = RolloutConfig(steps=1, size=64).with_options(decoder_sharpness=0.6)
    with pytest.raises(ValueError, match=r"decoder_sharpness 0.6 blends the embedded VAE's decoder with embedded-sharp's, "
                                         r"but this backbone decodes with '.*vae'; accepted: decoder_sharpness 0"):
        plan_rollout(config, backbone=other)
    plan_rollout(config, backbone=backbone)  # the embedded VAE: fine
    with pytest.raises(ValueError, match=r"decoder_sharpness must be a number in \[0, 1\]"):
        RolloutConfig().with_options(decoder_sharpness=-0.1).validate()
    with pytest.raises(ValueError, match=r"average_samples must be a whole number in \[1, 16\]"):
        RolloutConfig().with_options(average_samples=17).validate()
