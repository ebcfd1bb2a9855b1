"""Measure the app's budgets (issues 10 and 36) and write the figures as JSON; never asserts on a time.

    python scripts/app_speed.py [--quick] [--steps 8] [--size 256] [--out runs/app_speed.json]

The budgets, each reported with its figure and ``within_budget``:

1. Per streamed step of a ``loop`` rollout (8 steps at 256 px): at most 300 kB sent to the browser, and at most
   60 ms building the panels on the server (``mirage_viz.ui.app._panels``; split into the step view, the 3D caches,
   the charts and their JSON). The bytes are the real ones: the app is served in this process and the run is
   submitted through Gradio's queue protocol (``/gradio_api/queue/join``, then the SSE stream of
   ``/gradio_api/queue/data``), each message counted as it arrives and decoded per output.
2. In a real browser (Debian chromium driven by Playwright), once the page has settled (its path preview drawn),
   Run to Done (every step shown, the 3D caches and the charts drawn: they are drawn once the run is done) within 10 s; also to the downloads offered (the same output
   folder the command line writes), and its ratio to the command line (``python -m mirage_viz.cli rollout``, the
   whole command in a subprocess).
3. A drive press at 128 px in the browser, the keys pressed one after another: key press to the press's frames (its
   status line and step view) at most 0.5 s at the median; the 3D caches and the scores follow when the driver
   pauses (timed after the last key).

Where the browser's time goes: the served demo's run and drive handlers are wrapped (in this process only) to
note when the server yielded each step or ran each press, the page notes when each step showed (its status line,
the step view's image, the 3D plot's title), and the CPU seconds of the server, of chromium's processes and of
the page's main thread (Chrome's own metrics) are counted over the run and over the presses.

``--quick`` skips the command line and the browser (budgets 2 and 3); ``--steps`` and ``--size`` go with it.
Machine, versions, date and the load average (the machine may be shared) go into the JSON with the figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

PANELS_BUDGET_MS = 60.0
PAYLOAD_BUDGET_KB = 300.0  # kB = 1000 bytes
BROWSER_RUN_BUDGET_S = 10.0  # issue 36: click on Run to Done, with the 3D caches drawn
DRIVE_PRESS_BUDGET_S = 0.5  # issue 36: the median press, key to its frames
DRIVE_KEYS = ("w", "w", "q", "e", "d", "b")  # each press adds one step ("b", back to the start, too)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_OUTPUTS = ("step_view_html", "cache_plot", "metrics_plot", "table", "step_slider", "status", "downloads")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _stats(values: list[float], digits: int = 1) -> dict:
    return {"median": round(statistics.median(values), digits), "max": round(max(values), digits),
            "each": [round(v, digits) for v in values]}


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


def _size(value: object) -> int:
    """Bytes of ``value`` as JSON in a message (compact, as the server writes it)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def machine_info() -> dict:
    import gradio
    import plotly
    import torch

    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "platform": platform.platform(), "torch": torch.__version__, "gradio": gradio.__version__,
            "plotly": plotly.__version__}


