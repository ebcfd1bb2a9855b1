"""Where a sweep's runs execute: in this process, in a local pool of processes, or as Ray tasks.

Every engine calls the same function, :func:`~mirage_viz.sweep.run.execute_run`, and hands each finished run back
to the driver as it finishes (:data:`Finished`), which writes it at once. No scheduler of our own: a
``multiprocessing`` pool locally, Ray's scheduler on Ray (a local Ray by default, ``address`` for a cluster).
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import signal
from collections.abc import Callable, Sequence
from typing import Literal

from mirage_viz.checks import check_choice
from mirage_viz.sweep.grid import RunSpec
from mirage_viz.sweep.ray_address import check_ray_address
from mirage_viz.sweep.ray_start import init_ray
from mirage_viz.sweep.run import execute_run

__all__ = ["ENGINES", "Engine", "Finished", "check_engine", "check_ray_address", "run_local", "run_ray", "run_specs"]

Engine = Literal["local", "ray"]
ENGINES: tuple[Engine, ...] = ("local", "ray")
Finished = Callable[[RunSpec, list[dict]], None]  # called in the driver for each finished run, in finishing order
_WAIT_SLICE_S = 0.5  # ray.wait returns this often, so the driver's signal handlers run between waits


def run_local(specs: Sequence[RunSpec], finished: Finished, workers: int = 1) -> None:
    """Run ``specs`` here (``workers`` 1) or in a pool of ``workers`` fresh processes (spawned: no state copied from
    this one), each on one torch thread. The pool's workers ignore Ctrl-C and are ended when the driver stops, on an
    interrupt too, without waiting for the runs they hold."""
    if workers == 1:
        for spec in specs:
            finished(spec, execute_run(spec))
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN)) as pool:
        for spec, rows in pool.imap_unordered(_execute_with_spec, specs):
            finished(spec, rows)


def _execute_with_spec(spec: RunSpec) -> tuple[RunSpec, list[dict]]:
    return spec, execute_run(spec)


def run_ray(specs: Sequence[RunSpec], finished: Finished, address: str | None = None, workers: int | None = None) -> None:
    """Run ``specs`` as Ray tasks of one CPU each: on a local Ray started here (``workers`` CPUs, default all) or on
    the cluster at ``address`` (checked first by :func:`check_engine`). The driver receives each run as it finishes;
    SIGTERM and Ctrl-C reach this process's own handlers throughout, and a Ray started here is shut down."""
    import ray

    started = not ray.is_initialized()
    try:
        if started:
            options = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            init_ray(**(dict(num_cpus=workers) if address is None else dict(address=address)), **options)
        task = ray.remote(num_cpus=1, max_retries=0)(execute_run)
        pending = {task.remote(spec): spec for spec in specs}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=_WAIT_SLICE_S)
                for reference in done:
                    finished(pending.pop(reference), ray.get(reference))
        except BaseException:
            for reference in pending:
                ray.cancel(reference, force=True)
            raise
    finally:
        if started:
            ray.shutdown()


def check_engine(engine: Engine, address: str | None = None) -> None:
    """Refuse, before anything runs, an unknown engine, an address without Ray, Ray missing, or an address that
    does not answer."""
    check_choice("engine", engine, ENGINES)
    if address is not None and engine != "ray":
        raise ValueError("--address is for --engine ray; the local engine runs on this machine")
    if engine == "ray":
        if importlib.util.find_spec("ray") is None:
            raise ValueError("--engine ray needs Ray: pip install 'mirage_viz[ray]' (or pip install ray)")
        if address is not None and address.startswith("ray://") and importlib.util.find_spec("grpc") is None:
            raise ValueError(f"{address} is a Ray Client address, which needs pip install 'ray[client]'; or give the "
                             "cluster's HOST:PORT (its GCS, 6379 by default)")
        if address is not None:
            check_ray_address(address)


def run_specs(specs: Sequence[RunSpec], finished: Finished, engine: Engine = "local", workers: int = 1,
              address: str | None = None) -> None:
    """Run ``specs`` on ``engine`` (``local`` or ``ray``) as :func:`check_engine` accepted them, calling ``finished``
    for each."""
    if engine == "ray":
        run_ray(specs, finished, address, workers)
    else:
        run_local(specs, finished, workers)
