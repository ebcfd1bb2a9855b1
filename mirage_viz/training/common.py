"""Small helpers shared by the training scripts."""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch

ASSETS = Path(__file__).resolve().parents[1] / "assets"  # the package data: mirage_viz/assets


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cosine_lr(step: int, total: int, peak: float, warmup: int = 100, floor: float = 0.05) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def descend(loss: torch.Tensor, optimizer: torch.optim.Optimizer, clip: object = None, max_norm: float = 1.0) -> None:
    """One optimizer step on ``loss``; gradients of ``clip`` (parameters) clipped to ``max_norm`` first when given."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(clip, max_norm)
    optimizer.step()


class Log:
    """Prints a line and appends it to ``path`` as JSON."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.start = time.perf_counter()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")

    def __call__(self, **fields: object) -> None:
        fields = {"elapsed_s": round(time.perf_counter() - self.start, 1), **fields}
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items()), flush=True)
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(fields) + "\n")


def save_result(model: object, out: Path, result: dict, log: Log) -> dict:
    """Save ``model`` with ``save_pretrained`` (safetensors) and its ``training_result.json`` into ``out``."""
    model.save_pretrained(out)
    (out / "training_result.json").write_text(json.dumps(result, indent=2))
    log(event="done", **result)
    return result
