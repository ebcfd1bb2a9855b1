"""A hub inpainting model as the warp-conditioned generator.

A ``StableDiffusionInpaintPipeline`` UNet takes ``[noisy latent, mask, masked-image latent]`` (9 channels),
the same layout as the embedded denoiser: the memory's warped latent is the masked-image latent (zero
in the holes) and the holes are the mask (1 = to generate, diffusers' convention: the opposite of a
memory's coverage). The pipeline runs with its own scheduler, a text prompt and classifier-free guidance.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["GUIDANCE_RANGE", "InpaintGenerator", "check_guidance_scale"]

GUIDANCE_RANGE = (0.0, 100.0)  # classifier-free guidance: 1 or less turns it off, 5 to 8 is usual


def check_guidance_scale(guidance_scale: object) -> float:
    """``guidance_scale`` as a float, or a ``ValueError`` naming the accepted range (NaN and infinity refused)."""
    low, high = GUIDANCE_RANGE
    try:
        value = float(guidance_scale) if not isinstance(guidance_scale, bool) else float("nan")
    except (TypeError, ValueError):
        value = float("nan")
    if not low <= value <= high:  # False for NaN
        raise ValueError(f"guidance scale must be a finite number in [{low:g}, {high:g}] (1 or less turns "
                         f"classifier-free guidance off; 5 to 8 is usual), got {guidance_scale!r}")
    return value


@dataclass
class _Output:
    latents: torch.Tensor


class InpaintGenerator:
    """Calls like :class:`~mirage_viz.models.denoiser.WarpConditionedPipeline`: (warped, mask, steps, generator) -> latents."""

    def __init__(self, pipeline, prompt: str = "", guidance_scale: float = 5.0, negative_prompt: str | None = None,
                 lock: threading.Lock | None = None) -> None:
        if pipeline.unet.config.in_channels != 9:
            raise ValueError(
                f"the generator's UNet takes {pipeline.unet.config.in_channels} input channels; an inpainting model "
                "(9: noisy latent, mask, masked-image latent, as StableDiffusionInpaintPipeline) is needed"
            )
        self.pipeline = pipeline
        self.pipeline.set_progress_bar_config(disable=True)
        self.prompt = prompt
        self.negative_prompt = negative_prompt
        self.guidance_scale = check_guidance_scale(guidance_scale)
        # the pipeline and its scheduler keep state during a call: one call at a time per pipeline
        self.lock = lock or threading.Lock()

    def with_prompt(self, prompt: str) -> InpaintGenerator:
        """Another prompt on the same pipeline (and the same lock); itself for the prompt it has."""
        if prompt == self.prompt:
            return self
        return InpaintGenerator(self.pipeline, prompt, self.guidance_scale, self.negative_prompt, lock=self.lock)

    @property
    def unet(self):
        return self.pipeline.unet

    @property
    def size_multiple(self) -> int:
        """Latent grids must be multiples of this: the UNet halves them once per block after the first."""
        return 2 ** (len(self.pipeline.unet.config.block_out_channels) - 1)

    def generate(self, warped_latent: torch.Tensor, mask: torch.Tensor, num_inference_steps: int,
                 generator: torch.Generator, device: torch.device, dtype: torch.dtype,
                 known_cells: bool = False) -> torch.Tensor:
        """One latent (C, h, w); the pipeline runs on its own device (``device`` and ``dtype`` are its already).
        ``known_cells``: the covered cells are set back to the warped latent after the pipeline (it has no hook
        between its steps)."""
        latent = self(warped_latent[None], mask[None], num_inference_steps, generator).latents[0]
        if known_cells:
            covered = mask.to(latent.device, latent.dtype)[None]  # (1, h, w)
            latent = covered * warped_latent.to(latent.device, latent.dtype) + (1.0 - covered) * latent
        return latent

    @torch.no_grad()
    def __call__(self, warped_latent: torch.Tensor, mask: torch.Tensor, num_inference_steps: int,
                 generator: torch.Generator | None = None) -> _Output:
        """warped latents (B, C, h, w), scaled, 0 in holes; mask (B, h, w), 1 where memory covers."""
        batch, _, height, width = warped_latent.shape
        factor = self.pipeline.vae_scale_factor
        size = (height * factor, width * factor)
        holes = F.interpolate(1.0 - mask[:, None].float(), size=size, mode="nearest")  # [B, 1, H, W], 1 = generate
        placeholder = torch.zeros(batch, 3, *size)  # only its size is used: the masked image is given as latents
        device = self.pipeline._execution_device
        dtype = self.pipeline.unet.dtype
        with self.lock:
            result = self.pipeline(
                prompt=[self.prompt] * batch,
                negative_prompt=None if self.negative_prompt is None else [self.negative_prompt] * batch,
                image=placeholder, mask_image=holes, masked_image_latents=warped_latent.to(device, dtype),
                height=size[0], width=size[1], strength=1.0, num_inference_steps=num_inference_steps,
                guidance_scale=self.guidance_scale, generator=generator, output_type="latent",
            )
        return _Output(latents=result.images.float().cpu())
