"""A sweep's results folder: one Parquet file per finished run, written atomically, so a rerun resumes.

::

    OUT/
      sweep.json          the marker: the grid last asked for (a folder without it is never written into)
      runs/<run_id>.parquet  one finished run: its rows (schema :data:`~mirage_viz.sweep.run.SCHEMA`)
      results.parquet     every run of the grid, one row per run x memory x step (the tidy table)
      summary.parquet, summary.csv   one row per setting x memory, with means and 95% intervals over seeds

A run's file appears whole or not at all (written beside, then renamed), so a killed sweep leaves finished runs
and nothing half-written; a rerun skips them. A file that cannot be read is reported, never deleted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mirage_viz.sweep.grid import RunSpec, SweepGrid
from mirage_viz.sweep.run import SCHEMA, conform_table, is_sweep_schema

__all__ = ["MARKER", "SweepFolder"]

MARKER = "sweep.json"
_FORMAT = "mirage_viz.sweep/v1"
_TEMPORARY = ".partial-"  # prefix of files being written; a leftover one is a run a killed sweep did not finish


def _write_atomically(path: Path, write) -> Path:
    temporary = path.with_name(f"{_TEMPORARY}{os.getpid()}-{path.name}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


class SweepFolder:
    """The results folder of a sweep: checked when opened, written a run at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path).strip() == "":
            raise ValueError("the sweep folder is empty; give a folder name such as runs/sweep")
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"{self.path} is a file; accepted: a new folder, an empty one, or a sweep's folder to resume")
        if self.path.is_dir() and any(self.path.iterdir()) and not (self.path / MARKER).is_file():
            raise ValueError(f"{self.path} holds files and is not a sweep's folder (no {MARKER}); accepted: a new "
                             "folder, an empty one, or a sweep's folder to resume")
        if (self.path / MARKER).is_file():
            try:
                marker = json.loads((self.path / MARKER).read_text())
            except (OSError, ValueError) as error:
                raise ValueError(f"{self.path / MARKER} cannot be read ({error}); it is not a sweep's marker") from None
            if not isinstance(marker, dict) or marker.get("format") != _FORMAT:
                raise ValueError(f"{self.path / MARKER} is not a mirage_viz sweep marker ({_FORMAT})")
        self.runs_dir = self.path / "runs"
        self._started = False

    def start(self, grid: SweepGrid) -> None:
        """Make the folder (if new) and record the grid asked for, once; finished runs stay."""
        if self._started:
            return
        self._started = True
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.path / MARKER, lambda p: p.write_text(json.dumps(
            {"format": _FORMAT, "grid": grid.to_dict()}, indent=1)))
        for leftover in self.runs_dir.glob(f"{_TEMPORARY}*"):  # ours: a run a killed sweep was writing
            leftover.unlink(missing_ok=True)

    def run_path(self, spec: RunSpec) -> Path:
        return self.runs_dir / f"{spec.run_id}.parquet"

    def finished(self, specs: list[RunSpec]) -> set[str]:
        """The run ids of ``specs`` already written. A run file that is not a readable table of the schema (or of
        the one before the memory-setting and sharpness columns, which :meth:`collect` fills in) is a ``ValueError``
        naming it: it is left where it is for the user to look at or delete."""
        done = set()
        for spec in specs:
            path = self.run_path(spec)
            if not path.exists():
                continue
            try:
                schema = pq.read_schema(path)
            except (OSError, pa.ArrowException) as error:
                raise ValueError(f"{path} is not a readable Parquet file ({str(error).splitlines()[0]}); it was not "
                                 "written by this sweep's atomic writer: delete it to run that run again") from None
            if not is_sweep_schema(schema):
                raise ValueError(f"{path} has another schema than this version's sweep table; delete it to run that "
                                 "run again, or use another folder")
            done.add(spec.run_id)
        return done

    def write_run(self, spec: RunSpec, table: pa.Table) -> Path:
        return _write_atomically(self.run_path(spec), lambda p: pq.write_table(table, p))

    def collect(self, specs: list[RunSpec]) -> pa.Table:
        """Every finished run of ``specs`` as one table, in the grid's order."""
        tables = [conform_table(pq.read_table(path), str(path)) for path in map(self.run_path, specs) if path.exists()]
        return pa.concat_tables(tables) if tables else SCHEMA.empty_table()

    def write_table(self, name: str, table: pa.Table) -> Path:
        return _write_atomically(self.path / name, lambda p: pq.write_table(table, p))

    def write_text(self, name: str, text: str) -> Path:
        return _write_atomically(self.path / name, lambda p: p.write_text(text))
