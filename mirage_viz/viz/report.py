"""``report.html``: a rollout on one self-contained page that opens offline.

The page holds what the app shows, for every step: the step view (:mod:`mirage_viz.viz.step_view`, images as
WebP data), the caches in 3D (:func:`mirage_viz.viz.figures.cache_figure`) and the charts over steps
(:func:`mirage_viz.viz.figures.metrics_figure`), with a slider and the arrow keys to move between steps.
plotly.js is inlined (about 4.6 MB), so nothing is fetched from the network.
"""

from __future__ import annotations

import html
import json
import math

import torch

import plotly.io as pio
from plotly.offline import get_plotlyjs

from mirage_viz.rollout.records import Rollout
from mirage_viz.rollout.trace import steps_of_points, trace_step
from mirage_viz.viz.figures import cache_figure, metrics_figure, rollout_pca
from mirage_viz.viz.pca import PCABasis
from mirage_viz.viz.step_view import StepView, step_view, step_view_html

__all__ = ["REPORT_MAX_POINTS", "rollout_report_html"]

REPORT_MAX_POINTS = 6_000  # latent points per step's 3D view: every step's figure is in the page

_STYLE = """<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;padding:16px 24px;max-width:1500px;
 color:#1d1d22;background:#fafafa}
h1{font-size:22px;margin:4px 0 6px}h2{font-size:18px;margin:22px 0 8px}
.mv-meta{font-size:14px;opacity:.85;margin:0 0 10px}
table.mv-table{border-collapse:collapse;font-size:14px}
table.mv-table th,table.mv-table td{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}
table.mv-table th:first-child,table.mv-table td:first-child{text-align:left}
.mv-controls{position:sticky;top:0;z-index:5;background:#fafafa;padding:8px 0;display:flex;gap:10px;align-items:center;
 font-size:15px;border-bottom:1px solid #ddd}
.mv-controls input[type=range]{flex:1;max-width:600px}
.mv-controls button{font-size:14px;padding:3px 10px}
.mv-plot{width:100%;min-height:420px;background:#fff}
.mv-step img{cursor:crosshair}
#mv-trace{font-size:15px;line-height:1.45;background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 14px;
 min-height:48px}
</style>"""

