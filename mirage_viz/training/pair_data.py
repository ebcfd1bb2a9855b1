"""Warp pairs as data: their scenarios, the shares of each, and the pairs file a denoiser trains from.

A pair is a target view's clean latent (C, h, w), the conditioning a memory read at the target camera (C, h, w),
its hole mask (1, h, w), the memory kind (0 none, 1 latent, 2 RGB) and the scenario, an index into ``SCENARIOS``.
This module needs no world renderer: a machine that trains from a pairs file (a GPU machine without open3d, say)
imports only this; :mod:`mirage_viz.training.warp_pairs` makes the pairs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from mirage_viz.training.common import ASSETS

__all__ = ["DEFAULT_SHARES", "SCENARIOS", "Pairs", "add_pair_arguments", "check_pair_arguments", "load_pairs", "parse_shares",
           "recipe_of", "save_pairs"]

SCENARIOS = ("near", "revisit", "far", "generated")  # how a pair's source views are chosen (warp_pairs)
DEFAULT_SHARES = "near=0.4,revisit=0.2,far=0.2,generated=0.2"
Pairs = dict[str, torch.Tensor]  # targets, conditions (N, C, h, w); masks (N, 1, h, w); kinds, scenarios (N,)


def parse_shares(text: str) -> np.ndarray:
    """``"near=0.4,revisit=0.2,..."`` -> probabilities (len(SCENARIOS),) summing to 1; unnamed scenarios get 0."""
    shares = dict.fromkeys(SCENARIOS, 0.0)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if name not in shares:
            raise ValueError(f"unknown scenario {name!r} in {text!r}; choose from {', '.join(SCENARIOS)}")
        try:
            shares[name] = float(value)
        except ValueError:
            raise ValueError(f"scenario share must be a number, got {item!r}") from None
    total = sum(shares.values())
    if total <= 0 or min(shares.values()) < 0:
        raise ValueError(f"scenario shares must be >= 0 and not all 0, got {text!r}")
    return np.array([shares[name] / total for name in SCENARIOS])


def _pack(pairs: Pairs) -> Pairs:
    """Under half the bytes: latents as float16, masks as bool, the conditionings only where covered (holes are 0),
    kinds and scenarios as int8."""
    masks = pairs["masks"] > 0.5  # (N, 1, h, w)
    return {"targets": pairs["targets"].half(), "covered_conditions": pairs["conditions"].half()[masks.expand_as(pairs["conditions"])],
            "masks": masks, "kinds": pairs["kinds"].to(torch.int8), "scenarios": pairs["scenarios"].to(torch.int8)}


def _unpack(packed: Pairs) -> Pairs:
    targets, masks = packed["targets"].float(), packed["masks"]
    conditions = torch.zeros_like(targets)
    conditions[masks.expand_as(conditions)] = packed["covered_conditions"].float()
    return {"targets": targets, "conditions": conditions, "masks": masks.float(), "kinds": packed["kinds"].long(),
            "scenarios": packed["scenarios"].long()}


def save_pairs(path: Path, train: Pairs, held_out: Pairs, recipe: dict) -> None:
    """Write training and held-out pairs with the recipe that made them; written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save({"train": _pack(train), "held_out": _pack(held_out), "recipe": recipe}, partial)
    partial.replace(path)


def load_pairs(path: Path) -> tuple[Pairs, Pairs, dict]:
    """(train, held_out, recipe) from a file :func:`save_pairs` wrote."""
    data = torch.load(path)
    if not isinstance(data, dict) or not {"train", "held_out", "recipe"} <= set(data):
        raise ValueError(f"{path} is not a pairs file (python -m mirage_viz.training.warp_pairs writes one)")
    return _unpack(data["train"]), _unpack(data["held_out"]), data["recipe"]


def add_pair_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--worlds", type=int, default=60, help="training worlds (seeds 0 .. worlds-1)")
    parser.add_argument("--per-world", type=int, default=50, help="training pairs per world")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--shares", default=DEFAULT_SHARES, help=f"scenario shares of the pairs, from {', '.join(SCENARIOS)}")
    parser.add_argument("--drift-from", type=Path, default=ASSETS / "denoiser",
                        help="the generator whose frames the 'generated' scenario writes into memory")
    parser.add_argument("--workers", type=int, default=1, help="processes that make the pairs (same pairs for any count)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vae", type=Path, default=ASSETS / "vae")


def check_pair_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> np.ndarray:
    """The parsed shares; a usage message (not a traceback) for a bad value."""
    try:
        shares = parse_shares(args.shares)
    except ValueError as error:
        parser.error(f"--shares: {error}")
    for name in ("worlds", "per_world", "workers", "size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return shares


def recipe_of(args: argparse.Namespace) -> dict:
    return {"worlds": args.worlds, "per_world": args.per_world, "size": args.size, "seed": args.seed, "shares": args.shares}
