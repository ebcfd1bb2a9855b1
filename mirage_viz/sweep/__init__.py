"""Layer 6, sweeps: many rollouts over a grid of settings, run on a local pool or Ray, collected in one table.

``grid`` (the axes and their runs) -> ``run`` (one run, the same function on every engine) -> ``engines`` (local,
Ray) -> ``store`` (one Parquet file per run, resumable) -> ``summary`` (means and 95% intervals). Imports the
rollout, scenes, viz and the base; never the app.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mirage_viz.sweep.engines import ENGINES, Engine, check_engine, run_specs
from mirage_viz.sweep.grid import AXES, DEFAULT_MAX_RUNS, RunSpec, SweepGrid, load_grid, parse_depth_quality
from mirage_viz.sweep.run import ADDED_COLUMNS, SCHEMA, TIMING_COLUMNS, conform_table, execute_run, rows_table
from mirage_viz.sweep.store import SweepFolder
from mirage_viz.sweep.summary import run_scores, summarize

__all__ = ["ADDED_COLUMNS", "AXES", "DEFAULT_MAX_RUNS", "ENGINES", "SCHEMA", "TIMING_COLUMNS", "Engine", "RunSpec",
           "SweepFolder", "SHIPPED_SWEEP", "SweepGrid", "SweepResult", "conform_table", "execute_run", "load_grid",
           "load_results", "parse_depth_quality", "run_scores", "run_sweep", "summarize", "write_findings"]


SHIPPED_SWEEP = Path(str(importlib.resources.files("mirage_viz") / "assets" / "sweep"))  # its grid.json and results


def load_results(path: str | Path = SHIPPED_SWEEP / "results.parquet") -> pa.Table:
    """A sweep's tidy table (default: the shipped sweep's) in :data:`SCHEMA`. A table made before the memory-setting
    axis (the shipped one) gets :data:`ADDED_COLUMNS`: memory_setting "paper", sharpness null; any other schema is
    refused."""
    return conform_table(pq.read_table(path), str(path))


@dataclass
class SweepResult:
    """A finished sweep: its folder, the tidy table of the grid's runs, the summary, and what ran this time."""

    path: Path
    table: pa.Table
    summary: pd.DataFrame
    ran: int  # runs executed by this call
    skipped: int  # runs found finished and not run again


def write_findings(folder: SweepFolder, table: pa.Table) -> pd.DataFrame:
    """``results.parquet``, ``summary.parquet``, ``summary.csv`` and ``figures.html`` (offline) from the table."""
    from mirage_viz.viz.sweep_figures import sweep_figures

    summary = summarize(table)
    folder.write_table("results.parquet", table)
    folder.write_table("summary.parquet", pa.Table.from_pandas(summary, preserve_index=False))
    folder.write_text("summary.csv", summary.to_csv(index=False, float_format="%.4f"))
    figures = sweep_figures(summary)
    parts = [figure.to_html(full_html=False, include_plotlyjs=index == 0) for index, (_, figure) in enumerate(figures)]
    folder.write_text("figures.html", "<!doctype html><meta charset='utf-8'><title>mirage_viz sweep</title>"
                      + "".join(parts))
    return summary


def run_sweep(grid: SweepGrid, out: str | Path, engine: Engine = "local", workers: int = 1, address: str | None = None,
              max_runs: int = DEFAULT_MAX_RUNS, progress: Callable[[int, int, RunSpec | None], None] | None = None
              ) -> SweepResult:
    """Run every run of ``grid`` not yet in ``out`` on ``engine``, writing each as it finishes, then the tidy table,
    the summary and the figures. ``progress(done, total, spec)`` is called as runs finish (``spec`` None at start).
    Every setting, the engine and its address are checked before any model loads, and ``out`` is made when the first
    run finishes: a sweep whose engine never starts leaves ``out`` as it was. A rerun resumes where a killed sweep
    stopped."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
        raise ValueError(f"workers must be an integer in [1, 256], got {workers!r}")
    if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1:
        raise ValueError(f"max_runs must be a positive integer, got {max_runs!r}")
    check_engine(engine, address)
    specs = grid.runs(max_runs)
    folder = SweepFolder(out)
    done = folder.finished(specs)
    remaining = [spec for spec in specs if spec.run_id not in done]
    count = len(done)
    if progress is not None:
        progress(count, len(specs), None)

    def finished(spec: RunSpec, rows: list[dict]) -> None:
        nonlocal count
        folder.start(grid)
        folder.write_run(spec, rows_table(rows))
        count += 1
        if progress is not None:
            progress(count, len(specs), spec)

    if remaining:
        run_specs(remaining, finished, engine, workers, address)
    folder.start(grid)  # a rerun with nothing left records the grid asked for
    table = folder.collect(specs)
    summary = write_findings(folder, table)
    return SweepResult(path=folder.path, table=table, summary=summary, ran=len(remaining), skipped=len(done))
