"""What every part of the benchmark shares: timing (the step's own timer), medians, pairwise ratios, true observations."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

import torch

from mirage_viz.backbone import Backbone, load_embedded_backbone
from mirage_viz.geometry.cameras import Camera
from mirage_viz.memories import Observation
from mirage_viz.models.vae import DiffusersVAE, build_sd_layout_vae
from mirage_viz.rollout.step import timed_ms
from mirage_viz.scenes.worlds import SyntheticWorld

__all__ = ["VAE_KINDS", "bench_backbone", "median", "pairwise_ratio", "timed_ms", "true_observations"]

VAE_KINDS = {
    "embedded": "the embedded AutoencoderTiny (trained, mirage_viz/assets/vae)",
    "sd": "diffusers AutoencoderKL in the Stable Diffusion layout (widths 128-512, 84 M parameters) with random "
    "weights: right for timing, not for images",
}


def median(samples: Sequence[float]) -> float:
    return float(statistics.median(samples))


def pairwise_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Median of ``numerator[i] / denominator[i]``: each pair timed back to back, so drifts of a shared
    machine cancel in each ratio."""
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError("pairwise_ratio needs two equally long, non-empty sample lists")
    return median([n / max(d, 1e-9) for n, d in zip(numerator, denominator)])


def bench_backbone(vae: str) -> Backbone:
    """The embedded backbone, with its VAE swapped for ``vae`` (a key of :data:`VAE_KINDS`)."""
    if vae not in VAE_KINDS:
        raise ValueError(f"unknown VAE {vae!r}; accepted: {', '.join(VAE_KINDS)}")
    embedded = load_embedded_backbone()
    if vae == "embedded":
        return embedded
    return Backbone(vae=DiffusersVAE(build_sd_layout_vae()), denoiser=embedded.denoiser, depth_estimator=embedded.depth_estimator,
                    name="sd-layout-random", num_inference_steps=embedded.num_inference_steps)


@torch.no_grad()
def true_observations(world: SyntheticWorld, cameras: Sequence[Camera], encode: Callable[[torch.Tensor], torch.Tensor]) -> list[Observation]:
    """The world's true view at every camera, with its latent from ``encode`` and its true depth.

    Filling memories with these (instead of generated frames) gives caches of exactly the size a
    rollout builds, at a fraction of the cost, and the truth to measure a read against.
    """
    observations = []
    for camera in cameras:
        render = world.render(camera)
        observations.append(Observation(camera=camera, image=render.rgb, latent=encode(render.rgb[None])[0], depth=render.depth))
    return observations