# -- 1a. panel building on the server ------------------------------------------------------------------
def measure_panels(steps: int = 8, size: int = 256, trajectory: str = "loop") -> dict:
    """Run the rollout in this process and time ``_panels`` after every step, then its parts one by one.

    Also the rollout's own time (the sum of its steps, models already loaded): the floor under any front end."""
    from mirage_viz.ui import app
    from mirage_viz.backbone import build_backbone
    from mirage_viz.rollout import RolloutConfig, iter_rollout
    from mirage_viz.viz.figures import cache_figure, metrics_figure, rollout_pca
    from mirage_viz.viz.step_view import step_view, step_view_html

    start = time.perf_counter()
    backbone = build_backbone(depth=None)  # what the app's run uses
    load_ms = _ms(start)
    panels, step_ms = [], []
    parts: dict[str, list[float]] = {k: [] for k in ("pca", "step_view", "cache_3d", "charts", "table",
                                                     "json_3d", "json_charts")}
    json_bytes: dict[str, list[int]] = {"cache_3d": [], "charts": []}

    def part(name: str, work: Callable[[], object]) -> object:
        begin = time.perf_counter()
        value = work()
        parts[name].append(_ms(begin))
        return value

    stream = iter_rollout(RolloutConfig(steps=steps, size=size, trajectory=trajectory), backbone=backbone)
    while True:
        start = time.perf_counter()
        rollout = next(stream, None)
        if rollout is None:
            break
        step_ms.append(_ms(start))
        step = len(rollout) - 1
        start = time.perf_counter()
        app._panels(rollout, step)
        panels.append(_ms(start))
        # the same work again, part by part, and the figures' JSON (which Gradio writes after _panels returns)
        basis = part("pca", lambda: rollout_pca(rollout))
        part("step_view", lambda: step_view_html(step_view(rollout, step, basis)))
        cache = part("cache_3d", lambda: cache_figure(rollout, step, basis, max_points=app.APP_MAX_POINTS))
        charts = part("charts", lambda: metrics_figure(rollout))
        part("table", lambda: app._table(rollout, step))
        json_bytes["cache_3d"].append(len(part("json_3d", cache.to_json)))
        json_bytes["charts"].append(len(part("json_charts", charts.to_json)))
    with_json = [p + a + b for p, a, b in zip(panels, parts["json_3d"], parts["json_charts"])]
    return {
        "budget_ms": PANELS_BUDGET_MS, "median_ms": round(statistics.median(panels), 1), "max_ms": round(max(panels), 1),
        "within_budget": max(panels) <= PANELS_BUDGET_MS,
        "median_within_budget": statistics.median(panels) <= PANELS_BUDGET_MS,
        "max_after_the_first_call_ms": round(max(panels[1:]), 1) if len(panels) > 1 else None,  # the first: cold
        "panels_ms": _stats(panels),
        "panels_plus_json_ms": _stats(with_json),  # Gradio serialises the two figures after _panels returns
        "parts_ms": {name: _stats(values) for name, values in parts.items()},
        "figure_json_bytes": {name: _stats([float(v) for v in values], 0) for name, values in json_bytes.items()},
        "rollout": {"models_load_ms": round(load_ms, 1), "step_ms": _stats(step_ms),
                    "total_s": round(sum(step_ms) / 1e3, 2)},
        "load_average": _load(),
    }


# -- 1b. bytes streamed to the browser -------------------------------------------------------------------
def _sse_events(response, deadline: float):
    """Each ``data:`` event of an SSE response as (bytes on the wire, decoded JSON, seconds since the request)."""
    buffer, start = b"", time.perf_counter()
    for chunk in response.iter_raw():
        buffer += chunk
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            if event.startswith(b"data:"):
                yield len(event) + 2, json.loads(event[5:]), time.perf_counter() - start
        if time.monotonic() > deadline:
            raise TimeoutError("the SSE stream ran past its deadline")


def _edits(diff: list) -> str:
    """What a diff does, in short: its distinct edits, list indices as ``*`` ("replace plot", "append (whole)")."""
    if not diff:
        return "unchanged"
    kinds = dict.fromkeys(f"{action} {'/'.join('*' if isinstance(k, int) else str(k) for k in path) or '(whole)'}"
                          for action, path, _ in diff)
    return ", ".join(kinds)


