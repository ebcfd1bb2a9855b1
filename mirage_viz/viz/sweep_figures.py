"""Pictures of a sweep's summary (:func:`mirage_viz.sweep.summary.summarize`): what holds, with its intervals.

Each function takes the summary table (one row per setting x memory, and the ``latent - rgb`` / ``latent - none``
paired differences) and returns a plotly figure; :func:`sweep_figures` gives all four with their titles. Error
bars are 95% intervals over the replicates (worlds, world seeds and seeds). A summary of several memory settings
shows them side by side: a row of panels per setting (revisit, differences, on one PSNR scale) or a group of bars
per setting (holes, timing), each chart with one legend.
"""

from __future__ import annotations

import textwrap

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["MEMORY_COLORS", "difference_figure", "holes_figure", "revisit_figure", "sweep_figures", "timing_figure"]

MEMORY_COLORS = {"latent": "#1f77b4", "rgb": "#d62728", "none": "#7f7f7f", "latent - rgb": "#9467bd",
                 "latent - none": "#2ca02c"}
_FONT = dict(size=13)
_MEMORIES = ("latent", "rgb", "none")


def _layout(figure: go.Figure, title: str, height: int = 440) -> go.Figure:
    above = 26.5 / (height - 145)  # the legend's gap over the panels, 26.5 px, in the plot area's height (less margins)
    figure.update_layout(title=dict(text=title, x=0.01, font=dict(size=15)), height=height, font=_FONT,
                         margin=dict(l=60, r=20, t=105, b=40),
                         legend=dict(orientation="h", y=1 + above, x=1.0, xanchor="right", yanchor="bottom"),
                         template="plotly_white")
    return figure


def _settings(summary: pd.DataFrame) -> list[str | None]:
    """The summary's memory settings in order, or ``[None]`` for one (or none recorded): one panel row, as before."""
    settings = list(dict.fromkeys(summary["memory_setting"])) if "memory_setting" in summary else []
    return settings if len(settings) > 1 else [None]


def _of_setting(rows: pd.DataFrame, setting: str | None) -> pd.DataFrame:
    return rows if setting is None else rows[rows["memory_setting"] == setting]


def _wrap(text: str, width: int = 16) -> str:
    """A setting's name on lines of about ``width`` characters, for a category label."""
    return "<br>".join(textwrap.wrap(text, width))


def _panels(paths: list[str], settings: list[str | None]) -> tuple[go.Figure, int]:
    """A panel per setting (rows) x returning path (columns) on one shared y scale, and the figure's height (px)."""
    titles = [f"path: {p}" if s is None else f"setting: {s}, path: {p}" for s in settings for p in paths]
    figure = make_subplots(rows=len(settings), cols=max(len(paths), 1), subplot_titles=titles, shared_yaxes="all",
                           shared_xaxes=len(settings) > 1, horizontal_spacing=0.05,
                           vertical_spacing=min(0.12, 0.6 / len(settings)) if len(settings) > 1 else 0.3)
    return figure, 440 if len(settings) == 1 else 120 + 300 * len(settings)


def _depth_order(summary: pd.DataFrame) -> list[str]:
    """Depth qualities from the least to the most depth error (as measured)."""
    error = summary[summary["memory"].isin(_MEMORIES)].groupby("depth", sort=False)["depth_abs_rel"].mean()
    return list(error.sort_values(kind="stable").index)


def _depth_labels(summary: pd.DataFrame) -> dict[str, str]:
    """Each depth quality with its measured error, for a category axis ordered by that error."""
    error = summary[summary["memory"] == "latent"].groupby("depth", sort=False)["depth_abs_rel"].mean()
    return {depth: f"{depth}<br>error {error.get(depth, float('nan')):.2f}" for depth in _depth_order(summary)}


def revisit_figure(summary: pd.DataFrame) -> go.Figure:
    """The return frame's PSNR per memory against the depth quality (ordered by its measured error, mean
    |d - d_true| / d_true), one panel per returning path (and per memory setting, in rows, when there are several)."""
    returning = summary[summary["memory"].isin(_MEMORIES) & summary["revisit_psnr"].notna()]
    paths = list(dict.fromkeys(returning["trajectory"]))
    labels = _depth_labels(summary)
    settings = _settings(summary)
    figure, height = _panels(paths, settings)
    for row, setting in enumerate(settings, start=1):
        for column, path in enumerate(paths, start=1):
            for memory in _MEMORIES:
                rows = _of_setting(returning, setting)
                rows = rows[(rows["trajectory"] == path) & (rows["memory"] == memory)]
                rows = rows.groupby("depth", sort=False)[["revisit_psnr", "revisit_psnr_ci"]].mean()
                rows = rows.reindex(list(labels)).dropna(subset=["revisit_psnr"])
                figure.add_trace(go.Scatter(
                    x=[labels[d] for d in rows.index], y=rows["revisit_psnr"], mode="lines+markers", name=memory,
                    error_y=dict(type="data", array=rows["revisit_psnr_ci"], visible=True), legendgroup=memory,
                    showlegend=row == column == 1, line=dict(color=MEMORY_COLORS[memory]), marker=dict(size=8)),
                    row=row, col=column)
            figure.update_xaxes(type="category", row=row, col=column)
        figure.update_yaxes(title_text="return frame PSNR (dB)", row=row, col=1)
    return _layout(figure, "Return frame PSNR per memory, as depth gets worse (left to right)", height)


