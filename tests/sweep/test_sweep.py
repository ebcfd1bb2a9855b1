"""Sweeps (mirage_viz.sweep, `mirage-viz sweep`): one table from many runs, the same on every engine, resumable."""

import contextlib
import http.server
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mirage_viz.cli import main
from mirage_viz.sweep import (ADDED_COLUMNS, SCHEMA, SHIPPED_SWEEP, TIMING_COLUMNS, RunSpec, SweepGrid, load_grid,
                              load_results, run_sweep, summarize)
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
        ("memory_setting", "string"), ("memory", "string"), ("step", "int32"), ("revisit", "bool"), ("psnr", "double"),
        ("ssim", "double"), ("sharpness_mean_abs", "double"), ("camera_rotation_error_deg", "double"),
        ("camera_direction_error_deg", "double"), ("reprojection_error", "double"), ("flow_agreement", "double"),
        ("mask_coverage", "double"), ("cache_points", "int64"),
        ("cache_bytes", "int64"), ("read_ms", "double"),
        ("step_ms", "double"), ("depth_abs_rel", "double"), ("depth_holes", "double")]


@pytest.mark.slow
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


@pytest.mark.slow
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
                                 depth="truth", depth_mode="bilinear", seed=seed, memory_setting="paper", memory=memory,
                                 step=step, revisit=step == 2, psnr=value + step, ssim=0.9,
                                 sharpness_mean_abs=0.5 + 0.1 * step, mask_coverage=0.75, cache_points=10,
                                 cache_bytes=100, read_ms=1.0, step_ms=10.0, depth_abs_rel=0.0, depth_holes=0.0))
    summary = summarize(pa.Table.from_pylist(rows, schema=SCHEMA)).set_index("memory")
    assert summary.loc["latent", "revisit_psnr"] == pytest.approx(32.0) and summary.loc["latent", "runs"] == 3
    assert summary.loc["latent - rgb", "revisit_psnr"] == pytest.approx((2.0 + 2.5 + 1.0) / 3)
    assert summary.loc["latent - rgb", "revisit_psnr_ci"] == pytest.approx(t_interval(pd.Series([2.0, 2.5, 1.0])))
    assert summary.loc["latent", "hole_rate"] == pytest.approx(0.25)
    assert summary.loc["latent", "mean_psnr"] == pytest.approx(30.0 + 1.5)  # steps 1 and 2
    assert summary.loc["latent", "sharpness_mean_abs"] == pytest.approx(0.65)  # steps 1 and 2
    assert math.isnan(summary.loc["latent - rgb", "sharpness_mean_abs"])


def test_two_memory_settings_run_side_by_side_from_the_command_line(tmp_path, capsys):
    from mirage_viz.viz.sweep_figures import sweep_figures

    out = tmp_path / "s"
    assert main(["sweep", "--memory-settings", "paper, keep what memory holds", "--seeds", "0,1", "--steps", "2",
                 "--sizes", "64", "--out", str(out), "--quiet"]) == 0
    assert "loop, depth truth, keep what memory holds: return frame latent - rgb" in capsys.readouterr().out
    rows = pq.read_table(out / "results.parquet").to_pandas()
    assert len(rows) == 2 * 2 * 3 * 3  # settings x seeds x memories x steps
    paper, keep = rows[rows["memory_setting"] == "paper"], rows[rows["memory_setting"] == "keep what memory holds"]
    assert len(paper) == len(keep) == 18
    assert set(paper["run_id"]) == {f"room-w0-loop-2steps-64px-truth-bilinear-s{s}" for s in (0, 1)}  # as before
    assert set(keep["run_id"]) == {f"room-w0-loop-2steps-64px-truth-bilinear-s{s}-keep_what_memory_holds"
                                   for s in (0, 1)}
    assert set(paper["depth_mode"]) == {"bilinear"} and set(keep["depth_mode"]) == {"nearest"}  # what ran
    sharpness = rows[rows["step"] > 0]["sharpness_mean_abs"]
    assert sharpness.notna().all() and ((sharpness > 0.1) & (sharpness < 3)).all()  # relative to the truth's
    first = rows[rows["step"] == 0].groupby("run_id")["sharpness_mean_abs"]  # the first frame, through the VAE
    assert (first.nunique() == 1).all() and (first.first() < 1).all()  # the same for every memory of a run
    assert set(paper[paper["step"] == 2]["psnr"]) != set(keep[keep["step"] == 2]["psnr"])  # the settings ran
    summary = summarize(pq.read_table(out / "results.parquet"))
    assert list(dict.fromkeys(summary["memory_setting"])) == ["paper", "keep what memory holds"]
    assert (summary.groupby("memory_setting")["memory"].count() == 5).all()  # 3 memories + 2 pairs, per setting
    figures = dict(sweep_figures(summary))
    revisit = figures["revisit"]
    assert [a.text for a in revisit.layout.annotations] == ["setting: paper, path: loop",
                                                            "setting: keep what memory holds, path: loop"]
    assert len(revisit.data) == 2 * 3 and sum(t.showlegend is not False for t in revisit.data) == 3  # one legend
    assert [a.text for a in figures["latent minus rgb"].layout.annotations] == [
        a.text for a in revisit.layout.annotations]
    holes = figures["holes"].data
    assert [t.name for t in holes] == ["latent", "rgb"] and list(holes[0].x) == [
        "paper<br>64 px, depth bilinear", "keep what memory<br>holds<br>64 px, depth nearest"]
    timing = figures["timing"].data
    assert [t.name for t in timing] == ["latent", "latent", "rgb", "rgb", "none", "none"]  # read, step
    assert all(list(t.x) == ["paper<br>64 px", "keep what memory<br>holds<br>64 px"] for t in timing)