def measure_payload(url: str, steps: int = 8, size: int = 256, trajectory: str = "loop", timeout_s: float = 600) -> dict:
    """Submit a run through Gradio's queue as the browser does and count the bytes of every message of its stream.

    Gradio streams a generator's outputs as diffs against the previous yield (``process_generating``); the diffs
    are applied here (as gradio_client does) to tell which message is which step, and each output's share of a
    message is its JSON re-encoded (compact)."""
    import secrets

    import httpx
    from gradio_client.utils import apply_diff

    base = url.rstrip("/")
    config = httpx.get(f"{base}/config", timeout=30).json()
    api = base + config.get("api_prefix", "/gradio_api")
    fn_index = next(d.get("id", i) for i, d in enumerate(config["dependencies"]) if d.get("api_name") == "run")
    session = secrets.token_hex(8)
    data = ["room", trajectory, 0.0, steps, size, 0, None, 0.0, "embedded", "", "", "", 3.0, False, None, "paper", "",
            None]  # ... depth scale, back to start, camera file, memory setting, footage (shipped, zip)
    deadline = time.monotonic() + timeout_s
    records, outputs = [], [None] * len(RUN_OUTPUTS)
    with httpx.Client(timeout=httpx.Timeout(30, read=min(timeout_s, 300))) as client:
        joined = client.post(f"{api}/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                        "event_data": None, "trigger_id": None})
        joined.raise_for_status()
        event_id = joined.json()["event_id"]
        with client.stream("GET", f"{api}/queue/data", params={"session_hash": session}) as response:
            response.raise_for_status()
            encoding = response.headers.get("content-encoding", "none")
            for size_bytes, message, at in _sse_events(response, deadline):
                kind = message.get("msg")
                if message.get("event_id") not in (None, event_id) or kind == "heartbeat":
                    continue
                record = {"msg": kind, "bytes": size_bytes, "at_s": round(at, 3)}
                values = (message.get("output") or {}).get("data") or []
                if kind == "process_generating" and values:
                    first = all(v is None for v in outputs)
                    record["outputs"] = {}
                    for i, value in enumerate(values[:len(RUN_OUTPUTS)]):
                        diff = not first  # after its first message, Gradio sends every output as a diff
                        outputs[i] = apply_diff(outputs[i], value) if diff else value
                        record["outputs"][RUN_OUTPUTS[i]] = {"bytes": _size(value), "whole_value_bytes": _size(outputs[i]),
                                                             "sent_as": _edits(value) if diff else "whole value"}
                    status = str(outputs[RUN_OUTPUTS.index("status")] or "")
                    record["status"] = status[status.find("<p"):][:80]
                    record["step"] = next((k for k in range(steps + 1) if f"Step {k} of {steps} done" in status), None)
                    if "Drag the slider" in status:
                        record["step"] = "done (with the downloads)"
                    elif "Done:" in status:
                        record["step"] = "done (the panels; the downloads being written)"
                elif kind == "process_completed":
                    record["success"] = message.get("success")
                    record["outputs_bytes"] = {RUN_OUTPUTS[i]: _size(v) for i, v in enumerate(values[:len(RUN_OUTPUTS)])}
                records.append(record)
                if kind == "process_completed":
                    break
            else:
                raise RuntimeError("the stream ended before the run completed")
    if not records or records[-1].get("success") is False:
        raise RuntimeError(f"the run failed: {records[-1:]}")
    per_step = [r for r in records if isinstance(r.get("step"), int)]
    step_bytes = [r["bytes"] / 1e3 for r in per_step]
    shares = {name: [r["outputs"][name]["bytes"] / 1e3 for r in per_step] for name in RUN_OUTPUTS}
    whole = {name: [r["outputs"][name]["whole_value_bytes"] / 1e3 for r in per_step] for name in RUN_OUTPUTS}
    sent_as = {name: sorted({r["outputs"][name]["sent_as"] for r in per_step[1:]}) for name in RUN_OUTPUTS}
    return {
        "budget_kb": PAYLOAD_BUDGET_KB, "median_kb": round(statistics.median(step_bytes), 1),
        "max_kb": round(max(step_bytes), 1), "within_budget": max(step_bytes) <= PAYLOAD_BUDGET_KB,
        "kb_per_step": _stats(step_bytes),
        "kb_per_output_per_step": {name: {**_stats(shares[name]), "whole_value_median": round(statistics.median(
            whole[name]), 1)} for name in RUN_OUTPUTS},
        "sent_as_after_the_first_step": sent_as,
        "gradio_sends_diffs": any(v != ["whole value"] for v in sent_as.values()),
        "content_encoding": encoding,
        "total_kb": round(sum(r["bytes"] for r in records) / 1e3, 1),
        "kb_by_message": {kind: round(sum(r["bytes"] for r in records if r["msg"] == kind) / 1e3, 1)
                          for kind in dict.fromkeys(r["msg"] for r in records)},
        "run_s": records[-1]["at_s"],
        "messages": records,
        "load_average": _load(),
    }


# -- 2a. the command line --------------------------------------------------------------------------------
def measure_cli(steps: int = 8, size: int = 256, trajectory: str = "loop", timeout_s: float = 600) -> dict:
    """The whole ``python -m mirage_viz.cli rollout`` command, in a subprocess (start, imports, models, exports)."""
    with tempfile.TemporaryDirectory(prefix="app_speed_cli_") as folder:
        command = [sys.executable, "-m", "mirage_viz.cli", "rollout", "--steps", str(steps), "--size", str(size),
                   "--trajectory", trajectory, "--out", str(Path(folder) / "out")]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        wall = time.perf_counter() - start
        written = sorted(p.name for p in (Path(folder) / "out").glob("*"))
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[1:])} exited {done.returncode}: {done.stderr[-1500:]}")
    return {"command": " ".join(["python", *command[1:-1], "<tmp>"]), "wall_s": round(wall, 2), "written": written,
            "load_average": _load()}


