"""A backbone bundles what generates and measures frames: VAE, warp-conditioned denoiser, depth.

The memories, the engine and the pictures never depend on which backbone runs. The embedded
backbone ships in ``mirage_viz/assets/`` and loads offline; any folder or hub id saved with
``save_pretrained`` in the same layout loads through :func:`load_backbone`.
"""

from __future__ import annotations

import importlib.resources

import copy
import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mirage_viz.models.hub import ModelAccess, describe_failure, pick_device, pretrained_kwargs
from mirage_viz.models.denoiser import WarpConditionedPipeline
from mirage_viz.models.depth_net import DepthNet
from mirage_viz.models.hub_depth import DEFAULT_DEPTH_MODEL, TransformersDepth, check_depth_scale
from mirage_viz.models.inpaint import InpaintGenerator, check_guidance_scale
from mirage_viz.models.protocols import DepthEstimator, LatentCodec, LatentGenerator
from mirage_viz.models.vae import DiffusersVAE, interpolate_decoders, load_vae, quiet_diffusers
from mirage_viz.options import OptionGroup, option

__all__ = ["ASSETS_DIR", "DEFAULT_DEPTH_MODEL", "MAX_AVERAGE_SAMPLES", "SHARP_VAE", "Backbone", "DecoderOptions",
           "SamplerOptions", "build_backbone", "check_decoder_sharpness", "check_decoder_sharpness_models",
           "depth_model_for", "load_backbone", "load_embedded_backbone"]

# Everything the embedded default needs at run time ships inside the package (a wheel carries it too).
ASSETS_DIR = Path(str(importlib.resources.files("mirage_viz") / "assets"))

# The name of the shipped VAE whose decoder was retrained with a discriminator to draw edges (its encoder, and so
# its latents, are the embedded VAE's): give it as ``vae`` to build_backbone, the CLI's --vae or the app's VAE box.
SHARP_VAE = "embedded-sharp"
MAX_AVERAGE_SAMPLES = 16  # draws averaged per frame: each costs one more generation


def check_inference_steps(steps: object) -> int | None:
    """``steps`` when it is ``None`` (the generator's own) or a whole number in [1, 1000], else a ``ValueError``."""
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 1000):
        raise ValueError(f"num_inference_steps must be a whole number in [1, 1000] (or None: the generator's own), "
                         f"got {steps!r}")
    return steps


def check_known_cells(known: object) -> bool:
    if not isinstance(known, bool):
        raise ValueError(f"known_cells must be True or False, got {known!r}")
    return known


def check_average_samples(samples: object) -> int:
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= MAX_AVERAGE_SAMPLES:
        raise ValueError(f"average_samples must be a whole number in [1, {MAX_AVERAGE_SAMPLES}] (draws averaged per "
                         f"frame), got {samples!r}")
    return samples


@dataclass(frozen=True)
class SamplerOptions(OptionGroup):
    """How each frame is drawn; every default is the paper's sampler. :meth:`Backbone.generate` takes them."""

    num_inference_steps: int | None = option(
        None, "denoising steps per frame (default: the generator's own: 6 embedded, 20 for a hub generator)",
        check_inference_steps, metavar="N")
    known_cells: bool = option(False, "keep the cells memory covers as memory holds them and generate only the holes "
                               "(RePaint-style); off: the paper's conditioning alone", check_known_cells)
    average_samples: int = option(
        1, "generate K latents per frame and keep their mean: closer to the truth on average, softer where memory "
        f"holds nothing (1: one draw, the paper's sampler; at most {MAX_AVERAGE_SAMPLES})", check_average_samples,
        metavar="K")


@dataclass(frozen=True)
class DecoderOptions(OptionGroup):
    """Which decoder draws the frames; the default is the embedded VAE's own."""

    decoder_sharpness: float = option(
        0.0, f"move the embedded VAE's decoder A of the way (0 to 1) to the discriminator-trained one, {SHARP_VAE}: "
        "sharper frames for a little PSNR (their weights interpolated; the embedded models only)",
        lambda amount: check_decoder_sharpness(amount), metavar="A")