def test_unknown_and_contradicting_memory_settings_are_refused_with_what_is_accepted():
    with pytest.raises(ValueError, match="unknown memory setting 'fast'; accepted: paper, keep what memory holds, "
                                         "closest to the truth, sharp and close"):
        SweepGrid(memory_settings=("paper", "fast"))
    with pytest.raises(ValueError, match="unknown memory setting 'fast'; accepted: paper"):
        RunSpec("room", 0, "loop", 2, 64, "truth", "bilinear", 0, "fast")
    with pytest.raises(ValueError, match="'keep what memory holds' sets depth_mode 'nearest' itself, so it cannot run "
                                         "with depth mode 'area'"):
        SweepGrid(depth_modes=("bilinear", "area"), memory_settings=("paper", "keep what memory holds"))
    assert SweepGrid(depth_modes=("bilinear", "area"), memory_settings=("paper",)).runs_count == 2
    grid = SweepGrid.from_dict({"memory_settings": ["paper", "closest to the truth"], "steps": [2]})
    assert grid.memory_settings == ("paper", "closest to the truth") and grid.to_dict()["memory_settings"] == [
        "paper", "closest to the truth"]


def test_the_shipped_table_made_before_the_memory_settings_loads_conformed_and_keeps_its_run_ids(tmp_path):
    shipped = SHIPPED_SWEEP / "results.parquet"
    assert not set(ADDED_COLUMNS) & set(pq.read_schema(shipped).names)  # it predates them: conformed on load
    table = load_results()
    assert table.schema.equals(SCHEMA, check_metadata=False) and table.num_rows == pq.read_metadata(shipped).num_rows
    assert set(table["memory_setting"].to_pylist()) == {"paper"}
    assert table["sharpness_mean_abs"].null_count == table.num_rows
    spec = RunSpec("room", 0, "loop", 12, 128, "truth", "bilinear", 0)
    assert spec.memory_setting == "paper" and spec.run_id == "room-w0-loop-12steps-128px-truth-bilinear-s0"
    grid = load_grid(SHIPPED_SWEEP / "grid.json")
    assert grid.memory_settings == ("paper",)
    ids = [spec.run_id for spec in grid.runs()]  # a rerun of the shipped grid finds every shipped run
    assert set(ids) == set(table["run_id"].to_pylist()) and len(ids) == 216
    summary = summarize(table)
    assert set(summary["memory_setting"]) == {"paper"} and summary["sharpness_mean_abs"].isna().all()
    other = pq.read_table(shipped).drop_columns(["depth_holes"])  # any other mismatch is still refused
    pq.write_table(other, tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="is not a mirage_viz sweep table"):
        load_results(tmp_path / "other.parquet")
    half = load_results().drop_columns(["sharpness_mean_abs"])  # one new column without the other: not a version
    pq.write_table(half, tmp_path / "half.parquet")
    with pytest.raises(ValueError, match="is not a mirage_viz sweep table"):
        load_results(tmp_path / "half.parquet")


def test_a_table_written_before_the_truth_free_scores_is_conformed_with_them_null(tmp_path):
    from mirage_viz.sweep.run import CONSISTENCY_COLUMNS
    grid = SweepGrid(**TINY)
    first = run_sweep(grid, tmp_path / "s")
    assert first.table["flow_agreement"].null_count == first.table.num_rows // (grid.steps[0] + 1)  # step 0 only
    (run,) = (tmp_path / "s" / "runs").glob("*.parquet")
    pq.write_table(pq.read_table(run).drop_columns(list(CONSISTENCY_COLUMNS)), run)
    again = run_sweep(grid, tmp_path / "s")
    assert again.ran == 0 and again.table.schema.equals(SCHEMA, check_metadata=False)
    assert again.table["reprojection_error"].null_count == again.table.num_rows


