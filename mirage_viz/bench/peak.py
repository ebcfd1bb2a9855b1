"""Peak process memory of one memory, measured in a fresh process of its own.

The child loads the VAE and renders the true views, then (the baseline) resets the kernel's
peak-RSS counter, writes every frame into the one memory and reads the last camera. What it
prints is how far the process's resident memory rose above the baseline: the cache plus the
read's working set (for the RGB memory, the pixel render and the VAE encoder's activations).

Run by :func:`measure_peak_memory`; by hand: ``python -m mirage_viz.bench.peak '{"memory": "rgb", ...}'``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["PEAK_MEMORY_SUPPORTED", "measure_peak_memory"]

PEAK_MEMORY_SUPPORTED = Path("/proc/self/status").exists()  # Linux: VmRSS / VmHWM


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _child(setting: dict) -> dict:
    import torch

    torch.set_num_threads(int(setting.get("threads", 2)))
    from mirage_viz.geometry.cameras import Intrinsics
    from mirage_viz.rollout.config import RolloutConfig
    from mirage_viz.rollout.engine import make_memory
    from mirage_viz.scenes.trajectories import make_trajectory
    from mirage_viz.scenes.worlds import make_world
    from mirage_viz.bench.common import bench_backbone

    size, frames = int(setting["size"]), int(setting["frames"])
    backbone = bench_backbone(setting["vae"])
    memory = make_memory(setting["memory"], backbone, RolloutConfig(size=size))
    factor = backbone.downsample_factor
    latent_shape = (backbone.latent_channels, size // factor, size // factor)
    cameras = make_trajectory("loop", frames - 1).cameras(Intrinsics.from_fov(size, size, 60.0))
    world = make_world("room", 0)
    renders = [world.render(camera) for camera in cameras]
    # latents of the right shape: what the generator would hand the latent memory (values do not matter here)
    latents = torch.randn(frames, *latent_shape, generator=torch.Generator().manual_seed(0))
    from mirage_viz.memories import Observation

    observations = [Observation(camera=c, image=r.rgb, latent=z, depth=r.depth) for c, r, z in zip(cameras, renders, latents)]
    baseline = _status_kib("VmRSS")
    exact = _reset_peak()
    with torch.no_grad():
        for observation in observations:
            memory.write(observation)
        memory.read(cameras[len(cameras) // 2], latent_shape)
    peak = _status_kib("VmHWM")  # without the reset, this includes the set-up's own peak
    return {
        "baseline_mb": round(baseline / 1024, 2),
        "peak_mb": round(peak / 1024, 2),
        "peak_over_baseline_mb": round(max(0, peak - baseline) / 1024, 2),
        "cache_bytes": memory.stats().bytes,
        "peak_reset": exact,
    }


def measure_peak_memory(memory: str, size: int, vae: str, frames: int, timeout_s: float = 600.0) -> dict:
    """Peak resident memory of a fresh process that holds ``frames`` frames in ``memory`` and reads once."""
    if not PEAK_MEMORY_SUPPORTED:
        raise ValueError("peak memory is read from /proc/self/status, which this system does not have (Linux only)")
    setting = {"memory": memory, "size": size, "vae": vae, "frames": frames}
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    try:
        done = subprocess.run([sys.executable, "-m", "mirage_viz.bench.peak", json.dumps(setting)],
                              capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"peak-memory probe for {setting} took more than {timeout_s:.0f} s") from None
    if done.returncode != 0:
        raise RuntimeError(f"peak-memory probe for {setting} failed: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