# -- 2b and 3. the browser -------------------------------------------------------------------------------
_PLOT_TITLE_JS = """const plotTitle = (text) => [...document.querySelectorAll('.js-plotly-plot .gtitle')].some(
    (t) => t.textContent.includes(text) && t.closest('.js-plotly-plot').getClientRects().length > 0);"""
_WATCH_RUN = """(watched) => {
  // the click on Run, and the first time each watched text shows (performance.now(), ms): [key, "status", text]
  // in the status line, [key, "plot", text] in the title of a visible plot (Plotly has applied that figure)
  %s
  const probe = window.__mvRun = {click: null, seen: {}, origin: performance.timeOrigin};
  document.addEventListener('click', () => { if (probe.click === null) probe.click = performance.now(); },
                            {capture: true, once: true});
  const observer = new MutationObserver(() => {
    const status = (document.querySelector('#run-status') || {}).textContent || '';
    for (const [key, where, text] of watched) {
      if (!(key in probe.seen) && (where === 'status' ? status.includes(text) : plotTitle(text))) {
        probe.seen[key] = performance.now();
      }
    }
    if (Object.keys(probe.seen).length === watched.length) observer.disconnect();
  });
  observer.observe(document.body, {subtree: true, childList: true, characterData: true});
}""" % _PLOT_TITLE_JS

_WATCH_PRESS = """([status_text, plot_text]) => {
  // the key press, then (performance.now(), ms) the status line saying `status_text`, the step view's first image
  // changing and the visible 3D plot's title saying `plot_text`
  %s
  const image = () => {
    const img = document.querySelector('#drive-view img');
    return img ? img.getAttribute('src') : null;
  };
  const before = image();
  const probe = window.__mvPress = {key: null, status: null, image: null, plot: null, origin: performance.timeOrigin};
  document.addEventListener('keydown', () => { if (probe.key === null) probe.key = performance.now(); },
                            {capture: true, once: true});
  const observer = new MutationObserver(() => {
    const now = performance.now();
    const status = document.querySelector('#drive-status');
    if (probe.status === null && status && status.textContent.includes(status_text)) probe.status = now;
    if (probe.image === null && image() !== before) probe.image = now;
    if (probe.plot === null && plotTitle(plot_text)) probe.plot = now;
    if (probe.status !== null && probe.image !== null && probe.plot !== null) observer.disconnect();
  });
  observer.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
}""" % _PLOT_TITLE_JS


def _children_cpu_s() -> float:
    """CPU seconds used so far by this process's live descendants: the Playwright driver and chromium's processes."""
    parents, cpu = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid = int(stat.parent.name)
        parents[pid], cpu[pid] = int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    me, total = os.getpid(), 0.0
    for pid in cpu:
        ancestor = parents.get(pid)
        while ancestor and ancestor != me:
            ancestor = parents.get(ancestor)
        total += cpu[pid] if ancestor == me and pid != me else 0.0
    return total


class CpuMeter:
    """Where the CPU went over a stretch: this process (the server, and Playwright's client), chromium's processes,
    and the page's main thread (Chrome's own figures: script, layout, style)."""

    PAGE_METRICS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")

    def __init__(self, page) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Performance.enable")

    def _read(self) -> dict[str, float]:
        metrics = {m["name"]: m["value"] for m in self.cdp.send("Performance.getMetrics")["metrics"]}
        return {"server_process": time.process_time(), "browser_processes": _children_cpu_s(),
                **{f"page_main_thread_{name}": metrics.get(name, 0.0) for name in self.PAGE_METRICS}}

    def start(self) -> None:
        self.begun = self._read()

    def stop(self) -> dict[str, float]:
        return {f"{name}_s": round(value - self.begun[name], 2) for name, value in self._read().items()}


