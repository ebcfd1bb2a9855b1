"""Writing a rollout to disk: PNG frames and ``summary.json``, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .engine import Rollout
from .output_dir import atomic_output_dir, check_output_dir

__all__ = ["atomic_output_dir", "check_output_dir", "to_uint8_image", "write_rollout"]


def to_uint8_image(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8."""
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def write_rollout(rollout: Rollout, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write ``summary.json`` and ``frames/<memory>/step_###.png`` (and ``frames/truth``) into ``out_dir``.

    Everything goes to a staging folder beside ``out_dir`` first and is moved into place at the end, so a
    failure never leaves a half-written output directory; ``overwrite`` replaces only a folder mirage_viz
    wrote (see :mod:`mirage_viz.output_dir`).
    """
    with atomic_output_dir(out_dir, overwrite, written_by="mirage-viz rollout") as staging:
        for name, records in rollout.records.items():
            (staging / "frames" / name).mkdir(parents=True)
            for record in records:
                Image.fromarray(to_uint8_image(record.frame)).save(staging / "frames" / name / f"step_{record.step:03d}.png")
        first = next(iter(rollout.records.values()))
        if first and first[0].true_frame is not None:
            (staging / "frames" / "truth").mkdir(parents=True)
            for record in (r for r in first if r.true_frame is not None):  # a photo has a truth at step 0 only
                Image.fromarray(to_uint8_image(record.true_frame)).save(staging / "frames" / "truth" / f"step_{record.step:03d}.png")
        (staging / "summary.json").write_text(json.dumps(rollout.summary(), indent=1))
    return Path(out_dir)
