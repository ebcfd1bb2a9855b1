"""What one rollout step of the embedded models costs on the CPU, estimated before anything runs, and the check
that refuses a size this machine cannot hold (on a CUDA device no estimate applies).

Measured on the 2-core development machine with ``experiments/step_cost.py SIZE 1`` (a ``push_in`` rollout of
the three memories at 6 denoising steps, one size per process: peak RSS, and each step's wall and CPU time), at
128 to 2048 px. Peak RSS grows with the pixel count (the VAE decoder's activations at full size, no attention
term): 0.65, 0.79, 1.51, 2.54 and 3.72 GB at 256, 512, 1024, 1536 and 2048 px. A step took 0.65, 3.0 and 14.4 s
at 256, 512 and 1024 px on 2 threads with the machine quiet; on 1 thread (CPU time, steadier on a shared
machine) 1.2, 5.2, 22.8, 54.5 and 122 s at 256 to 2048 px: a little faster than the pixel count (decoding grows
fastest; the UNet's attention is at 1/32 of the size and stays small), 1.6 to 1.75 times the 2-thread time.
Every step's frames, latents and depth are kept for the whole rollout: 40 steps at 256 px peaked at 1.10 GB
(``step_cost.py 256 40``), 11 MB a step more. The constants below are fitted at 1024 to 2048 px, where the bound
falls, and overestimate smaller sizes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["MAX_STEP_SECONDS", "StepEstimate", "available_memory_bytes", "check_step_fits_machine", "estimate_cpu_step"]

BASE_BYTES = 0.7e9  # the embedded models and torch, loaded (0.52 GB), and a step's fixed part
BYTES_PER_PIXEL = 800  # a step's peak over that: 4.1 GB in all at 2048 px (3.7 to 3.8 measured)
KEPT_BYTES_PER_PIXEL = 175  # each step's frames, latents and depth, kept for the whole rollout (11 MB at 256 px)
SECONDS_PER_PIXEL = 17e-6  # a step of the 3 memories at 6 denoising steps on 2 threads: 71 s at 2048 px
DENOISING_SHARE = 0.3  # of that time, the 6 denoising steps (measured 28 to 31%; the rest: reading memory, decoding)
MEASURED = {"memories": 3, "denoising_steps": 6, "threads": 2}
MAX_STEP_SECONDS = 60.0  # a step estimated longer is refused: a rollout of minutes a step is no use on the CPU


@dataclass(frozen=True)
class StepEstimate:
    """A rollout's last step, estimated on the CPU: peak memory (bytes: the loaded models, the step, every step's
    frames kept) and wall time (seconds)."""

    bytes: float
    seconds: float


def estimate_cpu_step(size: int, steps: int = 1, memories: int = 3, denoising_steps: int = 6,
                      samples: int = 1) -> StepEstimate:
    """The last of ``steps`` steps at ``size`` x ``size`` px of ``memories`` memories, ``denoising_steps`` per frame
    and ``samples`` draws averaged, on this machine's CPU with torch's threads (the time scales from the measured 2)."""
    pixels = float(size) ** 2
    work = (1 - DENOISING_SHARE) + DENOISING_SHARE * denoising_steps * samples / MEASURED["denoising_steps"]
    threads = MEASURED["threads"] / max(1, torch.get_num_threads())
    seconds = SECONDS_PER_PIXEL * pixels * memories / MEASURED["memories"] * work * threads
    kept = max(0, steps - 1) * KEPT_BYTES_PER_PIXEL  # the first step's are in BYTES_PER_PIXEL (measured with them)
    return StepEstimate(bytes=BASE_BYTES + pixels * (BYTES_PER_PIXEL + kept), seconds=seconds)


def available_memory_bytes() -> float | None:
    """Memory the machine can give without swapping: ``MemAvailable`` on Linux, the free pages elsewhere, else None."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None  # the time bound only


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _fits(estimate: StepEstimate, available: float | None) -> bool:
    return estimate.seconds <= MAX_STEP_SECONDS and (available is None or estimate.bytes <= available)


def check_step_fits_machine(size: int, steps: int = 1, memories: int = 3, denoising_steps: int = 6, samples: int = 1,
                            size_multiple: int = 32) -> None:
    """Refuse a rollout whose step (:func:`estimate_cpu_step`) needs more memory than the machine has available or
    takes more than ``MAX_STEP_SECONDS``, giving the estimate and the largest size (and step count) accepted."""
    available = available_memory_bytes()
    settings = (memories, denoising_steps, samples)
    estimate = estimate_cpu_step(size, steps, *settings)
    if _fits(estimate, available):
        return
    sizes = [s for s in range(size_multiple, size, size_multiple)
             if _fits(estimate_cpu_step(s, steps, *settings), available)]
    options = [f"sizes up to {sizes[-1]}" if sizes else f"no size with {steps} steps"]
    if estimate.seconds <= MAX_STEP_SECONDS and available is not None:  # memory alone: fewer steps may fit
        pixels = float(size) ** 2
        most = 1 + int((available - BASE_BYTES - pixels * BYTES_PER_PIXEL) // (pixels * KEPT_BYTES_PER_PIXEL))
        options += [f"at most {most} steps at {size} px"] if most >= 1 else []
    memory = f"the {available / 1e9:.1f} GB available" if available is not None else "the memory"
    raise ValueError(
        f"size {size} with {steps} step(s): a step is estimated at about {estimate.bytes / 1e9:.1f} GB (every step's "
        f"frames kept) and {_duration(estimate.seconds)} on this machine's CPU ({memories} memories, {denoising_steps} "
        f"denoising steps, {samples} sample(s)); accepted: within {memory} and {MAX_STEP_SECONDS / 60:g} min a step: "
        f"{' or '.join(options)} here with these settings, or a CUDA device")
