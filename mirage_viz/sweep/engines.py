"""Where a sweep's runs execute: in this process, in a local pool of processes, or as Ray tasks.

Every engine calls the same function, :func:`~mirage_viz.sweep.run.execute_run`, and hands each finished run back
to the driver as it finishes (:data:`Finished`), which writes it at once. No scheduler of our own: a
``concurrent.futures`` pool locally, Ray's scheduler on Ray (a local Ray by default, ``address`` for a cluster).
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import multiprocessing
import socket
from collections.abc import Callable, Sequence
from typing import Literal

from mirage_viz.checks import check_choice
from mirage_viz.sweep.grid import RunSpec
from mirage_viz.sweep.run import execute_run

__all__ = ["ENGINES", "Engine", "Finished", "check_engine", "check_ray_address", "run_local", "run_ray", "run_specs"]

Engine = Literal["local", "ray"]
ENGINES: tuple[Engine, ...] = ("local", "ray")
Finished = Callable[[RunSpec, list[dict]], None]  # called in the driver for each finished run, in finishing order
ADDRESS_TIMEOUT_S = 3.0


def run_local(specs: Sequence[RunSpec], finished: Finished, workers: int = 1) -> None:
    """Run ``specs`` here (``workers`` 1) or in a pool of ``workers`` fresh processes (spawned: no state copied from
    this one), each on one torch thread."""
    if workers == 1:
        for spec in specs:
            finished(spec, execute_run(spec))
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(execute_run, spec): spec for spec in specs}
        try:
            for future in concurrent.futures.as_completed(futures):
                finished(futures[future], future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def check_ray_address(address: str) -> None:
    """Refuse, within :data:`ADDRESS_TIMEOUT_S`, a Ray address nothing answers at (``ray.init`` would wait far longer)."""
    host_port = address.removeprefix("ray://")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"Ray address {address!r} is not HOST:PORT (such as 10.0.0.5:6379, or ray://HOST:10001 for "
                         "Ray Client); leave --address out to start a local Ray")
    try:
        with socket.create_connection((host, int(port)), timeout=ADDRESS_TIMEOUT_S):
            pass
    except OSError as error:
        raise ValueError(f"no Ray cluster answers at {address} ({error.strerror or error}); start one with `ray start "
                         "--head`, check the address, or leave --address out to start a local Ray") from None


def run_ray(specs: Sequence[RunSpec], finished: Finished, address: str | None = None, workers: int | None = None) -> None:
    """Run ``specs`` as Ray tasks of one CPU each: on a local Ray started here (``workers`` CPUs, default all) or on
    the cluster at ``address`` (checked by :func:`run_specs`). The driver receives each run as it finishes."""
    import ray

    started = not ray.is_initialized()
    if started:
        options = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if address is None:
            ray.init(num_cpus=workers, **options)
        else:
            ray.init(address=address, **options)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(execute_run)
        pending = {task.remote(spec): spec for spec in specs}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
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
        if address is not None:
            check_ray_address(address)


def run_specs(specs: Sequence[RunSpec], finished: Finished, engine: Engine = "local", workers: int = 1,
              address: str | None = None) -> None:
    """Run ``specs`` on ``engine`` (``local`` or ``ray``), calling ``finished`` for each."""
    check_engine(engine, address)
    if engine == "ray":
        run_ray(specs, finished, address, workers)
    else:
        run_local(specs, finished, workers)
