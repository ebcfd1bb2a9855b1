"""The embedded VAE: a small diffusers ``AutoencoderTiny`` (TAESD layout) with f = 8 and 4 latent channels (finer
layouts build for measurement: :func:`build_embedded_vae`).

Images are (B, 3, H, W) in [0, 1] at the API; the model sees [-1, 1]. Latents handed to the rest of
mirage_viz are the encoder output (for ``AutoencoderKL``: the posterior mode) times ``config.scaling_factor`` (unit variance on the
training views), as diffusers pipelines do.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from diffusers import AutoencoderKL, AutoencoderTiny
from diffusers.utils import logging as diffusers_logging

__all__ = ["DiffusersVAE", "EMBEDDED_DOWNSAMPLE_FACTORS", "embedded_vae_config", "build_embedded_vae", "sd_vae_config",
           "build_sd_layout_vae", "load_vae", "encode_images", "decode_latents", "vae_downsample_factor", "interpolate_decoders"]


EMBEDDED_DOWNSAMPLE_FACTORS = (2, 4, 8)  # pixels per latent cell the embedded layout can be built with; 8 ships


def embedded_vae_config(downsample_factor: int = 8, latent_channels: int = 4) -> dict:
    """The embedded VAE's ``AutoencoderTiny`` config: 32 channels wide, f = ``downsample_factor`` (one block per
    halving, as TAESD) and ``latent_channels``. The shipped VAE is f = 8 with 4 channels, as Stable Diffusion's."""
    if downsample_factor not in EMBEDDED_DOWNSAMPLE_FACTORS:
        raise ValueError(f"downsample_factor must be one of {EMBEDDED_DOWNSAMPLE_FACTORS}, got {downsample_factor!r}")
    if isinstance(latent_channels, bool) or not isinstance(latent_channels, int) or latent_channels < 3:
        raise ValueError(f"latent_channels must be a whole number >= 3 (the first three carry colour), got {latent_channels!r}")
    halvings = downsample_factor.bit_length() - 1
    return dict(
        in_channels=3,
        out_channels=3,
        encoder_block_out_channels=(32,) * (halvings + 1),
        decoder_block_out_channels=(32,) * (halvings + 1),
        num_encoder_blocks=(1,) + (3,) * halvings,
        num_decoder_blocks=(3,) * halvings + (1,),
        latent_channels=latent_channels,
        scaling_factor=1.0,
    )


def build_embedded_vae(downsample_factor: int = 8, latent_channels: int = 4) -> AutoencoderTiny:
    """A new, untrained embedded VAE (:func:`embedded_vae_config`)."""
    return AutoencoderTiny(**embedded_vae_config(downsample_factor, latent_channels))


def sd_vae_config() -> dict:
    """Stable Diffusion's VAE layout (``AutoencoderKL``, f = 8, 4 latent channels, widths 128-512)."""
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        sample_size=512,
        scaling_factor=0.18215,
    )


def build_sd_layout_vae(seed: int = 0) -> AutoencoderKL:
    """An ``AutoencoderKL`` in the SD layout with random weights (84 M parameters): right for timing, not for images."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return AutoencoderKL(**sd_vae_config()).eval()


def load_vae(path: str | Path, **kwargs: object) -> AutoencoderKL | AutoencoderTiny:
    """Load an ``AutoencoderKL`` or ``AutoencoderTiny`` saved with ``save_pretrained`` (folder or hub id).

    ``kwargs`` go to ``from_pretrained`` (e.g. ``local_files_only``).
    """
    config_kwargs = {k: v for k, v in kwargs.items() if k != "use_safetensors"}
    class_name = AutoencoderKL.load_config(str(path), **config_kwargs).get("_class_name", "AutoencoderKL")
    model_class = {"AutoencoderKL": AutoencoderKL, "AutoencoderTiny": AutoencoderTiny}.get(class_name)
    if model_class is None:
        raise ValueError(f"{path}: unsupported VAE class {class_name!r}; accepted: AutoencoderKL, AutoencoderTiny")
    with quiet_diffusers():  # AutoencoderTiny warns about a config key it writes itself
        return model_class.from_pretrained(str(path), low_cpu_mem_usage=False, **kwargs).eval()


@contextmanager
def quiet_diffusers() -> Iterator[None]:
    """Only errors from diffusers' logger inside the block."""
    previous = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(previous)


def vae_downsample_factor(vae: AutoencoderKL | AutoencoderTiny) -> int:
    """Pixels per latent cell: the encoder halves the image once per block after the first."""
    blocks = getattr(vae.config, "encoder_block_out_channels", None) or vae.config.block_out_channels  # Tiny, KL
    return 2 ** (len(blocks) - 1)


def encode_images(vae: AutoencoderKL | AutoencoderTiny, images: torch.Tensor) -> torch.Tensor:
    """images (B, 3, H, W) in [0, 1] -> scaled latents (B, C, H / f, W / f) (for AutoencoderKL: the posterior mode)."""
    encoded = vae.encode(images * 2 - 1)
    latents = encoded.latent_dist.mode() if hasattr(encoded, "latent_dist") else encoded.latents
    return latents * vae.config.scaling_factor


def decode_latents(vae: AutoencoderKL | AutoencoderTiny, latents: torch.Tensor) -> torch.Tensor:
    """scaled latents (B, C, h, w) -> images (B, 3, h * f, w * f) in [0, 1]."""
    images = vae.decode(latents / vae.config.scaling_factor).sample
    return ((images + 1) / 2).clamp(0, 1)


