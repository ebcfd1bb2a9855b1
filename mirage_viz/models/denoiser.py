"""The embedded warp-conditioned denoiser and its sampling pipeline.

Inpainting formulation: the UNet sees ``[noisy latent (C), hole mask (1), warped latent (C)]`` stacked
on channels and predicts the clean latent (``prediction_type="sample"``); a diffusers scheduler
(DDIM by default) samples in a few steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import DDIMScheduler, SchedulerMixin, UNet2DModel
from diffusers.utils.torch_utils import randn_tensor

__all__ = ["UNET_SIZES", "embedded_unet_config", "build_embedded_unet", "build_scheduler", "WarpConditionedPipeline", "DenoiserOutput"]


# UNet shapes the training script can build: channels per block and ResNet layers per block
UNET_SIZES: dict[str, tuple[tuple[int, ...], int]] = {
    "small": ((32, 64, 96), 1),  # 1.8 M parameters, the first shipped denoiser
    "medium": ((48, 96, 160), 1),  # 4.7 M parameters, the shipped denoiser since issue 15 (trained on a GPU)
}


def embedded_unet_config(latent_channels: int = 4, size: str = "small") -> dict:
    if size not in UNET_SIZES:
        raise ValueError(f"unknown UNet size {size!r}; choose one of {', '.join(UNET_SIZES)}")
    channels, layers = UNET_SIZES[size]
    return dict(
        sample_size=32,
        in_channels=2 * latent_channels + 1,
        out_channels=latent_channels,
        block_out_channels=channels,
        layers_per_block=layers,
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=16,
        attention_head_dim=32,
    )


def build_embedded_unet(latent_channels: int = 4, size: str = "small") -> UNet2DModel:
    return UNet2DModel(**embedded_unet_config(latent_channels, size))


def build_scheduler() -> DDIMScheduler:
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="sample",
        clip_sample=False,
        timestep_spacing="trailing",
    )


@dataclass
class DenoiserOutput:
    latents: torch.Tensor  # (B, C, h, w) generated scaled latents


class WarpConditionedPipeline:
    """Generate a view's latent from the warped latent and its hole mask."""

    def __init__(self, unet: UNet2DModel, scheduler: SchedulerMixin) -> None:
        self.unet = unet.eval().to(memory_format=torch.channels_last)  # channels-last convolutions: faster on CPU
        self.scheduler = scheduler

    @classmethod
    def from_pretrained(cls, path: str | Path) -> WarpConditionedPipeline:
        """Load ``unet/`` and ``scheduler/`` from a folder or hub id saved by :meth:`save_pretrained`."""
        path = str(path)
        unet = UNet2DModel.from_pretrained(path, subfolder="unet", low_cpu_mem_usage=False)
        scheduler = DDIMScheduler.from_pretrained(path, subfolder="scheduler")
        return cls(unet, scheduler)

    def save_pretrained(self, path: str | Path) -> None:
        self.unet.save_pretrained(Path(path) / "unet")
        self.scheduler.save_pretrained(Path(path) / "scheduler")

    @property
    def latent_channels(self) -> int:
        return self.unet.config.out_channels

    @property
    def size_multiple(self) -> int:
        """Latent grids must be multiples of this: the UNet halves them once per block after the first."""
        return 2 ** (len(self.unet.config.block_out_channels) - 1)

    def with_prompt(self, prompt: str) -> WarpConditionedPipeline:
        """Itself: the embedded denoiser takes no prompt."""
        return self

    def generate(self, warped_latent: torch.Tensor, mask: torch.Tensor, num_inference_steps: int,
                 generator: torch.Generator, device: torch.device, dtype: torch.dtype,
                 known_cells: bool = False) -> torch.Tensor:
        """One latent (C, h, w) from the warped latent (C, h, w) and mask (h, w), on ``device`` in ``dtype``."""
        output = self(warped_latent[None].to(device, dtype), mask[None].to(device, dtype), num_inference_steps, generator,
                      known_cells)
        return output.latents[0].float().cpu()

    def generate_batch(self, warped_latents: torch.Tensor, masks: torch.Tensor, num_inference_steps: int,
                       generator: torch.Generator, device: torch.device, dtype: torch.dtype,
                       known_cells: bool = False) -> torch.Tensor:
        """Latents (B, C, h, w) from warped latents (B, C, h, w) and masks (B, h, w) in one batched call, every item
        drawn from the same noise: each equals :meth:`generate` of that item with a generator seeded alike."""
        output = self(warped_latents.to(device, dtype), masks.to(device, dtype), num_inference_steps, generator,
                      known_cells, shared_noise=True)
        return output.latents.float().cpu()

    @torch.no_grad()
    def __call__(
        self,
        warped_latent: torch.Tensor,
        mask: torch.Tensor,
        num_inference_steps: int = 6,
        generator: torch.Generator | None = None,
        known_cells: bool = False,
        shared_noise: bool = False,
    ) -> DenoiserOutput:
        """warped_latent (B, C, h, w), 0 in holes; mask (B, 1, h, w) or (B, h, w), 1 where covered.

        ``known_cells`` (RePaint-style): after every denoising step the covered cells are set to the warped latent
        noised to the next step's level, and at the end to the warped latent itself, so what memory holds comes back
        exactly and the model only fills, and blends into, the holes. Off: the paper's conditioning only.
        ``shared_noise``: one draw of noise for the whole batch (each item as if generated alone from the same seed).
        """
        # 1. check inputs
        if warped_latent.ndim != 4 or warped_latent.shape[1] != self.latent_channels:
            raise ValueError(f"warped_latent must be (B, {self.latent_channels}, h, w), got {tuple(warped_latent.shape)}")
        if mask.ndim == 3:
            mask = mask[:, None]
        if mask.shape[0] != warped_latent.shape[0] or mask.shape[-2:] != warped_latent.shape[-2:] or mask.shape[1] != 1:
            raise ValueError(f"mask must be (B, 1, h, w) matching the latent, got {tuple(mask.shape)}")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        mask = mask.float()
        # 2. prepare
        self.scheduler.set_timesteps(num_inference_steps)
        batch = warped_latent.shape[0]
        noise_shape = (1, *warped_latent.shape[1:]) if shared_noise else warped_latent.shape
        draw = lambda: randn_tensor(noise_shape, generator=generator, device=warped_latent.device,  # noqa: E731
                                    dtype=warped_latent.dtype).expand(batch, -1, -1, -1)
        latents = draw()
        latents = latents * self.scheduler.init_noise_sigma
        # 3. denoise
        timesteps = self.scheduler.timesteps
        for index, t in enumerate(timesteps):
            model_input = torch.cat([self.scheduler.scale_model_input(latents, t), mask, warped_latent], dim=1)
            prediction = self.unet(model_input, t).sample
            latents = self.scheduler.step(prediction, t, latents, generator=generator).prev_sample
            if known_cells:
                if index + 1 < len(timesteps):  # the covered cells at the next step's noise level
                    known = self.scheduler.add_noise(warped_latent, draw(), timesteps[index + 1 : index + 2])
                else:
                    known = warped_latent
                latents = mask * known + (1.0 - mask) * latents
        return DenoiserOutput(latents=latents)
