"""How close a latent read comes to the machine's limit: bytes of cache read per second against a copy.

A read must at least stream the whole cache once, so the rate at which the machine copies memory is
the bound to approach. Both are measured here: the copy on a buffer far larger than the CPU caches
(main memory) and on one as large as the latent cache itself.
"""

from __future__ import annotations

import torch

from mirage_viz.backbone import Backbone
from mirage_viz.memories import LatentSpatialMemory
from mirage_viz.bench.common import median, timed_ms
from mirage_viz.bench.fidelity import trajectory_views

__all__ = ["copy_rate_gbps", "read_throughput"]


def copy_rate_gbps(nbytes: int, repeats: int = 7) -> float:
    """Bytes copied per second (GB/s, 1e9) by ``Tensor.copy_`` between two buffers of ``nbytes``."""
    source = torch.ones(max(1, nbytes // 4))
    target = torch.empty_like(source)
    target.copy_(source)  # touch every page first
    times = [timed_ms(lambda: target.copy_(source))[1] for _ in range(repeats)]
    return source.nbytes / (median(times) / 1e3) / 1e9


def significant(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits (a tiny cache's rate stays above 0, where rounding to places would not)."""
    return float(f"{value:.{digits}g}")


@torch.no_grad()
def read_throughput(backbone: Backbone, steps: int = 100, size: int = 256, repeats: int = 21, world: str = "room") -> dict:
    """Read time of the latent cache after a ``steps``-step loop, and its bytes per second against copies."""
    observations = trajectory_views(world, "loop", steps, size, backbone)
    result = {"steps": steps, "size": size, "frames": len(observations)}
    main_memory = copy_rate_gbps(256 * 2**20)
    result["copy_gbps_main_memory"] = significant(main_memory)
    for dtype in ("float32", "float16"):
        memory = LatentSpatialMemory(latent_dtype=dtype)
        for observation in observations:
            memory.write(observation)
        camera, shape = observations[len(observations) // 2].camera, tuple(observations[0].latent.shape)
        memory.read(camera, shape)  # warm-up
        read_ms = median([timed_ms(lambda: memory.read(camera, shape))[1] for _ in range(repeats)])
        nbytes = memory.stats().bytes
        throughput = nbytes / (read_ms / 1e3) / 1e9
        same_size = copy_rate_gbps(nbytes)
        result[dtype] = {
            "cache_points": memory.stats().points,
            "cache_bytes": nbytes,
            "read_ms": round(read_ms, 4),
            "read_gbps": significant(throughput),
            "copy_gbps_same_size": significant(same_size),
            "fraction_of_main_memory_copy": significant(throughput / main_memory),
            "fraction_of_same_size_copy": significant(throughput / same_size),
        }
    return result
