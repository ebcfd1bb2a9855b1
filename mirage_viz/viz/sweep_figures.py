"""Pictures of a sweep's summary (:func:`mirage_viz.sweep.summary.summarize`): what holds, with its intervals.

Each function takes the summary table (one row per setting x memory, and the ``latent - rgb`` / ``latent - none``
paired differences) and returns a plotly figure; :func:`sweep_figures` gives all four with their titles. Error
bars are 95% intervals over the replicates (worlds, world seeds and seeds).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["MEMORY_COLORS", "difference_figure", "holes_figure", "revisit_figure", "sweep_figures", "timing_figure"]

MEMORY_COLORS = {"latent": "#1f77b4", "rgb": "#d62728", "none": "#7f7f7f", "latent - rgb": "#9467bd",
                 "latent - none": "#2ca02c"}
_FONT = dict(size=13)
_MEMORIES = ("latent", "rgb", "none")


def _layout(figure: go.Figure, title: str, height: int = 440) -> go.Figure:
    figure.update_layout(title=dict(text=title, x=0.01, font=dict(size=15)), height=height, font=_FONT,
                         margin=dict(l=60, r=20, t=105, b=40),
                         legend=dict(orientation="h", y=1.09, x=1.0, xanchor="right", yanchor="bottom"),
                         template="plotly_white")
    return figure


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
    |d - d_true| / d_true), one panel per returning path."""
    returning = summary[summary["memory"].isin(_MEMORIES) & summary["revisit_psnr"].notna()]
    paths = list(dict.fromkeys(returning["trajectory"]))
    labels = _depth_labels(summary)
    figure = make_subplots(rows=1, cols=max(len(paths), 1), subplot_titles=[f"path: {p}" for p in paths],
                           shared_yaxes=True, horizontal_spacing=0.05)
    for column, path in enumerate(paths, start=1):
        for memory in _MEMORIES:
            rows = returning[(returning["trajectory"] == path) & (returning["memory"] == memory)]
            rows = rows.groupby("depth", sort=False)[["revisit_psnr", "revisit_psnr_ci"]].mean().reindex(list(labels))
            rows = rows.dropna(subset=["revisit_psnr"])
            figure.add_trace(go.Scatter(
                x=[labels[d] for d in rows.index], y=rows["revisit_psnr"], mode="lines+markers", name=memory,
                error_y=dict(type="data", array=rows["revisit_psnr_ci"], visible=True), legendgroup=memory,
                showlegend=column == 1, line=dict(color=MEMORY_COLORS[memory]), marker=dict(size=8)),
                row=1, col=column)
        figure.update_xaxes(type="category", row=1, col=column)
    figure.update_yaxes(title_text="return frame PSNR (dB)", row=1, col=1)
    return _layout(figure, "Return frame PSNR per memory, as depth gets worse (left to right)")


def difference_figure(summary: pd.DataFrame) -> go.Figure:
    """Latent minus RGB and latent minus none on the return frame (per run, paired), with 95% intervals, one panel
    per returning path."""
    pairs = summary[summary["memory"].isin(["latent - rgb", "latent - none"]) & summary["revisit_psnr"].notna()]
    paths = list(dict.fromkeys(pairs["trajectory"]))
    labels = _depth_labels(summary)
    figure = make_subplots(rows=1, cols=max(len(paths), 1), subplot_titles=[f"path: {p}" for p in paths],
                           shared_yaxes=True, horizontal_spacing=0.05)
    for column, path in enumerate(paths, start=1):
        for pair in ("latent - rgb", "latent - none"):
            rows = pairs[(pairs["memory"] == pair) & (pairs["trajectory"] == path)].set_index("depth")
            rows = rows.reindex(list(labels)).dropna(subset=["revisit_psnr"])
            figure.add_trace(go.Bar(
                x=[labels[d] for d in rows.index], y=rows["revisit_psnr"], name=pair, legendgroup=pair,
                showlegend=column == 1, marker=dict(color=MEMORY_COLORS[pair]),
                error_y=dict(type="data", array=rows["revisit_psnr_ci"], visible=True)), row=1, col=column)
        figure.update_xaxes(type="category", row=1, col=column)
    figure.add_hline(y=0, line=dict(color="black", width=1))
    figure.update_layout(barmode="group")
    figure.update_yaxes(title_text="PSNR difference (dB)", row=1, col=1)
    return _layout(figure, "Return frame: latent minus RGB, latent minus none (above 0: latent better)")


def holes_figure(summary: pd.DataFrame) -> go.Figure:
    """The hole rate of what memory hands the generator (1 - cells covered), per size and depth mode."""
    rows = summary[summary["memory"].isin(["latent", "rgb"])]
    rows = rows.groupby(["memory", "depth_mode", "size"], sort=False)["hole_rate"].mean().reset_index()
    figure = go.Figure()
    for (memory, mode), group in rows.groupby(["memory", "depth_mode"], sort=False):
        figure.add_trace(go.Bar(x=[f"{s} px" for s in group["size"]], y=group["hole_rate"],
                                name=f"{memory}, depth {mode}", marker=dict(color=MEMORY_COLORS[memory]),
                                text=[f"{v:.1%}" for v in group["hole_rate"]], textposition="outside", cliponaxis=False))
    figure.update_layout(barmode="group", xaxis=dict(title="size", type="category"),
                         yaxis=dict(title="hole rate (generated steps)", tickformat=".0%", rangemode="tozero"))
    return _layout(figure, "Holes in what memory hands the generator, per size and depth mode")


def timing_figure(summary: pd.DataFrame) -> go.Figure:
    """Median memory read and whole-step time per memory against size."""
    rows = summary[summary["memory"].isin(_MEMORIES)]
    rows = rows.groupby(["memory", "size"], sort=False)[["read_ms", "step_ms"]].median().reset_index()
    figure = make_subplots(rows=1, cols=2, subplot_titles=["memory read (log scale)", "whole step"],
                           horizontal_spacing=0.12)
    for memory, group in rows.groupby("memory", sort=False):
        for column, value in ((1, "read_ms"), (2, "step_ms")):
            figure.add_trace(go.Bar(x=[f"{s} px" for s in group["size"]], y=group[value], name=memory,
                                    legendgroup=memory, showlegend=column == 1, marker=dict(color=MEMORY_COLORS[memory]),
                                    text=[f"{v:.3g}" for v in group[value]], textposition="outside", cliponaxis=False),
                           row=1, col=column)
    figure.update_layout(barmode="group")
    figure.update_xaxes(type="category")
    figure.update_yaxes(title_text="median ms", type="log", dtick=1, row=1, col=1)
    figure.update_yaxes(title_text="median ms", rangemode="tozero", row=1, col=2)
    return _layout(figure, "Read and step time per size (medians over runs, wall clock on the sweep's machine)")


def sweep_figures(summary: pd.DataFrame) -> list[tuple[str, go.Figure]]:
    """All four pictures of a sweep, titled."""
    return [("revisit", revisit_figure(summary)), ("latent minus rgb", difference_figure(summary)),
            ("holes", holes_figure(summary)), ("timing", timing_figure(summary))]
