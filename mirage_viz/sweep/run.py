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
from mirage_viz.consistency import SCORES
from mirage_viz.metrics import SHARPNESS_MEASURES
from mirage_viz.rollout.engine import run_rollout
from mirage_viz.sweep.grid import RunSpec

__all__ = ["ADDED_COLUMNS", "SCHEMA", "conform_table", "execute_run", "is_sweep_schema", "process_backbone",
           "rows_table"]

# One row per run x memory x step. Pinned by tests/sweep/test_sweep.py: readers (the app, the notebook) rely on it.
SCHEMA = pa.schema([
    ("run_id", pa.string()),
    ("world", pa.string()),
    ("world_seed", pa.int64()),
    ("trajectory", pa.string()),
    ("steps", pa.int32()),
    ("size", pa.int32()),
    ("depth", pa.string()),  # the depth quality asked: truth, estimated, or an error spec on the truth
    ("depth_mode", pa.string()),  # the one that ran: a memory setting's own where it sets one
    ("seed", pa.int64()),
    ("memory_setting", pa.string()),  # a name of MEMORY_SETTINGS ("paper": Mirage as published)
    ("memory", pa.string()),
    ("step", pa.int32()),
    ("revisit", pa.bool_()),  # the last step of a path that ends where it started: the return frame
    ("psnr", pa.float64()),  # against the truth, dB; null where they match exactly
    ("ssim", pa.float64()),
    # mean |image gradient| of the frame over the truth's (metrics.gradient_mean_abs): 1 holds as much edge and
    # texture contrast as the truth; null without truth
    ("sharpness_mean_abs", pa.float64()),
    # the scores that need no truth (mirage_viz.consistency); null at step 0, and a camera error where too few matches
    ("camera_rotation_error_deg", pa.float64()),
    ("camera_direction_error_deg", pa.float64()),
    ("reprojection_error", pa.float64()),
    ("flow_agreement", pa.float64()),
    ("mask_coverage", pa.float64()),  # cells of the warped latent (or render) that memory covered
    ("cache_points", pa.int64()),
    ("cache_bytes", pa.int64()),
    ("read_ms", pa.float64()),  # wall-clock: differs from run to run, unlike every other column
    ("step_ms", pa.float64()),  # wall-clock: read + generate + decode + depth + write
    ("depth_abs_rel", pa.float64()),  # mean |depth used - true| / true over pixels with depth
    ("depth_holes", pa.float64()),  # fraction of pixels without depth
])
TIMING_COLUMNS = ("read_ms", "step_ms")
# Columns added since the shipped sweep was made, in the order they came, with the value an older table gets for
# them: its runs ran under the paper's setting, and their sharpness and truth-free scores were not measured.
CONSISTENCY_COLUMNS = tuple(SCORES)  # the scores that need no truth, one column each
ADDED_COLUMNS: dict[str, str | None] = {"memory_setting": "paper", "sharpness_mean_abs": None,
                                        **dict.fromkeys(CONSISTENCY_COLUMNS)}
# the columns a table written before each addition lacks (the shipped sweep: every added one)
_MISSING_BEFORE = (frozenset(ADDED_COLUMNS), frozenset(CONSISTENCY_COLUMNS))
_sharpness = SHARPNESS_MEASURES["sharpness_mean_abs"]


def _missing_columns(schema: pa.Schema) -> frozenset[str] | None:
    """The added columns a table of ``schema`` lacks (none: it is :data:`SCHEMA`), or None for no sweep table."""
    for missing in (frozenset(), *_MISSING_BEFORE):
        if schema.equals(pa.schema([f for f in SCHEMA if f.name not in missing]), check_metadata=False):
            return missing
    return None


def conform_table(table: pa.Table, where: str) -> pa.Table:
    """``table`` in :data:`SCHEMA`: as it is, or a table written before some of :data:`ADDED_COLUMNS` came with those
    columns filled in; any other schema is a ``ValueError`` naming ``where``."""
    missing = _missing_columns(table.schema)
    if missing is None:
        raise ValueError(f"{where} is not a mirage_viz sweep table (its columns: {table.column_names[:8]}...)")
    if not missing:
        return table
    for index, field in enumerate(SCHEMA):
        if field.name in missing:
            table = table.add_column(index, field, pa.array([ADDED_COLUMNS[field.name]] * table.num_rows, field.type))
    return table.replace_schema_metadata(None)


def is_sweep_schema(schema: pa.Schema) -> bool:
    """Whether a table of ``schema`` is a sweep table :func:`conform_table` takes."""
    return _missing_columns(schema) is not None


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
    one per memory and step, with the columns of :data:`SCHEMA`. ``depth_mode`` is the one that ran
    (:attr:`RunSpec.depth_mode_run`: the memory setting's own where it sets one)."""
    with _torch_threads(threads):
        rollout = run_rollout(spec.config(), backbone=backbone or process_backbone(), sequence=spec.load_sequence())
    first, last = rollout.cameras[0].camera_to_world, rollout.cameras[-1].camera_to_world
    returns = bool(torch.allclose(first, last, atol=1e-6))
    settings = spec.to_dict() | {"depth_mode": spec.depth_mode_run}
    rows = []
    for memory, records in rollout.records.items():
        for record in records:
            rows.append({
                "run_id": spec.run_id, **settings, "memory": memory, "step": record.step,
                "revisit": returns and record.step == len(rollout.cameras) - 1,
                "psnr": _finite(record.psnr), "ssim": record.ssim,
                "sharpness_mean_abs": None if record.true_frame is None  # frames (3, H, W) in [0, 1]
                else _sharpness(record.frame) / _sharpness(record.true_frame),
                **{column: None if record.consistency is None else getattr(record.consistency, column)
                   for column in CONSISTENCY_COLUMNS},
                "mask_coverage": record.mask_coverage,
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
