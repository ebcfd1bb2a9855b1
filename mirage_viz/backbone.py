"""A backbone bundles what generates and measures frames: VAE, warp-conditioned denoiser, depth.

The memories, the engine and the pictures never depend on which backbone runs. The embedded
backbone ships in ``assets/`` and loads offline; any folder or hub id saved with
``save_pretrained`` in the same layout loads through :func:`load_backbone`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, AutoencoderTiny

from .models.denoiser import WarpConditionedPipeline
from .models.depth_net import DepthNet
from .models.vae import decode_latents, encode_images, load_vae, vae_downsample_factor

__all__ = ["ASSETS_DIR", "Backbone", "load_backbone", "load_embedded_backbone"]

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"


@dataclass
class Backbone:
    vae: AutoencoderKL | AutoencoderTiny
    denoiser: WarpConditionedPipeline
    depth_estimator: DepthNet | None
    name: str = "embedded"
    num_inference_steps: int = 6

    @property
    def downsample_factor(self) -> int:
        return vae_downsample_factor(self.vae)

    @property
    def latent_channels(self) -> int:
        return self.vae.config.latent_channels

    @property
    def size_multiple(self) -> int:
        """Image sizes must be multiples of this (VAE factor x the denoiser's own downsampling)."""
        unet_factor = 2 ** (len(self.denoiser.unet.config.block_out_channels) - 1)
        multiple = self.downsample_factor * unet_factor
        return max(multiple, 16) if self.depth_estimator is not None else multiple

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) in [0, 1] -> latents (B, C, H / f, W / f)."""
        return encode_images(self.vae, images)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """latents (B, C, h, w) -> images (B, 3, h * f, w * f) in [0, 1]."""
        return decode_latents(self.vae, latents)

    @torch.no_grad()
    def generate(self, warped_latent: torch.Tensor, mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """warped latent (C, h, w) and mask (h, w) -> generated latent (C, h, w)."""
        return self.denoiser(warped_latent[None], mask[None], self.num_inference_steps, generator).latents[0]

    @torch.no_grad()
    def estimate_depth(self, image: torch.Tensor) -> torch.Tensor:
        """image (3, H, W) in [0, 1] -> metric depth (H, W)."""
        if self.depth_estimator is None:
            raise ValueError(f"backbone {self.name!r} has no depth estimator; use the true depth (depth_source='truth')")
        return self.depth_estimator(image[None])[0]


def load_backbone(
    vae: str | Path, denoiser: str | Path, depth: str | Path | None = None, name: str = "custom", **kwargs: object
) -> Backbone:
    """Load a backbone from folders or hub ids saved with ``save_pretrained``.

    ``vae`` holds an ``AutoencoderKL`` (or ``AutoencoderTiny``) config; ``denoiser`` a ``unet/`` and
    ``scheduler/`` pair; ``depth`` a :class:`DepthNet`.
    """
    vae_model = load_vae(vae)
    depth_model = DepthNet.from_pretrained(str(depth), low_cpu_mem_usage=False).eval() if depth is not None else None
    return Backbone(vae=vae_model, denoiser=WarpConditionedPipeline.from_pretrained(denoiser),
                    depth_estimator=depth_model, name=name, **kwargs)


@functools.lru_cache(maxsize=1)
def load_embedded_backbone(assets_dir: str | Path = ASSETS_DIR) -> Backbone:
    """The models shipped in ``assets/`` (offline, CPU). Cached: loaded once per process."""
    assets = Path(assets_dir)
    missing = [p for p in ("vae", "denoiser", "depth") if not (assets / p).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"embedded models missing in {assets}: {', '.join(missing)}; "
            "train them with `python -m mirage_viz.training.<vae|denoiser|depth>`"
        )
    return load_backbone(assets / "vae", assets / "denoiser", assets / "depth", name="embedded")