def test_a_sweep_folder_written_before_the_memory_settings_resumes_without_running_again(tmp_path):
    grid = SweepGrid(**TINY)
    first = run_sweep(grid, tmp_path / "s")
    (run,) = (tmp_path / "s" / "runs").glob("*.parquet")
    pq.write_table(pq.read_table(run).drop_columns(list(ADDED_COLUMNS)), run)  # as the version before wrote it
    again = run_sweep(grid, tmp_path / "s")
    assert again.ran == 0 and again.skipped == 1 and again.table.schema.equals(SCHEMA, check_metadata=False)
    assert set(again.table["memory_setting"].to_pylist()) == {"paper"}
    assert again.table["sharpness_mean_abs"].null_count == again.table.num_rows
    assert again.table.drop_columns(list(ADDED_COLUMNS)).equals(first.table.drop_columns(list(ADDED_COLUMNS)))


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
    (["--memory-settings", "paper,fast"], "unknown memory setting 'fast'; accepted: paper, keep what memory holds"),
    (["--depth-modes", "area", "--memory-settings", "closest to the truth"], "sets depth_mode 'center' itself"),
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


@contextlib.contextmanager
def web_server() -> Iterator[str]:
    """A web server on 127.0.0.1, not Ray: HOST:PORT."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    server.RequestHandlerClass.log_message = lambda *args: None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def silent_server() -> Iterator[tuple[str, threading.Event]]:
    """A server on 127.0.0.1 that accepts connections and never answers: HOST:PORT, and an event set on a connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    connected, held = threading.Event(), []

    def accept() -> None:
        with contextlib.suppress(OSError):  # the listener closed
            while True:
                held.append(listener.accept()[0])
                connected.set()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}", connected
    finally:
        listener.close()
        for connection in held:
            connection.close()


def test_an_address_that_answers_but_is_not_ray_is_refused_within_seconds_and_nothing_is_written(tmp_path, capsys):
    pytest.importorskip("ray")
    out = tmp_path / "s"
    with web_server() as address:
        start = time.perf_counter()
        assert main(["sweep", "--engine", "ray", "--address", address, "--steps", "1", "--sizes", "64",
                     "--out", str(out), "--quiet"]) == 2
        assert time.perf_counter() - start < 10
    err = capsys.readouterr().err
    assert f"{address} is not a Ray cluster (it does not speak gRPC" in err and "ray start --head" in err, err
    assert "leave --address out" in err and "Traceback" not in err and not out.exists()


def test_the_address_check_refuses_a_silent_server_and_a_web_server_as_ray_client_within_its_deadline():
    pytest.importorskip("ray")
    from mirage_viz.sweep.engines import check_ray_address

    with silent_server() as (address, _):
        start = time.perf_counter()
        with pytest.raises(ValueError, match=f"no Ray cluster answers at {address} .nothing answered within 1 s"):
            check_ray_address(address, timeout_s=1)
        assert time.perf_counter() - start < 2
    with web_server() as address, pytest.raises(ValueError, match=f"ray://{address} is not a Ray cluster"):
        check_ray_address(f"ray://{address}")