class DiffusersVAE:
    """A diffusers ``AutoencoderKL`` or ``AutoencoderTiny`` as the backbone's latent codec
    (:class:`~mirage_viz.models.protocols.LatentCodec`); ``model`` is the diffusers model itself."""

    def __init__(self, model: AutoencoderKL | AutoencoderTiny) -> None:
        # channels-last convolutions: the embedded decoder runs 1.5x to 1.7x faster on CPU (256 px, 2 cores)
        self.model = model.to(memory_format=torch.channels_last)
        # ReLU in place (each one's input is a fresh tensor no one else reads): the same pixels, no 50 MB tensor
        # allocated per activation; a 3-latent decode at 256 px takes 146 ms against 152 to 172 ms (2 cores)
        for module in self.model.modules():
            if isinstance(module, torch.nn.ReLU):
                module.inplace = True

    @property
    def downsample_factor(self) -> int:
        return vae_downsample_factor(self.model)

    @property
    def latent_channels(self) -> int:
        return self.model.config.latent_channels

    def to(self, device: torch.device, dtype: torch.dtype) -> DiffusersVAE:
        self.model.to(device, dtype)
        return self

    @torch.no_grad()
    def encode(self, images: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        images = images.to(device, dtype).contiguous(memory_format=torch.channels_last)
        return encode_images(self.model, images).float().cpu().contiguous()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        latents = latents.to(device, dtype).contiguous(memory_format=torch.channels_last)
        return decode_latents(self.model, latents).float().cpu().contiguous()


@torch.no_grad()
def interpolate_decoders(base: AutoencoderTiny | AutoencoderKL, other: AutoencoderTiny | AutoencoderKL,
                         amount: float) -> AutoencoderTiny | AutoencoderKL:
    """A copy of ``base`` whose decoder weights are ``(1 - amount) * base's + amount * other's``.

    Network interpolation, as ESRGAN's between its PSNR-trained and its adversarially trained generator: one decoder
    that sits between a smooth one and a sharp one, at the cost of one. ``other`` must be ``base`` with its decoder
    retrained (``python -m mirage_viz.training.vae --decoder-only``): the same layout, the same encoder and scaling
    factor, so both decode the same latents. ``amount`` is in [0, 1]: 0 gives ``base``'s decoder, 1 ``other``'s.
    """
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount must be in [0, 1], got {amount!r}")

    def layout(vae: AutoencoderTiny | AutoencoderKL) -> dict:  # the configuration, less where it was loaded from
        return {key: value for key, value in vae.config.items() if not key.startswith("_")}

    if type(base) is not type(other) or layout(base) != layout(other):
        raise ValueError("the two VAEs must share one layout and configuration (a --decoder-only retraining of one)")
    theirs = other.state_dict()
    mixed = {}
    for name, mine in base.state_dict().items():
        if name.startswith("decoder.") and mine.is_floating_point():
            mixed[name] = torch.lerp(mine, theirs[name].to(mine.dtype), amount)
        elif not torch.equal(mine, theirs[name]):
            raise ValueError(f"the two VAEs differ outside the decoder ({name}): they would not decode the same latents")
        else:
            mixed[name] = mine
    blended = copy.deepcopy(base)
    blended.load_state_dict(mixed)
    return blended


@torch.no_grad()
def init_mean_colour_path(vae: AutoencoderTiny) -> AutoencoderTiny:
    """Start an ``AutoencoderTiny`` as a working mean-colour autoencoder, so training adds detail.

    Channels 0-2 of every layer carry RGB: the encoder averages it down (exact 2x2 area means at each stride) into
    latent channels 0-2, the decoder carries it back up (nearest upsampling, 3x3 smoothing). Every
    residual block starts as the identity (its last conv zeroed); the other channels keep their random
    initialisation and learn the detail. From scratch, a small model on a CPU budget learns luminance
    first and colour very late; this start is about 27 dB before the first step.
    """
    if not isinstance(vae, AutoencoderTiny):
        raise TypeError("init_mean_colour_path expects an AutoencoderTiny")
    from diffusers.models.autoencoders.vae import AutoencoderTinyBlock

    def carry(conv: torch.nn.Conv2d, kernel: torch.Tensor) -> None:
        conv.weight[:3] = 0.0
        for c in range(3):
            conv.weight[c, c] = kernel
        if conv.bias is not None:
            conv.bias[:3] = 0.0

    centre = torch.zeros(3, 3)
    centre[1, 1] = 1.0
    mean = torch.full((3, 3), 1.0 / 9.0)
    area = torch.zeros(3, 3)
    area[1:, 1:] = 0.25  # stride 2, padding 1: output j averages inputs 2j and 2j + 1 (exact area downsampling)
    for module in vae.modules():
        if isinstance(module, AutoencoderTinyBlock):
            module.conv[-1].weight.zero_()
            module.conv[-1].bias.zero_()
    for part in (vae.encoder.layers, vae.decoder.layers):
        convs = [m for m in part if isinstance(m, torch.nn.Conv2d)]
        for index, conv in enumerate(convs):
            if conv.stride[0] == 2:
                carry(conv, area)
            elif part is vae.decoder.layers and 0 < index < len(convs) - 1:
                carry(conv, mean)  # smooth after each nearest upsampling
            elif part is vae.encoder.layers and index == len(convs) - 1:
                carry(conv, 0.5 * centre)  # latents in [0, 0.5]: where the decoder's tanh clamp is near linear
            elif part is vae.decoder.layers and index == 0:
                carry(conv, 2.0 * centre)
            else:
                carry(conv, centre)
    return vae
