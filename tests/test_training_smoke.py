"""A few-step run of each training script, end to end into a temp folder (the real runs ship in mirage_viz/assets/)."""

import json

from mirage_viz.backbone import load_backbone
from mirage_viz.models.vae import load_vae
from mirage_viz.training import denoiser, depth, vae


def test_every_training_script_runs_a_few_steps_and_saves_loadable_models(tmp_path):
    vae_result = vae.main(["--iters", "3", "--worlds", "2", "--eval-every", "3", "--out", str(tmp_path / "vae")])
    assert vae_result["held_out_psnr_db"] > 0
    assert load_vae(tmp_path / "vae").config.latent_channels == 4

    denoiser_result = denoiser.main(["--iters", "2", "--worlds", "1", "--per-world", "3", "--size", "64", "--batch", "2",
                                     "--vae", str(tmp_path / "vae"), "--out", str(tmp_path / "denoiser")])
    assert denoiser_result["train_pairs"] == 3

    depth_result = depth.main(["--iters", "2", "--worlds", "1", "--views", "2", "--out", str(tmp_path / "depth")])
    assert depth_result["held_out_abs_rel"] > 0

    backbone = load_backbone(tmp_path / "vae", tmp_path / "denoiser", tmp_path / "depth")
    assert backbone.latent_channels == 4
    for name in ("vae", "denoiser", "depth"):
        assert json.loads((tmp_path / name / "training_result.json").read_text())["iters"] >= 2
        assert (tmp_path / f"{name}_train_log.jsonl").exists()