def measure_browser_run(page, steps: int = 8, yields: list | None = None,
                        meter: CpuMeter | None = None) -> dict:
    """Click Run on the defaults (room, loop, 8 steps, 256 px) and time it until its downloads are offered (the
    status says "Drag the slider", after "Done:" and the writing of the CLI's output folder), with when each step showed
    in the status line and in the 3D plot, and where the CPU went.

    With ``yields`` (``notes["run"]`` of :func:`time_handlers`) also when the server yielded each step: the rest of
    the time is Gradio's output processing, the stream and the browser's work (and the browser's share of the
    CPU, taken from the server's)."""
    run = page.get_by_role("button", name="Run", exact=True)
    run.wait_for(timeout=60_000)
    status = {k: f"Step {k} of {steps} done" for k in range(steps + 1)}
    watched = [[f"status {k}", "status", text] for k, text in status.items()]
    watched += [[f"plot {k}", "plot", f"Step {k}: the caches in 3D"] for k in range(steps + 1)]
    watched += [["done", "status", "Done:"], ["downloads", "status", "Drag the slider"]]
    page.evaluate(_WATCH_RUN, watched)
    if yields is not None:
        yields.clear()
    meter = meter or CpuMeter(page)
    meter.start()
    start = time.perf_counter()
    run.click()
    page.get_by_text("Drag the slider").first.wait_for(timeout=300_000)
    wall = time.perf_counter() - start
    cpu = meter.stop()
    probe = page.evaluate("window.__mvRun")
    if probe["click"] is None:
        return {"wall_s": round(wall, 2), "cpu_s": cpu, "note": "the click was not seen by the page: no timeline"}
    shown = {key: round((t - probe["click"]) / 1e3, 2) for key, t in probe["seen"].items()}
    click_at = (probe["origin"] + probe["click"]) / 1e3
    yielded = {}
    for at, text in yields or []:
        for k, wanted in [*status.items(), ("done", "Done:"), ("downloads", "Drag the slider")]:
            if wanted in text:
                yielded.setdefault(k, round(at - click_at, 2))
    timeline = {str(k): {"yielded_s": yielded.get(k),
                         "status_shown_s": shown.get(f"status {k}"), "plot_3d_shown_s": shown.get(f"plot {k}")}
                for k in status}
    timeline["done"] = {"yielded_s": yielded.get("done"), "status_shown_s": shown.get("done"),
                        "plot_3d_shown_s": shown.get(f"plot {steps}")}  # the last step's 3D caches: drawn at the end
    timeline["downloads"] = {"yielded_s": yielded.get("downloads"), "status_shown_s": shown.get("downloads")}

    def lags(what: str) -> dict | None:
        values = [t[what] - t["yielded_s"] for t in timeline.values()
                  if t.get(what) is not None and t["yielded_s"] is not None]
        return _stats(values, 2) if values else None

    on_screen = [shown[f"status {k}"] for k in status if f"status {k}" in shown]
    return {"wall_s": round(wall, 2), "after_click_s": timeline,
            "between_steps_shown_s": _stats([b - a for a, b in zip(on_screen, on_screen[1:])], 2)
            if len(on_screen) > 1 else None,
            "yielded_to_status_shown_s": lags("status_shown_s"), "yielded_to_plot_3d_shown_s": lags("plot_3d_shown_s"),
            "cpu_s": cpu, "load_average": _load()}