_SCRIPT = """<script>
(function () {
  const figures = JSON.parse(document.getElementById("mv-cache-figures").textContent);
  const steps = Array.from(document.querySelectorAll(".mv-step"));
  const slider = document.getElementById("mv-step");
  const label = document.getElementById("mv-step-label");
  const cache = document.getElementById("mv-cache");
  function show(step) {
    step = Math.max(0, Math.min(steps.length - 1, step));
    slider.value = step;
    label.textContent = "Step " + step + " of " + (steps.length - 1);
    steps.forEach(function (view, index) { view.hidden = index !== step; });
    Plotly.react(cache, figures[step].data, figures[step].layout, {responsive: true});
  }
  slider.addEventListener("input", function () { show(Number(slider.value)); });
  document.getElementById("mv-previous").addEventListener("click", function () { show(Number(slider.value) - 1); });
  document.getElementById("mv-next").addEventListener("click", function () { show(Number(slider.value) + 1); });
  document.addEventListener("keydown", function (event) {
    if (event.target === slider) return;  // the slider moves itself with the arrow keys
    if (event.key === "ArrowLeft") show(Number(slider.value) - 1);
    if (event.key === "ArrowRight") show(Number(slider.value) + 1);
  });
  const traces = JSON.parse(document.getElementById("mv-traces").textContent);
  const answer = document.getElementById("mv-trace");
  function traceClick(event) {  // a click on any picture of the step view: the cell under it, from the engine's trace
    const step = Number(slider.value), table = traces[step];
    if (!table) { answer.textContent = "Nothing to trace at step " + step + ": step 0 is the given first frame, which " +
      "read no memory, and only a flat latent memory's cells are traced here."; return; }
    const box = event.target.getBoundingClientRect();
    const row = Math.min(table.rows - 1, Math.floor((event.clientY - box.top) / box.height * table.rows));
    const col = Math.min(table.cols - 1, Math.floor((event.clientX - box.left) / box.width * table.cols));
    const cell = row * table.cols + col, lines = [];
    if (table.latent) {
      const t = table.latent, n = t.landed[cell];
      if (t.owner[cell] < 0) lines.push("latent memory: a hole, no cached point landed in this cell.");
      else lines.push("latent memory: from step " + t.owner[cell] + ", at depth " + t.depth[cell].toFixed(2) +
        " m; " + n + " point" + (n === 1 ? "" : "s") + " landed here" + (n === 1 ? "" : t.ties[cell] ?
        ": they tied within the z-test's tolerance and the earliest written won" : ": the nearest won") + ".");
    }
    if (table.rgb) {
      const t = table.rgb, covered = t.covered[cell];
      lines.push("rgb memory: " + covered + " of " + t.pixels + " pixels of this cell covered" +
        (covered ? ", most from step " + t.owner[cell] : "") + ".");
    }
    answer.innerHTML = "";
    const head = document.createElement("b");
    head.textContent = "Step " + step + ", latent cell (" + row + ", " + col + ")";
    answer.appendChild(head);
    lines.forEach(function (line) { const p = document.createElement("div"); p.textContent = line; answer.appendChild(p); });
  }
  document.querySelectorAll(".mv-step img").forEach(function (image) { image.addEventListener("click", traceClick); });
  Plotly.newPlot("mv-metrics", figures.metrics.data, figures.metrics.layout, {responsive: true});
  show(steps.length - 1);
})();
</script>"""


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def _number(value: float | None, digits: int, unit: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{unit}"


def _summary_table(rollout: Rollout) -> str:
    """Per memory: mean PSNR / SSIM over generated steps, the means of the scores that need no truth, the last cache,
    mean read and step times."""
    header = ["memory", "mean PSNR", "mean SSIM", "camera off (no truth)", "reprojection (no truth)",
              "flow agrees (no truth)", "cells covered", "cache points", "cache MB", "read ms", "step ms"]
    rows = []
    for name, records in rollout.records.items():
        generated, last, free = records[1:], records[-1], rollout.consistency_means(name)
        rows.append([
            f"{name} memory", _number(_mean([r.psnr for r in generated]), 2, " dB"), _number(_mean([r.ssim for r in generated]), 3),
            _number(free["camera_rotation_error_deg"], 2, "°"), _number(free["reprojection_error"], 4),
            _number(None if free["flow_agreement"] is None else 100 * free["flow_agreement"], 0, " %"),
            _number(_mean([r.mask_coverage * 100 for r in generated]), 0, " %"), f"{last.cache_points:,}",
            _number(last.cache_bytes / 1e6, 2), _number(_mean([r.timings_ms["read"] for r in generated]), 1),
            _number(_mean([sum(r.timings_ms.values()) for r in generated]), 0),
        ])
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="mv-table"><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>'


def _describe(rollout: Rollout) -> str:
    setup = rollout.setup
    start = (f"footage {setup.sequence}" if setup.sequence else f"photo {setup.photo}" if setup.photo
             else f"world {setup.world} (seed {setup.world_seed})")
    parts = [start, f"trajectory {setup.trajectory}", f"{len(rollout) - 1} of {setup.steps} steps",
             f"{setup.size} px", f"field of view {setup.fov_degrees:.4g} degrees ({setup.fov_source})",
             f"seed {rollout.config.seed}",
             f"depth {setup.depth_source}" + (f" with errors {setup.depth_errors}" if setup.depth_errors else ""), f"backbone {rollout.backbone_name}"]
    return ", ".join(parts)


def _json_for_script(members: list[str]) -> str:
    """An object of JSON ``members`` ('"key":value'), safe inside a ``<script>`` element (no ``</`` to close it)."""
    return ("{" + ",".join(members) + "}").replace("</", "<\\/")


def _trace_tables(rollout: Rollout) -> list[str]:
    """Per step that read memory, every latent cell's answer to a click (:func:`~mirage_viz.rollout.trace.trace_step`):
    the latent memory's winner step, depth, points landed and ties; the RGB memory's covered pixels under the cell and
    the step most of them came from (its winners, :attr:`StepRecord.source`). JSON members '"step":{...}'; none
    without a flat latent memory."""
    members = []
    for step in range(1, len(rollout)):
        table: dict[str, object] = {}
        try:
            trace = trace_step(rollout, "latent", step)
        except ValueError:  # no latent memory kept, or a fused one: no latent grid to answer on
            continue
        rows, cols = trace.owner.shape
        table.update(rows=rows, cols=cols, latent={
            "owner": trace.owner.flatten().tolist(), "landed": trace.landed.flatten().tolist(),
            "depth": [round(v, 3) for v in trace.depth.flatten().tolist()], "ties": trace.ties.flatten().int().tolist()})
        source = rollout.records["rgb"][step].source if "rgb" in rollout.records else None
        if source is not None:  # (H, W) the RGB read's winners: the step of each, summarised per latent cell
            owner = steps_of_points(rollout, "rgb", step, source)  # (H, W), -1 in holes
            height, width = owner.shape
            blocks = owner.reshape(rows, height // rows, cols, width // cols).permute(0, 2, 1, 3).reshape(rows, cols, -1)
            cell = torch.arange(rows * cols)[:, None].expand(-1, blocks.shape[-1])  # (cells, pixels per cell)
            votes = torch.bincount((cell * (step + 1) + blocks.reshape(rows * cols, -1) + 1).flatten(),
                                   minlength=rows * cols * (step + 1)).reshape(rows * cols, step + 1)[:, 1:]  # no holes
            table["rgb"] = {"pixels": blocks.shape[-1], "covered": (blocks >= 0).sum(-1).flatten().tolist(),
                            "owner": votes.argmax(-1).tolist()}  # the step most covered pixels came from
        members.append(f'"{step}":{json.dumps(table, separators=(",", ":"))}')
    return members


def rollout_report_html(rollout: Rollout, basis: PCABasis | None = None, max_points: int = REPORT_MAX_POINTS,
                        views: list[StepView] | None = None) -> str:
    """The whole page for ``rollout``: a slider over its steps (step view and 3D caches) and the charts."""
    if len(rollout) == 0:
        raise ValueError("the rollout has no steps yet; nothing to report")
    basis = basis or rollout_pca(rollout)
    last = len(rollout) - 1
    views = views or [step_view(rollout, step, basis) for step in range(last + 1)]  # one per step, given or built
    views = "".join(f'<div class="mv-step" data-step="{step}"{"" if step == last else " hidden"}>'
                    f"{step_view_html(view)}</div>" for step, view in enumerate(views))
    figures = [f'"{step}":{pio.to_json(cache_figure(rollout, step, basis, max_points), validate=False)}'
               for step in range(last + 1)]  # plotly's JSON: numpy arrays as base64 typed arrays
    figures.append(f'"metrics":{pio.to_json(metrics_figure(rollout), validate=False)}')
    notices = "".join(f'<p class="mv-meta">Note: {html.escape(n)}</p>' for n in rollout.notices)
    return "".join([
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>mirage_viz rollout report</title>", _STYLE,
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>',
        "<h1>mirage_viz: latent vs RGB vs no memory</h1>",
        f'<p class="mv-meta">{html.escape(_describe(rollout))}. OpenCV cameras (x right, y down, z forward).</p>',
        notices, _summary_table(rollout),
        '<div class="mv-controls"><button id="mv-previous" type="button">&larr; previous</button>',
        f'<input id="mv-step" type="range" min="0" max="{last}" step="1" value="{last}" aria-label="step">',
        '<button id="mv-next" type="button">next &rarr;</button>',
        f'<span id="mv-step-label">Step {last} of {last}</span></div>',
        "<h2>What each memory made of the step</h2>", views,
        "<h2>Trace a cell</h2>", '<div id="mv-trace">Click any picture above: where that piece of each memory came '
        "from, and how many points competed for it.</div>",
        "<h2>The caches in 3D (drag to turn, scroll to zoom)</h2>", '<div id="mv-cache" class="mv-plot"></div>',
        "<h2>Over the steps</h2>", '<div id="mv-metrics" class="mv-plot"></div>',
        f'<script type="application/json" id="mv-cache-figures">{_json_for_script(figures)}</script>',
        f'<script type="application/json" id="mv-traces">{_json_for_script(_trace_tables(rollout))}</script>',
        _SCRIPT, "</body></html>",
    ])
