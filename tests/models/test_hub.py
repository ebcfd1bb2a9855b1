"""Hub loading for real, on tiny random models built from diffusers and transformers configs and saved to folders."""

import json
import time

import pytest
import torch

from mirage_viz.backbone import build_backbone
from mirage_viz.cli import main
from mirage_viz.rollout import RolloutConfig, run_rollout
from mirage_viz.models.hub import pick_device
from mirage_viz.scenes.photo import sample_photos


@pytest.fixture(scope="module")
def tiny_depth_model(tmp_path_factory):
    """A Depth Anything (DINOv2 backbone) with random weights and its image processor."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    folder = tmp_path_factory.mktemp("depth_anything_tiny")
    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=37, patch_size=14,
                            image_size=56, out_features=["stage1", "stage2", "stage3", "stage4"], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[16, 16, 16, 16],
                                 fusion_hidden_size=16, head_hidden_size=8, patch_size=14)
    torch.manual_seed(0)
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_inpaint_pipeline(tmp_path_factory):
    """A StableDiffusionInpaintPipeline (9-channel UNet, f = 8 VAE, CLIP text encoder) with random weights."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = tmp_path_factory.mktemp("sd_inpaint_tiny")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=9, out_channels=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=4, norm_num_groups=8)
    vae = AutoencoderKL(block_out_channels=(8, 8, 8, 8), latent_channels=4, norm_num_groups=8, layers_per_block=1,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    text_encoder = CLIPTextModel(CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32,
                                                intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                                                vocab_size=64, max_position_embeddings=77))
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab[letter], vocab[letter + "</w>"] = len(vocab), len(vocab) + 1
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipeline = StableDiffusionInpaintPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                              scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                              requires_safety_checker=False)
    pipeline.save_pretrained(folder / "pipeline")
    vae.save_pretrained(folder / "vae")
    return folder


def test_depth_model_from_a_folder_gives_metric_depth(tiny_depth_model):
    backbone = build_backbone(depth=str(tiny_depth_model), depth_scale=2.5)
    assert backbone.notices == [] and backbone.depth_name == str(tiny_depth_model)
    depth = backbone.estimate_depth(torch.rand(3, 96, 64))
    assert depth.shape == (96, 64) and torch.isfinite(depth).all() and depth.min() > 0
    assert float(depth.median()) == pytest.approx(2.5, rel=0.05)


def test_photo_rollout_records_which_depth_model_ran(tiny_depth_model):
    backbone = build_backbone(depth=str(tiny_depth_model))
    rollout = run_rollout(RolloutConfig(trajectory="pan_left", steps=1, size=64), backbone=backbone, photo=sample_photos()[1])
    assert rollout.records["latent"][1].depth_model == str(tiny_depth_model)
    assert rollout.summary()["memories"]["latent"]["steps"][1]["depth_model"] == str(tiny_depth_model)


def test_inpainting_generator_from_a_folder_is_conditioned_on_the_warp(tiny_inpaint_pipeline):
    backbone = build_backbone(generator=str(tiny_inpaint_pipeline / "pipeline"), depth=None, prompt="a quiet room")
    assert backbone.notices == [] and "generator" in backbone.name and backbone.downsample_factor == 8
    assert backbone.generator_name.endswith("pipeline") and backbone.num_inference_steps == 20
    warped = torch.randn(4, 8, 8)
    mask = torch.zeros(8, 8)
    mask[:, :4] = 1
    a = backbone.generate(warped * mask, mask, torch.Generator().manual_seed(0))
    b = backbone.generate(warped * mask, mask, torch.Generator().manual_seed(0))
    c = backbone.generate(-warped * mask, mask, torch.Generator().manual_seed(0))
    assert a.shape == (4, 8, 8) and torch.equal(a, b)  # seeded
    assert not torch.allclose(a, c)  # the warped latent reaches the UNet
    rollout = run_rollout(RolloutConfig(steps=2, size=64, memories=("latent", "none")), backbone=backbone)
    assert rollout.records["latent"][2].frame.shape == (3, 64, 64) and rollout.backbone_name == backbone.name


def test_hub_vae_alone_loads_with_a_notice(tiny_inpaint_pipeline):
    backbone = build_backbone(vae=str(tiny_inpaint_pipeline / "vae"), depth=None)
    assert backbone.encode(torch.rand(1, 3, 64, 64)).shape == (1, 4, 8, 8)
    assert any("trained on the embedded VAE" in n for n in backbone.notices)


def test_sharp_decoder_with_a_hub_generator_says_the_generator_decodes(tiny_inpaint_pipeline):
    backbone = build_backbone(vae="embedded-sharp", generator=str(tiny_inpaint_pipeline / "pipeline"), depth=None)
    assert "pipeline (its own)" in backbone.name and "embedded-sharp" not in backbone.name
    assert any("embedded-sharp decodes the embedded generator's latents" in n for n in backbone.notices)


def test_unreachable_hub_ids_fall_back_quickly_with_a_message():
    start = time.perf_counter()
    backbone = build_backbone(vae="no-such-org/no-such-vae", generator="no-such-org/no-such-inpainter",
                              depth="no-such-org/no-such-depth")
    assert time.perf_counter() - start < 30  # no retry loops against an unreachable hub
    assert backbone.name == "embedded" and len(backbone.notices) == 3 and backbone.generator_name == "embedded"
    assert all("could not be loaded" in n for n in backbone.notices)
    assert backbone.generate(torch.zeros(4, 8, 8), torch.zeros(8, 8), torch.Generator().manual_seed(0)).shape == (4, 8, 8)


def test_devices_are_checked():
    assert pick_device("cpu") == (torch.device("cpu"), torch.float32)
    if not torch.cuda.is_available():
        assert pick_device("auto")[0].type == "cpu"
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda")
    with pytest.raises(ValueError, match="accepted: auto, cpu"):
        pick_device("tpu")


def test_cli_takes_hub_models_by_id(tiny_inpaint_pipeline, tiny_depth_model, tmp_path):
    code = main(["rollout", "--image", str(sample_photos()[0]), "--steps", "1", "--size", "64", "--quiet",
                 "--generator", str(tiny_inpaint_pipeline / "pipeline"), "--depth-model", str(tiny_depth_model),
                 "--prompt", "a cat", "--device", "cpu", "--out", str(tmp_path / "run")])
    assert code == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["notices"] == [] and str(tiny_depth_model) in summary["config"]["backbone"]


def test_bad_settings_are_refused_not_fallen_back_from():
    with pytest.raises(ValueError, match=r"depth scale must be a number of metres in \[0.1, 100\]"):
        build_backbone(depth="anything", depth_scale=-1)
    with pytest.raises(ValueError, match="cuda"):
        pick_device("cuda:x")


def test_sessions_share_a_hub_generator_with_their_own_prompts(tiny_inpaint_pipeline):
    backbone = build_backbone(generator=str(tiny_inpaint_pipeline / "pipeline"), depth=None, prompt="a")
    other = backbone.with_prompt("b")
    assert other.denoiser.pipeline is backbone.denoiser.pipeline and other.denoiser.lock is backbone.denoiser.lock
    assert (backbone.denoiser.prompt, other.denoiser.prompt) == ("a", "b") and backbone.with_prompt("a") is backbone
