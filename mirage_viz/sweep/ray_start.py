"""Ray started or joined from the driver with the driver's SIGTERM and SIGINT handlers in force throughout.

``ray.init`` puts its own SIGTERM handler in (``sys.exit(15)``: no clean-up, the wrong exit status), its C++ core
worker adds a crash reporter on SIGTERM (a stack on stderr, then an alarm that aborts the process 3 s later), and
while a local Ray starts, its C++ waits hold Python's handlers off for seconds. :func:`init_ray` keeps Ray's
handler out, sets ours again when ``ray.init`` returns, cancels the reporter's alarm, and leaves nothing running
when a start is cut short.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path

__all__ = ["init_ray"]


def init_ray(**options: object) -> None:
    """``ray.init(**options)`` with this process's signal handlers kept. A signal before Ray's node is up cuts the
    start short and kills the processes it started (Ray's clean-up only knows a node it finished making); one while
    the driver then connects to the node is held until ``ray.init`` returns (cut there, the half-made C++ core worker
    crashes the process as it exits) and then reaches the handler, Ray being up for the caller to shut down."""
    import ray
    import ray._private.utils as ray_utils
    import ray._private.worker as ray_worker

    if threading.current_thread() is not threading.main_thread():  # the only one that can set handlers
        ray.init(**options)
        return
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    received: list[int] = []  # signals while ray.init runs
    deferred: list[int] = []  # those of them held until it returns

    def during_init(signum: int, frame: object) -> None:
        received.append(signum)
        if ray_worker._global_node is not None:  # the node is up: the driver is connecting to it
            deferred.append(signum)
        else:
            handlers[signum](signum, frame)

    set_sigterm_handler, ray_utils.set_sigterm_handler = ray_utils.set_sigterm_handler, lambda handler: None
    for signum, handler in handlers.items():
        if callable(handler):
            signal.signal(signum, during_init)
    before = _children(_parents())
    try:
        ray.init(**options)
    except BaseException:
        ray.shutdown()  # the driver's connection, if made, and the node, if Ray finished making it
        # what Ray does not know yet: killed only with this process, the raylet would leave its agents running
        _kill_trees(_children(_parents()) - before)
        raise
    finally:
        ray_utils.set_sigterm_handler = set_sigterm_handler
        for signum, handler in handlers.items():
            if handler is not None:  # None: a handler set outside Python, which cannot be put back
                signal.signal(signum, handler)
        if received:
            signal.alarm(0)  # the crash reporter's, if it saw the signal
    for signum in deferred[:1]:
        handlers[signum](signum, None)


def _parents() -> dict[int, int]:
    """Every process's parent, from /proc (Linux; elsewhere none are known)."""
    parents = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        with contextlib.suppress(OSError, IndexError, ValueError):  # not a process, or one that ended meanwhile
            parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()[1])
    return parents


def _children(parents: dict[int, int]) -> set[int]:
    return {pid for pid, parent in parents.items() if parent == os.getpid()}


def _kill_trees(roots: set[int]) -> None:
    """Kill ``roots`` (children of this process) and all their descendants at once, then reap ``roots``."""
    parents, tree = _parents(), set(roots)
    while grown := {pid for pid, parent in parents.items() if parent in tree} - tree:
        tree |= grown
    for pid in tree:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for pid in roots:
        with contextlib.suppress(ChildProcessError):  # reaped already (by Ray's Popen)
            os.waitpid(pid, 0)