def time_handlers(demo) -> dict[str, list]:
    """Wrap the served demo's run and drive handlers (this process's copy only) to note, as epoch seconds, when
    the run yielded each status line (``"run"``: (time, status text)) and when each drive press ran (``"drive"``:
    (start, end)); the browser's own clock (``performance.timeOrigin``) is the same machine's."""
    import functools
    import inspect

    notes: dict[str, list] = {"run": [], "drive": []}

    def run_timed(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            outputs_stream = fn(*args, **kwargs)
            try:
                for outputs in outputs_stream:
                    status = outputs[RUN_OUTPUTS.index("status")] if isinstance(outputs, tuple) else None
                    notes["run"].append((time.time(), status if isinstance(status, str) else ""))
                    yield outputs
            finally:
                outputs_stream.close()  # a run stopped or left early ends as it would unwrapped
        return timed

    def drive_timed(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            start = time.time()
            try:
                return fn(*args, **kwargs)
            finally:
                notes["drive"].append((start, time.time()))
        return timed

    for block_fn in demo.fns.values():
        name = str(block_fn.api_name or "")
        if name == "run" and inspect.isgeneratorfunction(block_fn.fn):
            block_fn.fn = run_timed(block_fn.fn)
        elif name.startswith("drive_") and not inspect.iscoroutinefunction(block_fn.fn):  # the presses, not the
            block_fn.fn = drive_timed(block_fn.fn)  # scores and 3D caches drawn after a pause (/drive_scores)
    return notes


def measure_drive(page, keys: tuple[str, ...] = DRIVE_KEYS, spans: list | None = None, timeout_s: float = 60,
                  meter: CpuMeter | None = None) -> dict:
    """Start a drive (128 px, the default), then press ``keys`` one after another as a driver would, each as soon as
    the last one's frames show: each timed from the key press to the status line saying the step and to the step
    view's first image changing (the budget's figure: the later of the two). The 3D caches and the scores follow
    when the driver pauses: after the last key, the time to the 3D plot's title saying the last step (the pause
    included). With ``spans`` (``notes["drive"]`` of :func:`time_handlers`) each press is split: key to the handler
    starting, the handler, and its end to the page showing the step (Gradio's output processing, the stream and the
    browser's work)."""
    page.get_by_role("tab", name="Drive").click()
    start = time.perf_counter()
    page.get_by_role("button", name="Start here").click()
    page.get_by_text("Step 0 of at most").first.wait_for(timeout=timeout_s * 1e3)
    page.wait_for_function("() => { %s return plotTitle('Step 0: the caches in 3D'); }" % _PLOT_TITLE_JS,
                           timeout=timeout_s * 1e3)  # the start settled: its 3D caches drawn
    start_s = time.perf_counter() - start
    page.get_by_text("Steer the camera yourself").click()  # somewhere neutral: no field has the focus
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    presses = []
    meter = meter or CpuMeter(page)
    meter.start()
    for n, key in enumerate(keys, start=1):
        page.evaluate(_WATCH_PRESS, [f"Step {n} of at most", f"Step {n}: the caches in 3D"])
        begin = time.perf_counter()
        page.keyboard.press(key)
        page.wait_for_function("() => window.__mvPress.status !== null && window.__mvPress.image !== null",
                               timeout=timeout_s * 1e3)
        wall = time.perf_counter() - begin
        if n == len(keys):  # the driver pauses: the 3D caches and the scores follow
            try:
                page.wait_for_function("() => window.__mvPress.plot !== null", timeout=15_000)
            except Exception:  # noqa: BLE001 - a 3D view that never showed the step is a figure (None), not a failure
                pass
        probe = page.evaluate("window.__mvPress")
        since_key = (lambda t: None if t is None or probe["key"] is None else round((t - probe["key"]) / 1e3, 3))
        press = {"key": key, "step": n, "wall_s": round(wall, 3), "key_to_status_s": since_key(probe["status"]),
                 "key_to_image_s": since_key(probe["image"])}
        seen = [press[k] for k in ("key_to_status_s", "key_to_image_s")]
        press["key_to_frames_s"] = None if None in seen else max(seen)
        if n == len(keys):
            press["key_to_plot_3d_s"] = since_key(probe["plot"])
        if spans and probe["key"] is not None and probe["status"] is not None:
            to_epoch = (lambda t: None if t is None else (probe["origin"] + t) / 1e3)
            key_at, shown_at = to_epoch(probe["key"]), to_epoch(probe["status"])
            ran = [(a, b) for a, b in spans if key_at - 0.05 <= a <= shown_at]
            if ran:
                (a, b) = ran[-1]
                press.update(key_to_handler_s=round(a - key_at, 3), handler_s=round(b - a, 3),
                             handler_end_to_status_s=round(shown_at - b, 3))
        presses.append(press)
    cpu = meter.stop()  # over all the presses and the last one's 3D caches
    complete = [p["key_to_frames_s"] for p in presses if p["key_to_frames_s"] is not None]
    figures = {part: _stats([p[part] for p in presses if p.get(part) is not None], 3)
               for part in ("key_to_frames_s", "key_to_status_s", "key_to_image_s", "wall_s", "key_to_handler_s",
                            "handler_s", "handler_end_to_status_s")
               if any(p.get(part) is not None for p in presses)}
    median = statistics.median(complete) if complete else None
    return {"budget_s": DRIVE_PRESS_BUDGET_S, "median_s": None if median is None else round(median, 3),
            "max_s": round(max(complete), 3) if complete else None,
            "within_budget": len(complete) == len(presses) and median <= DRIVE_PRESS_BUDGET_S,
            "measured": "key press to the later of: the status line and the step view's first image (the frames); "
                        "the next key pressed as soon as they show",
            "last_key_to_plot_3d_s": presses[-1].get("key_to_plot_3d_s"),
            "presses_without_their_frames": len(presses) - len(complete), **figures,
            "start_here_s": round(start_s, 2), "presses": presses, "cpu_s_all_presses": cpu, "load_average": _load()}


def measure_drive_server(keys: tuple[str, ...] = DRIVE_KEYS, size: int = 128) -> dict:
    """The server's share of a drive press, in this process: the step, then the panels (no charts), per key."""
    from mirage_viz.ui import app
    from mirage_viz.backbone import build_backbone
    from mirage_viz.rollout.drive import MOVES, DriveSession
    from mirage_viz.rollout import RolloutConfig

    key_action = {k: v for k, v in app.DRIVE_KEYS.items() if len(k) == 1}
    drive = DriveSession(RolloutConfig(world="room", size=size, steps=1), backbone=build_backbone(depth=None),
                         max_steps=app.MAX_STEPS)
    step_ms, panels_ms = [], []
    for key in keys:
        action = key_action[key]
        start = time.perf_counter()
        if action in MOVES:
            drive.move(action)
        else:
            getattr(drive, action)()  # back_to_start
        step_ms.append(_ms(start))
        start = time.perf_counter()
        app._panels(drive.rollout, len(drive.rollout) - 1, metrics=False)
        panels_ms.append(_ms(start))
    return {"step_ms": _stats(step_ms), "panels_ms": _stats(panels_ms)}


def measure_browser(url: str, steps: int, cli_s: float | None, notes: dict | None = None) -> dict:
    """Budgets 2 and 3 in one chromium page (1280x800)."""
    from playwright.sync_api import sync_playwright

    results: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(60_000)
            start = time.perf_counter()
            page.goto(url, timeout=60_000)
            page.get_by_role("button", name="Run", exact=True).wait_for(timeout=60_000)
            results["page_ready_s"] = round(time.perf_counter() - start, 2)
            # the page settled: the path preview (drawn on load, a 3D plot) shown, before Run is clicked
            page.wait_for_function("() => { %s return plotTitle('its cameras'); }" % _PLOT_TITLE_JS, timeout=60_000)
            results["page_settled_s"] = round(time.perf_counter() - start, 2)
            results["run"] = _attempt(lambda: measure_browser_run(page, steps, (notes or {}).get("run")))
            run = results["run"]
            shown = (run.get("after_click_s") or {}).get("done") or {}
            if None not in (shown.get("status_shown_s"), shown.get("plot_3d_shown_s")):
                done = max(shown["status_shown_s"], shown["plot_3d_shown_s"])
                run.update(done_s=done, budget_s=BROWSER_RUN_BUDGET_S, within_budget=done <= BROWSER_RUN_BUDGET_S)
            if cli_s and "wall_s" in run:
                run.update(cli_s=cli_s, ratio_to_cli=round(run["wall_s"] / cli_s, 2))
            results["drive"] = _attempt(lambda: measure_drive(page, spans=(notes or {}).get("drive")))
        finally:
            browser.close()
    return results


def _attempt(measure: Callable[[], dict]) -> dict:
    """A measurement's figures, or the error that stopped it (the other figures are still worth having)."""
    try:
        return measure()
    except Exception as error:  # noqa: BLE001
        return {"error": f"{type(error).__name__}: {error}"[:2000]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip the command line and the browser (budgets 2 and 3)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=256, choices=(128, 256))
    parser.add_argument("--out", type=Path, default=Path("runs/app_speed.json"))
    args = parser.parse_args(argv)
    if not args.quick and (args.steps, args.size) != (8, 256):
        parser.error("the browser runs the page's defaults (8 steps at 256 px): --steps and --size go with --quick")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the embedded models only
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    result = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine_info(),
              "rollout": {"world": "room", "trajectory": "loop", "steps": args.steps, "size": args.size},
              "load_average_at_start": _load()}
    if not args.quick:
        print("command line ...", flush=True)
        result["cli"] = _attempt(lambda: measure_cli(args.steps, args.size))
    print("panels ...", flush=True)
    result["panels"] = _attempt(lambda: measure_panels(args.steps, args.size))

    from mirage_viz.ui.app import build_demo, launch

    demo = build_demo()
    notes = time_handlers(demo)
    try:
        _, url, _ = launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
        print("payload ...", flush=True)
        result["payload"] = _attempt(lambda: measure_payload(url, args.steps, args.size))
        if not args.quick:
            print("browser ...", flush=True)
            cli_s = result["cli"].get("wall_s")
            result["browser"] = _attempt(lambda: measure_browser(url, args.steps, cli_s, notes))
            result["drive_server"] = _attempt(measure_drive_server)
    finally:
        demo.close()
        demo.mirage_sessions.shutdown()
    result["load_average_at_end"] = _load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    _summary(result)
    print(f"wrote {args.out}")
    return result


def _summary(result: dict) -> None:
    def line(name: str, figures: dict | None, text: Callable[[dict], str]) -> None:
        if not figures:
            return
        if "error" in figures:
            print(f"{name}: FAILED {figures['error'][:300]}")
            return
        mark = {True: " (within budget)", False: " (OVER BUDGET)", None: ""}[figures.get("within_budget")]
        print(f"{name}: {text(figures)}{mark}")

    print(f"{result['rollout']}; {result['machine']['cpu_count']} CPUs; load average {result['load_average_at_start']} "
          f"at the start, {result.get('load_average_at_end')} at the end")
    line("panels per step", result["panels"], lambda f: f"median {f['median_ms']} ms, max {f['max_ms']} ms, max after "
         f"the first call {f['max_after_the_first_call_ms']} ms (budget {f['budget_ms']:g} ms); the step view "
         f"{f['parts_ms']['step_view']['median']} ms of it")
    line("payload per step", result.get("payload"), lambda f: f"median {f['median_kb']} kB, max {f['max_kb']} kB "
         f"(budget {f['budget_kb']:g} kB); step view {f['kb_per_output_per_step']['step_view_html']['median']} kB, "
         f"3D {f['kb_per_output_per_step']['cache_plot']['median']} kB; the run through Gradio {f['run_s']:.1f} s")
    rollout_s = (result["panels"].get("rollout") or {}).get("total_s")
    line("command line", result.get("cli"), lambda f: f"{f['wall_s']} s (the rollout alone, in process: {rollout_s} s)")
    browser = result.get("browser") or {}
    if "error" in browser:
        line("browser", browser, str)
    line("browser Run to Done", browser.get("run"), lambda f: f"{f.get('done_s')} s (budget {BROWSER_RUN_BUDGET_S:g} s), "
         f"the downloads at {f['wall_s']} s, {f.get('ratio_to_cli')}x the command line; a step's status shows "
         f"{(f.get('yielded_to_status_shown_s') or {}).get('median')} s and its 3D plot "
         f"{(f.get('yielded_to_plot_3d_shown_s') or {}).get('median')} s after the server yielded it (medians); "
         f"CPU s: server {f['cpu_s']['server_process_s']}, browser {f['cpu_s']['browser_processes_s']}")
    line("drive press to its frames", browser.get("drive"), lambda f: f"median {f['median_s']} s, max {f['max_s']} s "
         f"(budget {f['budget_s']:g} s at the median); the handler {(f.get('handler_s') or {}).get('median')} s, then "
         f"the status {(f.get('handler_end_to_status_s') or {}).get('median')} s later; the last key to its 3D caches "
         f"(the pause included) {f.get('last_key_to_plot_3d_s')} s")

if __name__ == "__main__":
    main()
