"""A few-step run of each training script, end to end into a temp folder (the real runs ship in mirage_viz/assets/)."""

import json

import pytest
import torch

from mirage_viz.backbone import load_backbone
from mirage_viz.models.denoiser import UNET_SIZES, WarpConditionedPipeline
from mirage_viz.models.vae import load_vae
from mirage_viz.training import denoiser, depth, vae


def test_every_training_script_runs_a_few_steps_and_saves_loadable_models(tmp_path):
    vae_result = vae.main(["--iters", "3", "--worlds", "2", "--eval-every", "3", "--held-out-views", "1", "--out", str(tmp_path / "vae")])
    assert vae_result["held_out_psnr_db"] > 0
    assert load_vae(tmp_path / "vae").config.latent_channels == 4

    denoiser_result = denoiser.main(["--iters", "2", "--worlds", "1", "--per-world", "3", "--size", "64", "--batch", "2",
                                     "--shares", "near=1", "--vae", str(tmp_path / "vae"), "--out", str(tmp_path / "denoiser")])
    assert denoiser_result["train_pairs"] == 3

    depth_result = depth.main(["--iters", "2", "--worlds", "1", "--views", "2", "--out", str(tmp_path / "depth")])
    assert depth_result["held_out_abs_rel"] > 0

    backbone = load_backbone(tmp_path / "vae", tmp_path / "denoiser", tmp_path / "depth")
    assert backbone.latent_channels == 4
    for name in ("vae", "denoiser", "depth"):
        assert json.loads((tmp_path / name / "training_result.json").read_text())["iters"] >= 2
        assert (tmp_path / f"{name}_train_log.jsonl").exists()


def test_denoiser_script_makes_every_scenario_trains_medium_and_fine_tunes(tmp_path):
    """The recipe of the shipped denoiser, a few steps: every pair scenario (the 'generated' one drifts its sources
    through the shipped generator), the medium UNet, covered-cell loss weight, then a fine-tune from it with a
    scenario left out."""
    common = ["--iters", "2", "--worlds", "2", "--per-world", "4", "--size", "64", "--batch", "2", "--eval-every", "2"]
    first = denoiser.main([*common, "--unet", "medium", "--covered-weight", "4", "--shares", "near=1,revisit=1,far=1,generated=1",
                           "--pairs-cache", str(tmp_path / "pairs.pt"), "--out", str(tmp_path / "medium")])
    pairs = torch.load(tmp_path / "pairs.pt")
    assert first["train_pairs"] == 8 and first["unet"] == "medium" and first["covered_weight"] == 4.0
    assert pairs["scenarios"].unique().numel() >= 2  # 8 draws over four equal shares
    assert pairs["conditions"].shape == (8, 4, 8, 8) and pairs["masks"].shape == (8, 1, 8, 8)
    assert WarpConditionedPipeline.from_pretrained(tmp_path / "medium").unet.config.block_out_channels == list(UNET_SIZES["medium"][0])

    excluded = denoiser.SCENARIOS[int(pairs["scenarios"][0])]
    tuned = denoiser.main([*common, "--init", str(tmp_path / "medium"), "--exclude", excluded,
                           "--pairs-cache", str(tmp_path / "pairs.pt"), "--out", str(tmp_path / "tuned")])
    assert tuned["train_pairs"] == int((pairs["scenarios"] != pairs["scenarios"][0]).sum())
    assert tuned["unet"] == "init medium"


def test_denoiser_pairs_are_the_same_for_any_number_of_workers():
    shares = denoiser.parse_shares("near=1,revisit=1,far=1,generated=1")
    drift = WarpConditionedPipeline.from_pretrained(denoiser.ASSETS / "denoiser")
    one = denoiser.make_pairs(load_vae(denoiser.ASSETS / "vae"), range(3), 2, 64, 0, shares, drift)
    two = denoiser.make_pairs_parallel(denoiser.ASSETS / "vae", denoiser.ASSETS / "denoiser", range(3), 2, 64, 0, shares, 2)
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-4, rtol=0)


def test_denoiser_script_refuses_bad_scenarios():
    with pytest.raises(ValueError, match="unknown scenario 'loop'"):
        denoiser.parse_shares("near=1,loop=1")
    with pytest.raises(ValueError, match="not all 0"):
        denoiser.parse_shares("near=0")
    with pytest.raises(SystemExit):
        denoiser.main(["--shares", "near=1,loop=1"])  # a message, not a traceback
    with pytest.raises(SystemExit):
        denoiser.main(["--exclude", "loop"])
    with pytest.raises(SystemExit):
        denoiser.main(["--covered-weight", "0"])


def test_vae_decoder_only_sharpening_keeps_the_latent_space(tmp_path):
    """``--decoder-only`` trains the decoder with the sharpness term; the encoder's weights and the scaling factor
    (so the latents a denoiser was trained on) come back exactly as they were, the decoder changed."""
    base = vae.ASSETS / "vae"
    result = vae.main(["--resume", str(base), "--decoder-only", "--sharpness-weight", "0.5", "--iters", "2", "--worlds", "2",
                       "--batch", "2", "--crop", "32", "--eval-every", "2", "--held-out-views", "1", "--out", str(tmp_path / "sharp")])
    before, after = load_vae(base), load_vae(tmp_path / "sharp")
    assert after.config.scaling_factor == before.config.scaling_factor
    assert result["decoder_only"] and 0 < result["held_out_sharpness"] < 2
    for (name, old), new in zip(before.encoder.state_dict().items(), after.encoder.state_dict().values()):
        assert torch.equal(old, new), name
    assert any(not torch.equal(old, new) for old, new in zip(before.decoder.state_dict().values(), after.decoder.state_dict().values()))


def test_vae_script_refuses_decoder_only_without_a_model_to_sharpen(capsys):
    with pytest.raises(SystemExit):
        vae.main(["--decoder-only", "--iters", "1"])
    assert "--resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        vae.main(["--sharpness-weight", "-1", "--iters", "1"])
    assert "--sharpness-weight must be >= 0" in capsys.readouterr().err