@pytest.mark.slow
def test_sigterm_while_a_ray_address_is_checked_exits_143_within_seconds_and_writes_nothing(tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "s"
    with silent_server() as (address, connected):  # the check waits on it: the signal lands during the check
        process = subprocess.Popen([sys.executable, "-m", "mirage_viz.cli", "sweep", "--engine", "ray", "--address",
                                    address, "--steps", "1", "--sizes", "64", "--out", str(out), "--quiet"],
                                   stderr=subprocess.PIPE, text=True)
        assert connected.wait(120), process.stderr.read()
        start = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        elapsed = time.monotonic() - start
    assert process.returncode == 143 and elapsed < 5, (elapsed, err)
    assert err.strip().splitlines() == ["mirage-viz sweep: terminated; nothing was written"] and not out.exists()


@pytest.mark.slow
def test_a_real_ray_cluster_passes_the_check_and_ray_init_leaves_our_signal_handlers(tmp_path):
    ray = pytest.importorskip("ray")
    from mirage_viz.sweep.engines import check_ray_address
    from mirage_viz.sweep.ray_start import init_ray

    def ours(signum, frame):
        raise AssertionError("not called")

    previous = signal.signal(signal.SIGTERM, ours)
    try:
        init_ray(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            assert signal.getsignal(signal.SIGTERM) is ours  # ray.init installed its own; it was put back
            address = ray.get_runtime_context().gcs_address
            check_ray_address(address)
            check_ray_address(f"ray://{address}")  # Ray Client's check is the gRPC handshake, which a GCS answers too
            result = run_sweep(SweepGrid(**TINY), tmp_path / "s", engine="ray", address=address)  # this Ray: no init
            assert result.ran == 1 and result.table.num_rows == 3 * 3
        finally:
            ray.shutdown()
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.slow
def test_sigterm_while_a_local_ray_starts_exits_143_and_leaves_no_ray_process(tmp_path):
    pytest.importorskip("ray")
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "s"
    process = subprocess.Popen([sys.executable, "-m", "mirage_viz.cli", "sweep", "--engine", "ray", "--steps", "1",
                                "--sizes", "64", "--out", str(out), "--quiet"], stderr=subprocess.PIPE, text=True)
    seen: dict[int, tuple[object, str]] = {}  # every descendant, from the first look to the end

    def look() -> None:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(process.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    seen.setdefault(child.pid, (child, child.name()))

    deadline = time.monotonic() + 120
    while not any("raylet" in name for _, name in seen.values()) and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        look()
        time.sleep(0.05)
    start = time.monotonic()
    process.send_signal(signal.SIGTERM)  # Ray has started its processes: the driver is waiting for them
    while process.poll() is None and time.monotonic() - start < 60:
        look()
        time.sleep(0.05)
    elapsed, err = time.monotonic() - start, process.stderr.read()
    # 0.3 s measured; the bound leaves room for Ray's C++ wait for its raylet, which holds Python's handlers off
    assert process.returncode == 143 and elapsed < 10, (elapsed, err)
    assert "mirage-viz sweep: terminated; nothing was written" in err and "Traceback" not in err and not out.exists()
    _, alive = psutil.wait_procs([child for child, _ in seen.values()], timeout=5)
    assert not alive, [seen[child.pid][1] for child in alive]


@pytest.mark.slow
def test_sigterm_ends_a_pool_sweep_within_seconds_and_its_workers_with_it(tmp_path):
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "s"
    process = subprocess.Popen([sys.executable, "-m", "mirage_viz.cli", "sweep", "--workers", "2", "--seeds", "0,1",
                                "--steps", "12", "--sizes", "128", "--out", str(out), "--quiet"],
                               stderr=subprocess.PIPE, text=True)
    def workers() -> list:
        found = []
        for child in psutil.Process(process.pid).children():
            with contextlib.suppress(psutil.Error):  # a child that ended meanwhile
                if "spawn_main" in " ".join(child.cmdline()):
                    found.append(child)
        return found

    deadline = time.monotonic() + 120
    while len(workers()) < 2 and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.1)
    pool = workers()
    time.sleep(2)  # the workers are loading models or running: the driver would wait for them
    start = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    elapsed = time.monotonic() - start
    assert process.returncode == 143 and elapsed < 5, (elapsed, err)
    assert "mirage-viz sweep: terminated; " in err and "Traceback" not in err
    _, alive = psutil.wait_procs(pool, timeout=5)
    assert len(pool) == 2 and not alive


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


def test_a_sweep_runs_posed_sequences_scored_against_their_frames(tmp_path):
    from mirage_viz.scenes.sequence import EXAMPLE_SEQUENCE

    grid = SweepGrid(worlds=(), sequences=(str(EXAMPLE_SEQUENCE),), steps=(2,), sizes=(64,))
    assert grid.runs_count == 1
    result = run_sweep(grid, tmp_path / "s")
    rows = result.table.to_pandas()
    assert set(rows["world"]) == {str(EXAMPLE_SEQUENCE)} and set(rows["trajectory"]) == {"sequence"}
    assert set(rows["depth"]) == {"estimated"} and rows.loc[rows["step"] > 0, "psnr"].notna().all()
    assert rows.loc[rows["step"] > 0, "flow_agreement"].notna().all()
    (run_id,) = set(rows["run_id"])
    assert run_id.startswith("room_loop_transforms.json_") and "-sequence-2steps-64px-estimated-" in run_id
    both = SweepGrid(sequences=(str(EXAMPLE_SEQUENCE),), steps=(2,), sizes=(64,), seeds=(0, 1))
    assert both.runs_count == 4 and len(both.runs()) == 4  # the room world and the sequence, two seeds each
    with pytest.raises(ValueError, match="missing|no such|does not exist|not found"):
        SweepGrid(worlds=(), sequences=(str(tmp_path / "nowhere" / "transforms.json"),)).runs()
    with pytest.raises(ValueError, match="worlds axis is empty"):
        SweepGrid(worlds=())
