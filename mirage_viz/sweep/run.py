"""One run of a sweep, the same function on every engine: a rollout of the three memories, as table rows.

:func:`execute_run` is what the local engine calls in process or in a pool, and what Ray runs as a task: one code
path. A process loads the embedded models once and keeps them (:func:`process_backbone`); torch runs on
``threads`` threads for the run, so parallel runs share the machine's cores instead of fighting over them.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator

import pyarrow as pa
import torch

from mirage_viz.backbone import Backbone, load_embedded_backbone
from mirage_viz.rollout.engine import run_rollout
from mirage_viz.sweep.grid import RunSpec

__all__ = ["SCHEMA", "execute_run", "process_backbone", "rows_table"]

# One row per run x memory x step. Pinned by tests/sweep/test_sweep.py: readers (the app, the notebook) rely on it.
SCHEMA = pa.schema([
    ("run_id", pa.string()),
    ("world", pa.string()),
    ("world_seed", pa.int64()),
    ("trajectory", pa.string()),
    ("steps", pa.int32()),
    ("size", pa.int32()),
    ("depth", pa.string()),  # the depth quality asked: truth, estimated, or an error spec on the truth
    ("depth_mode", pa.string()),
    ("seed", pa.int64()),
    ("memory", pa.string()),
    ("step", pa.int32()),
    ("revisit", pa.bool_()),  # the last step of a path that ends where it started: the return frame
    ("psnr", pa.float64()),  # against the truth, dB; null where they match exactly
    ("ssim", pa.float64()),
    ("mask_coverage", pa.float64()),  # cells of the warped latent (or render) that memory covered
    ("cache_points", pa.int64()),
    ("cache_bytes", pa.int64()),
    ("read_ms", pa.float64()),  # wall-clock: differs from run to run, unlike every other column
    ("step_ms", pa.float64()),  # wall-clock: read + generate + decode + depth + write
    ("depth_abs_rel", pa.float64()),  # mean |depth used - true| / true over pixels with depth
    ("depth_holes", pa.float64()),  # fraction of pixels without depth
])
TIMING_COLUMNS = ("read_ms", "step_ms")


@functools.lru_cache(maxsize=1)
def process_backbone() -> Backbone:
    """The embedded models, loaded once per process (a pool worker or a Ray worker keeps them between runs)."""
    return load_embedded_backbone()


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def execute_run(spec: RunSpec, threads: int | None = 1, backbone: Backbone | None = None) -> list[dict]:
    """Run ``spec``'s rollout (latent, RGB and no memory on one backbone and one noise) and return its rows,
    one per memory and step, with the columns of :data:`SCHEMA`."""
    with _torch_threads(threads):
        rollout = run_rollout(spec.config(), backbone=backbone or process_backbone())
    first, last = rollout.cameras[0].camera_to_world, rollout.cameras[-1].camera_to_world
    returns = bool(torch.allclose(first, last, atol=1e-6))
    settings = spec.to_dict()
    rows = []
    for memory, records in rollout.records.items():
        for record in records:
            rows.append({
                "run_id": spec.run_id, **settings, "memory": memory, "step": record.step,
                "revisit": returns and record.step == len(rollout.cameras) - 1,
                "psnr": _finite(record.psnr), "ssim": record.ssim, "mask_coverage": record.mask_coverage,
                "cache_points": record.cache_points, "cache_bytes": record.cache_bytes,
                "read_ms": record.timings_ms["read"], "step_ms": sum(record.timings_ms.values()),
                "depth_abs_rel": record.depth_abs_rel, "depth_holes": record.depth_holes,
            })
    return rows


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def rows_table(rows: list[dict]) -> pa.Table:
    """Rows as a table of :data:`SCHEMA` (a ``ValueError`` if one does not fit it)."""
    return pa.Table.from_pylist(rows, schema=SCHEMA)
