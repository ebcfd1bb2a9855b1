"""Soak the Space: visitors arrive one after another, run a rollout, download it and leave.

    python scripts/space_soak.py [--sessions 20] [--steps 4] [--size 128] [--out runs/space_soak.json]

Starts the app (``mirage_viz.ui.app.launch``) in a server process of its own, drives it with gradio_client as
visitors would, and after each visitor has left records the server's resident memory and the download
folders still on disk. Writes the figures as JSON: memory after each session, the growth from the fifth
session to the last, and whether any download folder outlived its session.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER = """
import sys
from mirage_viz.ui.app import launch
launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), quiet=True)
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _export_folders(temp_dir: Path) -> list[Path]:
    """Each session's download folder: <GRADIO_TEMP_DIR>/mirage_viz/exports-<pid>-<id>/<session folder>."""
    return [p for root in (temp_dir / "mirage_viz").glob("exports-*") for p in root.iterdir() if p.is_dir()]


def _wait(condition, timeout_s: float, what: str) -> float:
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)
    return time.perf_counter() - start


def soak(sessions: int = 20, steps: int = 4, size: int = 128, checkpoint: int = 5, timeout_s: float = 120.0) -> dict:
    """Run the soak and return its figures (see the module's docstring)."""
    from gradio_client import Client

    port = _free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="mirage_viz_soak_"))
    env = dict(os.environ, GRADIO_TEMP_DIR=str(temp_dir), GRADIO_HEARTBEAT_INTERVAL="1", HF_HUB_OFFLINE="1",
               GRADIO_ANALYTICS_ENABLED="False")
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    records = []
    try:
        _wait(lambda: _port_open(port) or server.poll() is not None, timeout_s, "the server to start")
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {server.stderr.read()[-2000:]}")
        start_rss = _rss_mb(server.pid)
        for index in range(1, sessions + 1):
            client = Client(url, verbose=False, download_files=False)
            started = time.perf_counter()
            outputs = client.predict("room", "loop", 0.0, steps, size, index, api_name="/run")
            run_s = time.perf_counter() - started
            status = re.sub(r"<[^>]+>", " ", str(outputs[5])).strip()  # the status line (HTML)
            if not status.startswith(f"Done: {steps} steps"):
                raise RuntimeError(f"session {index}: {status!r}")
            held = len(_export_folders(temp_dir))
            client.close()  # the visitor leaves: the heartbeat ends and the app's unload frees the session
            try:
                freed_s = round(_wait(lambda: not _export_folders(temp_dir), 30.0, f"session {index}'s downloads"), 2)
            except TimeoutError:
                freed_s = None  # outlived its session
            time.sleep(0.5)  # the unload handler hands freed memory back right after removing the downloads
            records.append({"session": index, "run_s": round(run_s, 2), "export_folders_while_held": held,
                            "freed_after_s": freed_s, "rss_mb": round(_rss_mb(server.pid), 1)})
            print(f"session {index:2d}: run {run_s:5.1f} s, downloads freed {freed_s} s after leaving, "
                  f"server {records[-1]['rss_mb']:7.1f} MB", file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(30)
    at_checkpoint = records[min(checkpoint, len(records)) - 1]["rss_mb"]
    return {
        "sessions": sessions, "steps": steps, "size": size, "server_rss_mb_at_start": round(start_rss, 1),
        f"server_rss_mb_after_session_{checkpoint}": at_checkpoint, "server_rss_mb_after_last": records[-1]["rss_mb"],
        f"growth_mb_from_session_{checkpoint}_to_last": round(records[-1]["rss_mb"] - at_checkpoint, 1),
        "export_folders_outliving_their_session": sum(r["freed_after_s"] is None for r in records),
        "left_in_temp_dir_after_shutdown": sorted(str(p.relative_to(temp_dir)) for p in temp_dir.rglob("*") if p.is_dir()
                                                  and "mirage_viz" in p.parts),
        "records": records,
    }


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=128, choices=(128, 256))
    parser.add_argument("--out", type=Path, default=Path("runs/space_soak.json"))
    args = parser.parse_args()
    result = soak(args.sessions, args.steps, args.size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"growth from session 5 to {args.sessions}: {result['growth_mb_from_session_5_to_last']:+.1f} MB; "
          f"wrote {args.out}")


if __name__ == "__main__":
    main()
