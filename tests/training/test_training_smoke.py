"""A few-step run of each training script, end to end into a temp folder (the real runs ship in mirage_viz/assets/)."""

import json
import subprocess
import sys

import pytest
import torch

from mirage_viz.backbone import load_backbone
from mirage_viz.models.denoiser import UNET_SIZES, WarpConditionedPipeline
from mirage_viz.models.vae import encode_images, load_vae, vae_downsample_factor
from mirage_viz.training import denoiser, depth, vae, warp_pairs
from mirage_viz.training.pair_data import SCENARIOS, load_pairs, parse_shares

pytestmark = pytest.mark.slow  # runs the app, a browser, a kernel or a build: the full tier only


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
    pairs, held_out, recipe = load_pairs(tmp_path / "pairs.pt")
    assert recipe == {"worlds": 2, "per_world": 4, "size": 64, "seed": 0, "shares": "near=1,revisit=1,far=1,generated=1"}
    assert len(held_out["targets"]) == warp_pairs.HELD_OUT_WORLDS * warp_pairs.HELD_OUT_PER_WORLD
    assert first["train_pairs"] == 8 and first["unet"] == "medium" and first["covered_weight"] == 4.0
    assert pairs["scenarios"].unique().numel() >= 2  # 8 draws over four equal shares
    assert pairs["conditions"].shape == (8, 4, 8, 8) and pairs["masks"].shape == (8, 1, 8, 8)
    assert WarpConditionedPipeline.from_pretrained(tmp_path / "medium").unet.config.block_out_channels == list(UNET_SIZES["medium"][0])

    excluded = SCENARIOS[int(pairs["scenarios"][0])]
    tuned = denoiser.main([*common, "--init", str(tmp_path / "medium"), "--exclude", excluded,
                           "--pairs-cache", str(tmp_path / "pairs.pt"), "--out", str(tmp_path / "tuned")])
    assert tuned["train_pairs"] == int((pairs["scenarios"] != pairs["scenarios"][0]).sum())
    assert tuned["unet"] == "init medium"


def test_denoiser_pairs_are_the_same_for_any_number_of_workers():
    shares = parse_shares("near=1,revisit=1,far=1,generated=1")
    drift = WarpConditionedPipeline.from_pretrained(denoiser.ASSETS / "denoiser")
    one = warp_pairs.make_pairs(load_vae(denoiser.ASSETS / "vae"), range(3), 2, 64, 0, shares, drift)
    two = warp_pairs.make_pairs_parallel(denoiser.ASSETS / "vae", denoiser.ASSETS / "denoiser", range(3), 2, 64, 0, shares, 2)
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-4, rtol=0)


def test_denoiser_script_refuses_bad_scenarios():
    with pytest.raises(ValueError, match="unknown scenario 'loop'"):
        parse_shares("near=1,loop=1")
    with pytest.raises(ValueError, match="not all 0"):
        parse_shares("near=0")
    with pytest.raises(SystemExit):
        denoiser.main(["--shares", "near=1,loop=1"])  # a message, not a traceback
    with pytest.raises(SystemExit):
        denoiser.main(["--exclude", "loop"])
    with pytest.raises(SystemExit):
        denoiser.main(["--covered-weight", "0"])
    with pytest.raises(SystemExit):
        denoiser.main(["--device", "tpu"])
    with pytest.raises(SystemExit):
        warp_pairs.main(["--worlds", "6000", "--out", "never.pt"])  # seeds from 5000 are held out


def test_pairs_made_once_train_from_the_file_without_the_worlds(tmp_path):
    """``warp_pairs`` writes a pairs file (float16 latents, bool masks, conditionings only where covered); the denoiser trains from it
    with no world renderer imported (a GPU machine without open3d), and the same seed gives the same weights."""
    made = warp_pairs.main(["--worlds", "2", "--per-world", "3", "--size", "64", "--shares", "near=1",
                            "--out", str(tmp_path / "pairs.pt")])
    assert made["train_pairs"] == 6 and not (tmp_path / "pairs.pt.partial").exists()
    train, _, _ = load_pairs(tmp_path / "pairs.pt")
    assert train["targets"].dtype == torch.float32 and set(train["masks"].unique().tolist()) <= {0.0, 1.0}
    assert (train["conditions"] * (1 - train["masks"])).abs().max() == 0  # holes come back as zeros
    script = f"""
import sys
class NoWorlds:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "open3d" or name == "mirage_viz.training.warp_pairs":
            raise ImportError("no world renderer on this machine: " + name)
sys.meta_path.insert(0, NoWorlds())
from mirage_viz.training import denoiser
denoiser.main(["--iters", "2", "--batch", "2", "--eval-every", "2", "--pairs-cache", {str(tmp_path / "pairs.pt")!r},
               "--out", sys.argv[1]])
"""
    for name in ("a", "b"):
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path / name)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    a = WarpConditionedPipeline.from_pretrained(tmp_path / "a").unet.state_dict()
    b = WarpConditionedPipeline.from_pretrained(tmp_path / "b").unet.state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert json.loads((tmp_path / "a" / "training_result.json").read_text())["pairs"]["per_world"] == 3