def difference_figure(summary: pd.DataFrame) -> go.Figure:
    """Latent minus RGB and latent minus none on the return frame (per run, paired), with 95% intervals, one panel
    per returning path (and per memory setting, in rows, when there are several)."""
    pairs = summary[summary["memory"].isin(["latent - rgb", "latent - none"]) & summary["revisit_psnr"].notna()]
    paths = list(dict.fromkeys(pairs["trajectory"]))
    labels = _depth_labels(summary)
    settings = _settings(summary)
    figure, height = _panels(paths, settings)
    for row, setting in enumerate(settings, start=1):
        for column, path in enumerate(paths, start=1):
            for pair in ("latent - rgb", "latent - none"):
                rows = _of_setting(pairs, setting)
                rows = rows[(rows["memory"] == pair) & (rows["trajectory"] == path)]
                rows = rows.groupby("depth", sort=False)[["revisit_psnr", "revisit_psnr_ci"]].mean()
                rows = rows.reindex(list(labels)).dropna(subset=["revisit_psnr"])
                figure.add_trace(go.Bar(
                    x=[labels[d] for d in rows.index], y=rows["revisit_psnr"], name=pair, legendgroup=pair,
                    showlegend=row == column == 1, marker=dict(color=MEMORY_COLORS[pair]),
                    error_y=dict(type="data", array=rows["revisit_psnr_ci"], visible=True)), row=row, col=column)
            figure.update_xaxes(type="category", row=row, col=column)
        figure.update_yaxes(title_text="PSNR difference (dB)", row=row, col=1)
    figure.add_hline(y=0, line=dict(color="black", width=1))
    figure.update_layout(barmode="group")
    return _layout(figure, "Return frame: latent minus RGB, latent minus none (above 0: latent better)", height)


def holes_figure(summary: pd.DataFrame) -> go.Figure:
    """The hole rate of what memory hands the generator (1 - cells covered), per size and depth mode (and memory
    setting, a group of bars each, when there are several: a setting may set its own depth mode)."""
    rows = summary[summary["memory"].isin(["latent", "rgb"])]
    if _settings(summary) == [None]:
        rows = rows.groupby(["memory", "depth_mode", "size"], sort=False)["hole_rate"].mean().reset_index()
        traces = [(f"{memory}, depth {mode}", memory, [f"{s} px" for s in group["size"]], group)
                  for (memory, mode), group in rows.groupby(["memory", "depth_mode"], sort=False)]
        axis = "size"
    else:
        keys = ["memory", "memory_setting", "depth_mode", "size"]
        rows = rows.groupby(keys, sort=False)["hole_rate"].mean().reset_index()
        traces = [(memory, memory, [f"{_wrap(r.memory_setting)}<br>{r.size} px, depth {r.depth_mode}"
                                    for r in group.itertuples()], group)
                  for memory, group in rows.groupby("memory", sort=False)]
        axis = "memory setting, size, depth mode"
    figure = go.Figure()
    for name, memory, x, group in traces:
        figure.add_trace(go.Bar(x=x, y=group["hole_rate"], name=name, marker=dict(color=MEMORY_COLORS[memory]),
                                text=[f"{v:.1%}" for v in group["hole_rate"]], textposition="outside", cliponaxis=False))
    figure.update_layout(barmode="group", xaxis=dict(title=axis, type="category"),
                         yaxis=dict(title="hole rate (generated steps)", tickformat=".0%", rangemode="tozero"))
    return _layout(figure, "Holes in what memory hands the generator, per size and depth mode")


def timing_figure(summary: pd.DataFrame) -> go.Figure:
    """Median memory read and whole-step time per memory against size (and memory setting, a group of bars each,
    when there are several)."""
    rows = summary[summary["memory"].isin(_MEMORIES)]
    several = _settings(summary) != [None]
    keys = ["memory", "memory_setting", "size"] if several else ["memory", "size"]
    rows = rows.groupby(keys, sort=False)[["read_ms", "step_ms"]].median().reset_index()
    figure = make_subplots(rows=1, cols=2, subplot_titles=["memory read (log scale)", "whole step"],
                           horizontal_spacing=0.12)
    for memory, group in rows.groupby("memory", sort=False):
        x = ([f"{_wrap(r.memory_setting)}<br>{r.size} px" for r in group.itertuples()] if several
             else [f"{s} px" for s in group["size"]])
        for column, value in ((1, "read_ms"), (2, "step_ms")):
            figure.add_trace(go.Bar(x=x, y=group[value], name=memory,
                                    legendgroup=memory, showlegend=column == 1, marker=dict(color=MEMORY_COLORS[memory]),
                                    text=[f"{v:.3g}" for v in group[value]], textposition="outside", cliponaxis=False),
                           row=1, col=column)
    figure.update_layout(barmode="group")
    figure.update_xaxes(type="category")
    figure.update_yaxes(title_text="median ms", type="log", dtick=1, row=1, col=1)
    figure.update_yaxes(title_text="median ms", rangemode="tozero", row=1, col=2)
    return _layout(figure, "Read and step time per size (medians over runs, wall clock on the sweep's machine)",
                   520 if several else 440)


def sweep_figures(summary: pd.DataFrame) -> list[tuple[str, go.Figure]]:
    """All four pictures of a sweep, titled."""
    return [("revisit", revisit_figure(summary)), ("latent minus rgb", difference_figure(summary)),
            ("holes", holes_figure(summary)), ("timing", timing_figure(summary))]
