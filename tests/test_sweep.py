"""Sweeps (mirage_viz.sweep, `mirage-viz sweep`): one table from many runs, the same on every engine, resumable."""

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mirage_viz.cli import main
from mirage_viz.sweep import SCHEMA, TIMING_COLUMNS, SweepGrid, run_sweep, summarize
from mirage_viz.sweep.summary import t_interval

TINY = dict(steps=(2,), sizes=(64,))  # a run in about a second


def _comparable(table: pa.Table) -> pd.DataFrame:
    """The table without its wall-clock columns, in a fixed order."""
    frame = table.drop_columns(list(TIMING_COLUMNS)).to_pandas()
    return frame.sort_values(["run_id", "memory", "step"]).reset_index(drop=True)


def test_the_tables_schema_is_pinned():
    assert [(f.name, str(f.type)) for f in SCHEMA] == [
        ("run_id", "string"), ("world", "string"), ("world_seed", "int64"), ("trajectory", "string"),
        ("steps", "int32"), ("size", "int32"), ("depth", "string"), ("depth_mode", "string"), ("seed", "int64"),
        ("memory", "string"), ("step", "int32"), ("revisit", "bool"), ("psnr", "double"), ("ssim", "double"),
        ("mask_coverage", "double"), ("cache_points", "int64"), ("cache_bytes", "int64"), ("read_ms", "double"),
        ("step_ms", "double"), ("depth_abs_rel", "double"), ("depth_holes", "double")]


def test_a_2x2_grid_gives_identical_tables_in_process_in_a_pool_and_on_ray(tmp_path):
    pytest.importorskip("ray")
    grid = SweepGrid(worlds=("room", "studio"), depths=("truth", "noise=0.1"), **TINY)
    here = run_sweep(grid, tmp_path / "here")
    assert here.ran == 4 and here.table.num_rows == 4 * 3 * 3  # runs x memories x steps
    assert here.table.schema.equals(SCHEMA, check_metadata=False)
    pool = run_sweep(grid, tmp_path / "pool", workers=2)
    ray = run_sweep(grid, tmp_path / "ray", engine="ray", workers=2)
    pd.testing.assert_frame_equal(_comparable(here.table), _comparable(pool.table))
    pd.testing.assert_frame_equal(_comparable(here.table), _comparable(ray.table))
    rows = _comparable(here.table)
    noisy = rows[(rows["depth"] == "noise=0.1")]["depth_abs_rel"]
    assert (rows[rows["depth"] == "truth"]["depth_abs_rel"] == 0).all() and (noisy > 0.03).all()
    assert rows[rows["step"] == 2]["revisit"].all() and not rows[rows["step"] < 2]["revisit"].any()  # loop returns
    for name in ("results.parquet", "summary.parquet", "summary.csv", "figures.html", "sweep.json"):
        assert (tmp_path / "ray" / name).is_file()
    pd.testing.assert_frame_equal(_comparable(pq.read_table(tmp_path / "ray" / "results.parquet")), rows)


