"""Depth from a transformers depth-estimation model (Depth Anything V2 Small by default), in metres.

Such models predict relative depth: Depth Anything an inverse depth (disparity, larger is nearer), others
a depth up to scale. Either is turned into metric depth whose median is ``depth_scale`` metres (3 m:
a room), with the far end capped at ``max_ratio`` times the median (sky and windows have no depth).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from mirage_viz.models.hub import pretrained_kwargs

__all__ = ["DEFAULT_DEPTH_MODEL", "DEPTH_SCALE_RANGE", "TransformersDepth", "check_depth_scale"]

DEFAULT_DEPTH_MODEL = "depth-anything/Depth-Anything-V2-Small-hf"
DEPTH_SCALE_RANGE = (0.1, 100.0)  # metres: the median depth given to relative predictions


def check_depth_scale(depth_scale: float) -> float:
    """``depth_scale`` as a float, or a ``ValueError`` naming the accepted range."""
    low, high = DEPTH_SCALE_RANGE
    try:
        value = float(depth_scale)
    except (TypeError, ValueError):
        value = float("nan")
    if not low <= value <= high:
        raise ValueError(f"depth scale must be a number of metres in [{low:g}, {high:g}], got {depth_scale!r}")
    return value


class TransformersDepth:
    """Wraps ``AutoModelForDepthEstimation``: images (B, 3, H, W) in [0, 1] -> metric depth (B, H, W)."""

    def __init__(self, model_id: str | Path = DEFAULT_DEPTH_MODEL, depth_scale: float = 3.0, inverse: bool | None = None,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, max_ratio: float = 20.0,
                 use_safetensors: bool | None = None) -> None:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()  # no backend notes or weight-loading bars in the app's log
        transformers_logging.disable_progress_bar()

        depth_scale = check_depth_scale(depth_scale)
        kwargs = pretrained_kwargs(model_id)
        self.processor = AutoImageProcessor.from_pretrained(str(model_id), **kwargs)
        self.model = AutoModelForDepthEstimation.from_pretrained(str(model_id), dtype=dtype, use_safetensors=use_safetensors,
                                                                 **kwargs).to(device).eval()
        model_type = getattr(self.model.config, "model_type", "")
        # Depth Anything and DPT predict inverse relative depth; others (GLPN, ZoeDepth, ...) depth
        self.inverse = inverse if inverse is not None else model_type in ("depth_anything", "dpt")
        self.name = str(model_id)
        self.depth_scale = float(depth_scale)
        self.max_ratio = float(max_ratio)
        self.device, self.dtype = torch.device(device), dtype

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        inputs = self.processor(images=[image.float().cpu() for image in images], return_tensors="pt", do_rescale=False)
        pixels = inputs["pixel_values"].to(self.device, self.dtype)
        predicted = self.model(pixel_values=pixels).predicted_depth.float().cpu()  # [B, h, w] relative
        predicted = F.interpolate(predicted[:, None], size=(height, width), mode="bilinear", align_corners=False)[:, 0]
        return torch.stack([self._metric(p) for p in predicted])

    size_multiple = 1  # the processor resizes any image to the model's own size

    def estimate(self, image: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """image (3, H, W) in [0, 1] -> metric depth (H, W); the model runs on its own device."""
        return self(image[None])[0]

    def _metric(self, relative: torch.Tensor) -> torch.Tensor:
        """Relative (inverse) depth (H, W) -> metric depth with median ``depth_scale``, in [median / max_ratio, median * max_ratio]."""
        relative = relative - relative.min() if not self.inverse else relative.clamp_min(0)
        peak = float(relative.max())
        if peak <= 0 or not torch.isfinite(relative).all():
            return torch.full_like(relative, self.depth_scale)  # a flat prediction: a wall at depth_scale
        floor = peak / (self.max_ratio ** 2)
        depth = 1.0 / relative.clamp_min(floor) if self.inverse else relative.clamp_min(floor)
        depth = depth * (self.depth_scale / depth.median())
        return depth.clamp(self.depth_scale / self.max_ratio, self.depth_scale * self.max_ratio)