@dataclass
class Backbone:
    """VAE, generator and depth estimator. Tensors in and out live on the CPU in float32; the models on ``device``."""

    vae: LatentCodec  # the embedded AutoencoderTiny, or a hub VAE, as a DiffusersVAE
    denoiser: LatentGenerator  # the embedded WarpConditionedPipeline, or a hub InpaintGenerator
    depth_estimator: DepthEstimator | None  # the embedded DepthNet, or a hub TransformersDepth
    name: str = "embedded"
    num_inference_steps: int = 6  # the generator's own denoising steps per frame
    generator_name: str = "embedded"  # "embedded", or the hub generator's id or folder
    depth_name: str = "embedded"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    notices: list[str] = field(default_factory=list)  # what fell back or was ignored while loading
    # which VAE decodes: "embedded", SHARP_VAE, "embedded, decoder sharpness A", a hub id or folder ("custom": not said)
    vae_name: str = "custom"

    @property
    def downsample_factor(self) -> int:
        return self.vae.downsample_factor

    @property
    def latent_channels(self) -> int:
        return self.vae.latent_channels

    @property
    def size_multiple(self) -> int:
        """Image sizes must be multiples of this: the VAE factor times the generator's own downsampling, and a
        multiple of the depth estimator's (all powers of two)."""
        multiple = self.downsample_factor * self.denoiser.size_multiple
        return math.lcm(multiple, self.depth_estimator.size_multiple) if self.depth_estimator is not None else multiple

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) in [0, 1] -> latents (B, C, H / f, W / f)."""
        return self.vae.encode(images, self.device, self.dtype)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """latents (B, C, h, w) -> images (B, 3, h * f, w * f) in [0, 1]."""
        return self.vae.decode(latents, self.device, self.dtype)

    @torch.no_grad()
    def generate(self, warped_latent: torch.Tensor, mask: torch.Tensor, generator: torch.Generator,
                 num_inference_steps: int | None = None, known_cells: bool = False, samples: int = 1) -> torch.Tensor:
        """warped latent (C, h, w) and mask (h, w) -> generated latent (C, h, w), in ``num_inference_steps``
        denoising steps (default: the backbone's own); ``known_cells`` keeps the covered cells as memory holds them.

        ``samples`` > 1 draws that many latents one after another from ``generator`` and returns their mean: an
        estimate of the mean of what could be there, closer to the truth on average (PSNR) and softer where memory
        holds nothing. Cells the sampler keeps (``known_cells``) are the same in every draw, so they stay as held."""
        check_average_samples(samples)
        steps = num_inference_steps or self.num_inference_steps

        def draw() -> torch.Tensor:
            if not known_cells:  # the call every generator implements
                return self.denoiser.generate(warped_latent, mask, steps, generator, self.device, self.dtype)
            return self.denoiser.generate(warped_latent, mask, steps, generator, self.device, self.dtype, known_cells=True)

        if samples == 1:
            return draw()
        return torch.stack([draw() for _ in range(samples)]).mean(0)  # (samples, C, h, w) -> (C, h, w)

    @torch.no_grad()
    def generate_shared(self, warped_latents: torch.Tensor, masks: torch.Tensor,
                        noise: Callable[[], torch.Generator], num_inference_steps: int | None = None,
                        known_cells: bool = False, samples: int = 1) -> torch.Tensor:
        """Warped latents (B, C, h, w) and masks (B, h, w) -> generated latents (B, C, h, w), every item from the same
        noise (``noise()`` makes a generator seeded alike each time): each equals :meth:`generate` of that item with
        ``noise()``. One batched call per denoising step where the generator has ``generate_batch``; else one call
        per item."""
        check_average_samples(samples)
        steps = num_inference_steps or self.num_inference_steps
        batch = getattr(self.denoiser, "generate_batch", None)
        if batch is None:
            return torch.stack([self.generate(w, m, noise(), steps, known_cells, samples)
                                for w, m in zip(warped_latents, masks)])
        generator = noise()
        options = {"known_cells": True} if known_cells else {}
        draws = [batch(warped_latents, masks, steps, generator, self.device, self.dtype, **options) for _ in range(samples)]
        return draws[0] if samples == 1 else torch.stack(draws).mean(0)  # (samples, B, C, h, w) -> (B, C, h, w)

    def check_decoder_sharpness(self, amount: float) -> None:
        """Raise ``ValueError`` unless :meth:`with_decoder_sharpness` can give ``amount`` to this backbone."""
        check_decoder_sharpness(amount)
        if amount and self.vae_name != "embedded":
            raise ValueError(f"decoder_sharpness {amount:g} blends the embedded VAE's decoder with {SHARP_VAE}'s, but this "
                             f"backbone decodes with {self.vae_name!r}; accepted: decoder_sharpness 0 with any VAE, "
                             "or a value in [0, 1] with the embedded VAE")

    def with_decoder_sharpness(self, amount: float) -> Backbone:
        """The same models decoding with the embedded VAE's decoder moved ``amount`` of the way to
        :data:`SHARP_VAE`'s (:func:`~mirage_viz.models.vae.interpolate_decoders`): 0 is this backbone itself, 1 decodes
        as ``embedded-sharp``. The encoder is shared, so the latents, the memories and the generator are unchanged."""
        self.check_decoder_sharpness(amount)
        if not amount:
            return self
        vae = _interpolated_vae(float(amount))
        if not (self.device.type == "cpu" and self.dtype == torch.float32):
            vae = copy.deepcopy(vae).to(self.device, self.dtype)
        vae_name = f"embedded, decoder sharpness {amount:g}"
        name = vae_name if self.name == "embedded" else f"{self.name} ({vae_name})"
        return dataclasses.replace(self, vae=vae, vae_name=vae_name, name=name)

    def with_prompt(self, prompt: str) -> Backbone:
        """The same models with another prompt for a hub generator (shared, not reloaded); itself otherwise."""
        denoiser = self.denoiser.with_prompt(prompt)
        return self if denoiser is self.denoiser else dataclasses.replace(self, denoiser=denoiser)

    @torch.no_grad()
    def estimate_depth(self, image: torch.Tensor) -> torch.Tensor:
        """image (3, H, W) in [0, 1] -> metric depth (H, W)."""
        if self.depth_estimator is None:
            raise ValueError(f"backbone {self.name!r} has no depth estimator; use the true depth (depth_source='truth')")
        return self.depth_estimator.estimate(image, self.device, self.dtype)


def load_backbone(
    vae: str | Path, denoiser: str | Path, depth: str | Path | None = None, name: str = "custom", **kwargs: object
) -> Backbone:
    """Load a backbone from folders or hub ids saved with ``save_pretrained``.

    ``vae`` holds an ``AutoencoderKL`` (or ``AutoencoderTiny``) config; ``denoiser`` a ``unet/`` and
    ``scheduler/`` pair; ``depth`` a :class:`DepthNet`.
    """
    vae_model = DiffusersVAE(load_vae(vae))
    depth_model = DepthNet.from_pretrained(str(depth), low_cpu_mem_usage=False).eval() if depth is not None else None
    kwargs.setdefault("vae_name", str(vae))
    return Backbone(vae=vae_model, denoiser=WarpConditionedPipeline.from_pretrained(denoiser),
                    depth_estimator=depth_model, name=name, **kwargs)


@functools.lru_cache(maxsize=1)
def load_embedded_backbone(assets_dir: str | Path = ASSETS_DIR) -> Backbone:
    """The models shipped in ``mirage_viz/assets/`` (offline, CPU). Cached: loaded once per process."""
    assets = Path(assets_dir)
    missing = [p for p in ("vae", "denoiser", "depth") if not (assets / p).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"embedded models missing in {assets}: {', '.join(missing)}; "
            "train them with `python -m mirage_viz.training.<vae|denoiser|depth>`"
        )
    return load_backbone(assets / "vae", assets / "denoiser", assets / "depth", name="embedded", vae_name="embedded")


@functools.lru_cache(maxsize=1)
def _sharp_vae() -> DiffusersVAE:
    """The shipped ``vae_sharp`` folder (CPU, float32). Cached: loaded once per process."""
    return DiffusersVAE(load_vae(ASSETS_DIR / "vae_sharp"))


def check_decoder_sharpness(amount: object) -> float:
    """``amount`` if it is a number in [0, 1] (how far the embedded decoder moves towards the sharp one), else ValueError."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 <= amount <= 1.0:
        raise ValueError(f"decoder_sharpness must be a number in [0, 1] (0: the embedded decoder, 1: {SHARP_VAE}'s), "
                         f"got {amount!r}")
    return float(amount)


def check_decoder_sharpness_models(amount: float, vae: str | Path | None, generator: str | Path | None) -> None:
    """Before any model loads: ``ValueError`` when ``amount`` asks for decoder sharpness but ``vae`` or ``generator``
    names a model other than the embedded ones (only the embedded VAE has a sharp twin to blend with)."""
    check_decoder_sharpness(amount)
    named = [f"{kind} {str(value).strip()!r}" for kind, value in (("VAE", vae), ("generator", generator))
             if value is not None and str(value).strip() not in ("", "embedded")]
    if amount and named:
        raise ValueError(f"decoder_sharpness {amount:g} blends the embedded VAE's decoder with {SHARP_VAE}'s, but "
                         f"{' and '.join(named)} would decode; accepted: decoder_sharpness 0 with other models, or the "
                         "embedded models with a value in [0, 1]")


@functools.lru_cache(maxsize=4)
def _interpolated_vae(amount: float) -> DiffusersVAE:
    """The embedded VAE with its decoder ``amount`` of the way to the sharp one's (CPU, float32). Cached per amount."""
    return DiffusersVAE(interpolate_decoders(load_embedded_backbone().vae.model, _sharp_vae().model, amount))


def _embedded_on(device: torch.device, dtype: torch.dtype) -> Backbone:
    """The embedded backbone on ``device``: the shared CPU copy itself, or a private copy moved there."""
    embedded = load_embedded_backbone()
    if device.type == "cpu" and dtype == torch.float32:
        return embedded
    moved = copy.deepcopy(embedded)
    moved.vae.to(device, dtype)
    moved.denoiser.unet.to(device, dtype)
    moved.depth_estimator.to(device, dtype)
    moved.device, moved.dtype = device, dtype
    return moved


def _trust_kwargs(source, location: str) -> dict:
    """``from_pretrained`` arguments: cache-only when the hub is unreachable; a visitor's models as safetensors only."""
    kwargs = pretrained_kwargs(location)
    if source.visitor:
        kwargs["use_safetensors"] = True
    return kwargs


def depth_model_for(requested: str | Path | None, photo: bool, depth_source: str = "truth") -> str | Path | None:
    """The one rule for which depth model a rollout loads (the CLI, the app and drive mode ask here).

    ``requested`` is what the user named: a transformers model (hub id or folder), ``"embedded"`` or ``""`` for
    the shipped estimator, or None for the default. A photo has no true depth: its default is
    :data:`DEFAULT_DEPTH_MODEL`. A synthetic world lifts its frames with the world's true depth unless
    ``depth_source`` is ``"estimated"``; its default estimator is the embedded one. Returns the model to pass
    to :func:`build_backbone` as ``depth``, None for the embedded estimator (or none needed).
    """
    if not photo and depth_source != "estimated":
        return None  # the world's true depth needs no estimator
    if requested is None:
        return DEFAULT_DEPTH_MODEL if photo else None
    requested = str(requested).strip() if isinstance(requested, str) else requested
    return None if requested in ("", "embedded") else requested


def build_backbone(
    vae: str | Path | None = None,
    generator: str | Path | None = None,
    depth: str | Path | None = DEFAULT_DEPTH_MODEL,
    prompt: str = "",
    device: str | None = None,
    cpu_offload: bool = False,
    depth_scale: float = 3.0,
    guidance_scale: float = 5.0,
    access: ModelAccess | None = None,
) -> Backbone:
    """A backbone of hub models (ids or folders) with the embedded models as fallback.

    Args:
        vae: an ``AutoencoderKL`` / ``AutoencoderTiny`` (e.g. ``madebyollin/taesd``), or :data:`SHARP_VAE`
            (``"embedded-sharp"``: the shipped VAE with a decoder trained for edges); default: the generator's, else embedded.
        generator: a ``StableDiffusionInpaintPipeline`` (e.g. ``stable-diffusion-v1-5/stable-diffusion-inpainting``);
            default: the embedded denoiser.
        depth: a transformers depth-estimation model; ``None`` uses the embedded estimator.
        prompt: the generator's text prompt.
        device: ``auto`` (CUDA with float16 when present), ``cpu`` or ``cuda[:N]``.
        cpu_offload: offload the hub generator's submodules to the CPU between uses (CUDA only; needs accelerate).
        depth_scale: median depth in metres given to relative depth predictions.
        guidance_scale: classifier-free guidance of a hub generator, in ``GUIDANCE_RANGE`` (NaN and infinity refused).
        access: which folders and ids may be named (:class:`~mirage_viz.models.hub.ModelAccess`); default: any folder or
            hub id. The app passes ``ModelAccess.for_visitors(...)``: hub ids and allowed folders only.

    A model id that is malformed, or a path the access refuses, raises ``ValueError`` before anything loads.
    Denoising steps per frame are the generator's own (embedded 6, hub 20) unless a rollout's
    ``RolloutConfig.num_inference_steps`` says otherwise. Whatever cannot be loaded falls back to the embedded model; ``Backbone.notices`` says what and why.
    """
    device_, dtype = pick_device(device)
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be text, got {type(prompt).__name__}")
    depth_scale = check_depth_scale(depth_scale)
    guidance_scale = check_guidance_scale(guidance_scale)  # before anything loads
    access = access or ModelAccess()
    sharp = isinstance(vae, str) and vae.strip() == SHARP_VAE  # shipped, so not a hub id or folder to resolve
    sources = {kind: access.resolve(value, kind) if value else None
               for kind, value in (("vae", None if sharp else vae), ("generator", generator), ("depth model", depth))}
    base = _embedded_on(device_, dtype)
    if not any(sources.values()) and not sharp:
        return base  # nothing asked of the hub: the embedded models (on the CPU, the shared copy itself)
    notices: list[str] = []
    parts = {"vae": "embedded", "generator": "embedded", "depth": "embedded"}
    denoiser, vae_model, steps = base.denoiser, base.vae, base.num_inference_steps
    hub_pipeline = None  # a hub generator's pipeline, which decodes with the VAE chosen below
    if (source := sources["generator"]) is not None:
        try:
            from diffusers import StableDiffusionInpaintPipeline

            location = source.fetch("generator")
            with quiet_diffusers():
                pipeline = StableDiffusionInpaintPipeline.from_pretrained(
                    location, dtype=dtype, safety_checker=None, requires_safety_checker=False,
                    **_trust_kwargs(source, location))
            denoiser, hub_pipeline = InpaintGenerator(pipeline, prompt=prompt, guidance_scale=guidance_scale), pipeline
            if sharp:
                notices.append(f"{SHARP_VAE} decodes the embedded generator's latents; a hub generator decodes "
                               "with its own VAE")
            vae_model, steps, parts["generator"] = DiffusersVAE(pipeline.vae), 20, source.name
            parts["vae"] = f"{source.name} (its own)"
            if cpu_offload and device_.type == "cuda":
                pipeline.enable_model_cpu_offload(device=device_)
            else:
                pipeline.to(device_)
                if cpu_offload:
                    notices.append("CPU offload applies on a CUDA device only; ignored on the CPU")
        except Exception as error:  # noqa: BLE001 - any failure to load means: fall back, and say why
            notices.append(describe_failure("generator", source, error) + "; using the embedded denoiser")
    if sharp and hub_pipeline is None:
        vae_model, parts["vae"] = _sharp_vae(), SHARP_VAE
        if not (device_.type == "cpu" and dtype == torch.float32):
            vae_model = copy.deepcopy(vae_model).to(device_, dtype)
    if (source := sources["vae"]) is not None:
        try:
            location = source.fetch("vae")
            with quiet_diffusers():
                vae_model = DiffusersVAE(load_vae(location, **_trust_kwargs(source, location))).to(device_, dtype)
            if vae_model.latent_channels != 4:
                raise ValueError(f"it has {vae_model.latent_channels} latent channels; the generators take 4")
            parts["vae"] = source.name
            if hub_pipeline is not None:
                hub_pipeline.vae = vae_model.model
            else:
                notices.append("the embedded denoiser was trained on the embedded VAE's latents: a hub VAE alone "
                               "gives poor frames; pair it with a hub generator")
        except Exception as error:  # noqa: BLE001
            notices.append(describe_failure("VAE", source, error) + f"; using the {parts['vae']} VAE")
    depth_model, depth_name = base.depth_estimator, "embedded"
    if (source := sources["depth model"]) is not None:
        try:
            location = source.fetch("depth model")
            depth_model = TransformersDepth(location, depth_scale=depth_scale, device=device_, dtype=dtype,
                                            use_safetensors=True if source.visitor else None)
            depth_model.name = depth_name = source.name
        except Exception as error:  # noqa: BLE001
            notices.append(describe_failure("depth model", source, error) + "; using the embedded depth estimator")
    parts["depth"] = depth_name
    name = "embedded" if all(v == "embedded" for v in parts.values()) else ", ".join(f"{k}: {v}" for k, v in parts.items())
    return Backbone(vae=vae_model, denoiser=denoiser, depth_estimator=depth_model, name=name,
                    num_inference_steps=steps, generator_name=parts["generator"], depth_name=depth_name, device=device_,
                    dtype=dtype, notices=notices, vae_name=parts["vae"])