def test_a_killed_sweep_resumes_without_running_finished_runs_again(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", "--seeds", "0,1,2", "--steps", "2", "--sizes", "64", "--out", str(out), "--quiet"]
    process = subprocess.Popen([sys.executable, "-m", "mirage_viz.cli", *args], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    def written() -> list[Path]:  # finished runs: pathlib's glob also matches the writer's ".partial-*" files
        return [p for p in (out / "runs").glob("*.parquet") if not p.name.startswith(".")]

    while time.monotonic() < deadline and not written():
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    finished = {p.name: p.stat().st_mtime_ns for p in written()}
    assert 1 <= len(finished) < 3 and not (out / "results.parquet").exists()
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"{3 - len(finished)} runs ran, {len(finished)} were finished before" in printed
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.parquet") if p.name in finished} == finished
    table = pq.read_table(out / "results.parquet")
    assert sorted(set(table["seed"].to_pylist())) == [0, 1, 2] and not list((out / "runs").glob(".partial-*"))


def test_summary_intervals_and_paired_differences():
    assert t_interval(pd.Series([1.0, 2.0, 3.0])) == pytest.approx(4.3027 * 1.0 / math.sqrt(3), rel=1e-4)
    assert math.isnan(t_interval(pd.Series([1.0])))
    rows = []
    for seed, (latent, rgb) in enumerate([(30.0, 28.0), (31.0, 28.5), (29.0, 28.0)]):
        for memory, value in (("latent", latent), ("rgb", rgb), ("none", 20.0)):
            for step in (0, 1, 2):
                rows.append(dict(run_id=f"r{seed}", world="room", world_seed=0, trajectory="loop", steps=2, size=64,
                                 depth="truth", depth_mode="bilinear", seed=seed, memory=memory, step=step,
                                 revisit=step == 2, psnr=value + step, ssim=0.9, mask_coverage=0.75, cache_points=10,
                                 cache_bytes=100, read_ms=1.0, step_ms=10.0, depth_abs_rel=0.0, depth_holes=0.0))
    summary = summarize(pa.Table.from_pylist(rows, schema=SCHEMA)).set_index("memory")
    assert summary.loc["latent", "revisit_psnr"] == pytest.approx(32.0) and summary.loc["latent", "runs"] == 3
    assert summary.loc["latent - rgb", "revisit_psnr"] == pytest.approx((2.0 + 2.5 + 1.0) / 3)
    assert summary.loc["latent - rgb", "revisit_psnr_ci"] == pytest.approx(t_interval(pd.Series([2.0, 2.5, 1.0])))
    assert summary.loc["latent", "hole_rate"] == pytest.approx(0.25)
    assert summary.loc["latent", "mean_psnr"] == pytest.approx(30.0 + 1.5)  # steps 1 and 2


def test_the_figures_draw_the_summary_readably(tmp_path):
    from mirage_viz.viz.sweep_figures import sweep_figures

    grid = SweepGrid(trajectories=("loop", "pan_left+back_to_start"), depths=("truth", "noise=0.2"), seeds=(0, 1), **TINY)
    result = run_sweep(grid, tmp_path / "s")
    figures = dict(sweep_figures(result.summary))
    assert list(figures) == ["revisit", "latent minus rgb", "holes", "timing"]
    revisit = figures["revisit"]
    assert {t.name for t in revisit.data} == {"latent", "rgb", "none"} and len(revisit.data) == 3 * 2  # two paths
    assert all(len(t.x) == 2 and all(v is not None for v in t.y) for t in revisit.data)  # two depth qualities
    bars = figures["latent minus rgb"].data
    assert [t.name for t in bars] == ["latent - rgb", "latent - none"] * 2  # a panel per returning path
    assert all(len(t.x) == 2 and t.error_y.array is not None for t in bars)
    assert [a.text for a in figures["latent minus rgb"].layout.annotations] == ["path: loop", "path: pan_left+back_to_start"]
    for figure in figures.values():
        assert figure.layout.font.size >= 12 and figure.layout.title.text


@pytest.mark.parametrize("args, message", [
    (["--worlds", "castle"], "unknown world 'castle'; accepted: room"),
    (["--depths", "blurry"], "unknown depth quality 'blurry'; accepted: truth, estimated"),
    (["--depths", "noise=-1"], "noise"),
    (["--seeds", "0,1,2,3", "--worlds", "room,studio", "--max-runs", "5"], "the grid has 8 runs (2 worlds x 1 world_seeds"),
    (["--address", "127.0.0.1:6379"], "--address is for --engine ray"),
    (["--engine", "ray", "--address", "nowhere"], "is not HOST:PORT"),
])
def test_bad_sweeps_are_refused_before_anything_runs(tmp_path, capsys, args, message):
    out = tmp_path / "s"
    assert main(["sweep", *args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not out.exists()


def test_a_ray_address_that_does_not_answer_is_refused_within_seconds(tmp_path, capsys):
    pytest.importorskip("ray")
    start = time.perf_counter()
    assert main(["sweep", "--engine", "ray", "--address", "127.0.0.1:9", "--steps", "1", "--sizes", "64",
                 "--out", str(tmp_path / "s"), "--quiet"]) == 2
    assert time.perf_counter() - start < 10
    assert "no Ray cluster answers at 127.0.0.1:9" in capsys.readouterr().err


def test_an_empty_axis_a_foreign_folder_and_a_corrupt_run_are_refused_and_nothing_is_lost(tmp_path, capsys):
    grid_file = tmp_path / "grid.json"
    grid_file.write_text('{"worlds": []}')
    assert main(["sweep", "--grid", str(grid_file), "--out", str(tmp_path / "a")]) == 2
    assert "worlds axis is empty" in capsys.readouterr().err
    grid_file.write_text('{"world": ["room"]}')
    assert main(["sweep", "--grid", str(grid_file), "--out", str(tmp_path / "a")]) == 2
    assert "unknown axis 'world'; accepted: worlds" in capsys.readouterr().err
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    assert main(["sweep", "--steps", "1", "--sizes", "64", "--out", str(foreign), "--quiet"]) == 2
    assert "not a sweep's folder" in capsys.readouterr().err and os.listdir(foreign) == ["notes.txt"]
    out = tmp_path / "s"
    args = ["sweep", "--steps", "1", "--sizes", "64", "--seeds", "0,1", "--out", str(out), "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    victim = sorted((out / "runs").glob("*.parquet"))[0]
    victim.write_bytes(b"PAR1 not really")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert victim.name in err and "not a readable Parquet file" in err and "delete it" in err
    assert victim.read_bytes() == b"PAR1 not really" and len(list((out / "runs").glob("*.parquet"))) == 2
