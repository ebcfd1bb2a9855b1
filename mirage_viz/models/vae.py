"""The embedded VAE: a small diffusers ``AutoencoderTiny`` (TAESD layout) with f = 8 and 4 latent channels.

Images are (B, 3, H, W) in [0, 1] at the API; the model sees [-1, 1]. Latents handed to the rest of
mirage_viz are the encoder output (for ``AutoencoderKL``: the posterior mode) times ``config.scaling_factor`` (unit variance on the
training views), as diffusers pipelines do.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, AutoencoderTiny

__all__ = ["embedded_vae_config", "build_embedded_vae", "load_vae", "encode_images", "decode_latents", "vae_downsample_factor"]


def embedded_vae_config() -> dict:
    return dict(
        in_channels=3,
        out_channels=3,
        encoder_block_out_channels=(32, 32, 32, 32),
        decoder_block_out_channels=(32, 32, 32, 32),
        latent_channels=4,
        scaling_factor=1.0,
    )


def build_embedded_vae() -> AutoencoderTiny:
    return AutoencoderTiny(**embedded_vae_config())


def load_vae(path: str | Path) -> AutoencoderKL | AutoencoderTiny:
    """Load an ``AutoencoderKL`` or ``AutoencoderTiny`` saved with ``save_pretrained`` (folder or hub id)."""
    class_name = AutoencoderKL.load_config(str(path)).get("_class_name", "AutoencoderKL")
    model_class = {"AutoencoderKL": AutoencoderKL, "AutoencoderTiny": AutoencoderTiny}.get(class_name)
    if model_class is None:
        raise ValueError(f"{path}: unsupported VAE class {class_name!r}; accepted: AutoencoderKL, AutoencoderTiny")
    return model_class.from_pretrained(str(path)).eval()


def vae_downsample_factor(vae: AutoencoderKL | AutoencoderTiny) -> int:
    if isinstance(vae, AutoencoderTiny):
        return 2 ** sum(1 for _ in vae.config.encoder_block_out_channels[1:])
    return 2 ** (len(vae.config.block_out_channels) - 1)


def encode_images(vae: AutoencoderKL | AutoencoderTiny, images: torch.Tensor) -> torch.Tensor:
    """images (B, 3, H, W) in [0, 1] -> scaled latents (B, C, H / f, W / f)."""
    if isinstance(vae, AutoencoderTiny):
        return vae.encode(images * 2 - 1).latents * vae.config.scaling_factor
    return vae.encode(images * 2 - 1).latent_dist.mode() * vae.config.scaling_factor


def decode_latents(vae: AutoencoderKL | AutoencoderTiny, latents: torch.Tensor) -> torch.Tensor:
    """scaled latents (B, C, h, w) -> images (B, 3, h * f, w * f) in [0, 1]."""
    images = vae.decode(latents / vae.config.scaling_factor).sample
    return ((images + 1) / 2).clamp(0, 1)