@pytest.mark.parametrize("loss", [["--sharpness-weight", "0.5"], ["--adversarial-weight", "0.01"]], ids=["cell-rms", "adversarial"])
def test_vae_decoder_only_sharpening_keeps_the_latent_space(tmp_path, loss):
    """``--decoder-only`` trains the decoder with the sharpness term (or a discriminator); the encoder's weights and
    the scaling factor (so the latents a denoiser was trained on) come back exactly as they were, the decoder changed."""
    base = vae.ASSETS / "vae"
    result = vae.main(["--resume", str(base), "--decoder-only", *loss, "--iters", "2", "--worlds", "2",
                       "--batch", "2", "--crop", "32", "--eval-every", "2", "--held-out-views", "1", "--out", str(tmp_path / "sharp")])
    before, after = load_vae(base), load_vae(tmp_path / "sharp")
    assert after.config.scaling_factor == before.config.scaling_factor
    assert result["decoder_only"] and 0 < result["held_out_sharpness"] < 2
    for (name, old), new in zip(before.encoder.state_dict().items(), after.encoder.state_dict().values()):
        assert torch.equal(old, new), name
    assert any(not torch.equal(old, new) for old, new in zip(before.decoder.state_dict().values(), after.decoder.state_dict().values()))


def test_vae_script_trains_a_finer_latent(tmp_path):
    """``--downsample-factor 4 --latent-channels 6`` trains a new VAE with one latent cell per 4x4 pixels and 6
    channels (the per-cell mean-colour loss follows the cell); it saves, loads and reports its shape."""
    result = vae.main(["--downsample-factor", "4", "--latent-channels", "6", "--iters", "2", "--worlds", "2", "--batch", "2",
                       "--crop", "32", "--eval-every", "2", "--held-out-views", "1", "--out", str(tmp_path / "f4")])
    assert result["downsample_factor"] == 4 and result["latent_channels"] == 6 and result["held_out_psnr_db"] > 0
    loaded = load_vae(tmp_path / "f4")
    assert vae_downsample_factor(loaded) == 4
    assert encode_images(loaded, torch.rand(1, 3, 32, 32)).shape == (1, 6, 8, 8)


def test_vae_script_refuses_decoder_only_without_a_model_to_sharpen(capsys):
    """Each bad combination of options stops before any data is made, with a message naming it."""
    refused = [
        (["--decoder-only"], "--resume"),
        (["--sharpness-weight", "-1"], "--sharpness-weight and --adversarial-weight must be >= 0"),
        (["--adversarial-weight", "-0.1"], "got 0.0 and -0.1"),
        (["--resume", str(vae.ASSETS / "vae"), "--downsample-factor", "4"], "--resume keeps the saved one's"),
        (["--downsample-factor", "16"], "invalid choice: 16 (choose from 2, 4, 8)"),
        (["--latent-channels", "2"], "--latent-channels must be >= 3"),
    ]
    for argv, message in refused:
        with pytest.raises(SystemExit):
            vae.main([*argv, "--iters", "1"])
        assert message in capsys.readouterr().err, argv


def test_patch_discriminator_learns_to_tell_sharp_edges_from_blurred_ones():
    """Patch logits (B, 1, H / 8, W / 8); a few hinge-loss steps on step edges against their box-blurred copies
    leave every true image scored above every blurred one."""
    from mirage_viz.training.discriminator import PatchDiscriminator, discriminator_hinge_loss, generator_hinge_loss

    torch.manual_seed(0)
    critic = PatchDiscriminator(width=16)
    optimizer = torch.optim.Adam(critic.parameters(), lr=2e-3, betas=(0.5, 0.9))

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        step = (torch.arange(32) >= torch.randint(8, 24, (8, 1, 1, 1))).float()  # (8, 1, 1, 32): one edge each
        sharp = (step * (0.3 + 0.7 * torch.rand(8, 3, 1, 1))).expand(8, 3, 32, 32).clone()
        return sharp, torch.nn.functional.avg_pool2d(sharp, 5, stride=1, padding=2, count_include_pad=False)

    assert critic(batch()[0]).shape == (8, 1, 4, 4)
    for _ in range(60):
        sharp, blurred = batch()
        loss = discriminator_hinge_loss(critic(sharp), critic(blurred))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    sharp, blurred = batch()
    with torch.no_grad():
        real, fake = critic(sharp).mean((1, 2, 3)), critic(blurred).mean((1, 2, 3))
    assert real.min() > fake.max()
    blurred.requires_grad_(True)  # the decoder's loss falls where the critic scores its output higher
    generator_hinge_loss(critic(blurred)).backward()
    assert torch.isfinite(blurred.grad).all() and blurred.grad.abs().sum() > 0
