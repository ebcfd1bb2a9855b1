"""From the tidy table to what a sweep finds: scores per run, then means with 95% intervals per setting.

:func:`run_scores` reduces each run x memory to its scores (the return frame's PSNR and SSIM, the mean PSNR and
sharpness over generated steps, the hole rate, read and step time, the depth error). :func:`summarize` groups runs
that differ only in world, world seed and seed (the replicates) and gives each setting x memory its mean and the
half-width of a 95% Student-t interval; the rows ``latent - rgb`` and ``latent - none`` are paired differences per run, so a
difference that the interval keeps away from 0 holds across the replicates.
"""

from __future__ import annotations

import math

import pandas as pd
import pyarrow as pa

__all__ = ["SETTING_COLUMNS", "SUMMARY_COLUMNS", "run_scores", "summarize", "t_interval"]

# what a summary row is about (depth_mode: the one that ran, a memory setting's own where it sets one)
# the scores that need no truth, as means over generated steps (mirage_viz.consistency)
FREE_COLUMNS = ["camera_rotation_error_deg", "reprojection_error", "flow_agreement"]
SETTING_COLUMNS = ["trajectory", "steps", "size", "depth", "depth_mode", "memory_setting"]
REPLICATE_COLUMNS = ["world", "world_seed", "seed"]  # what varies within one
SUMMARY_COLUMNS = [*SETTING_COLUMNS, "memory", "runs", "revisit_psnr", "revisit_psnr_ci", "revisit_ssim", "mean_psnr",
                   "mean_psnr_ci", "sharpness_mean_abs", *FREE_COLUMNS, "hole_rate", "read_ms", "step_ms", "depth_abs_rel"]
PAIRS = (("latent", "rgb"), ("latent", "none"))

# two-sided 95% Student-t quantiles by degrees of freedom (scipy.stats.t.ppf(0.975, df)); above 30, interpolated
# in 1/df towards the normal quantile 1.95996
_T95 = [12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604,
        2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555,
        2.0518, 2.0484, 2.0452, 2.0423]


def _t95(df: int) -> float:
    if df <= len(_T95):
        return _T95[df - 1]
    return 1.95996 + (_T95[-1] - 1.95996) * len(_T95) / df


def t_interval(values: pd.Series) -> float:
    """Half-width of the 95% interval of the mean of ``values`` (NaN for fewer than two)."""
    values = values.dropna()
    if len(values) < 2:
        return math.nan
    return _t95(len(values) - 1) * float(values.std(ddof=1)) / math.sqrt(len(values))


def run_scores(table: pa.Table) -> pd.DataFrame:
    """One row per run x memory: ``revisit_psnr`` / ``revisit_ssim`` (the return frame; NaN for a path that does
    not return), ``mean_psnr`` and ``sharpness_mean_abs`` over generated steps (NaN without truth), the truth-free
    scores' means (:data:`FREE_COLUMNS`), ``hole_rate``
    (1 - cells covered, generated steps), median ``read_ms`` and ``step_ms`` of generated steps, mean
    ``depth_abs_rel`` over all steps."""
    rows = table.to_pandas()
    keys = ["run_id", *REPLICATE_COLUMNS, *SETTING_COLUMNS, "memory"]
    generated = rows[rows["step"] > 0]
    scores = generated.groupby(keys, sort=False).agg(
        mean_psnr=("psnr", "mean"), sharpness_mean_abs=("sharpness_mean_abs", "mean"),
        **{column: (column, "mean") for column in FREE_COLUMNS},
        hole_rate=("mask_coverage", lambda c: 1.0 - c.mean()), read_ms=("read_ms", "median"),
        step_ms=("step_ms", "median"))
    depth = rows.groupby(keys, sort=False)["depth_abs_rel"].mean().rename("depth_abs_rel")
    revisit = rows[rows["revisit"]].set_index(keys)[["psnr", "ssim"]].rename(
        columns={"psnr": "revisit_psnr", "ssim": "revisit_ssim"})
    return scores.join(depth).join(revisit).reset_index()


def summarize(table: pa.Table) -> pd.DataFrame:
    """One row per setting x memory (and per setting x pair of memories): means over the replicates with 95%
    intervals, in the columns :data:`SUMMARY_COLUMNS`."""
    scores = run_scores(table)
    if scores.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    out = []
    for keys, group in scores.groupby([*SETTING_COLUMNS, "memory"], sort=False):
        out.append({**dict(zip([*SETTING_COLUMNS, "memory"], keys)), "runs": len(group),
                    "revisit_psnr": group["revisit_psnr"].mean(), "revisit_psnr_ci": t_interval(group["revisit_psnr"]),
                    "revisit_ssim": group["revisit_ssim"].mean(), "mean_psnr": group["mean_psnr"].mean(),
                    "mean_psnr_ci": t_interval(group["mean_psnr"]),
                    "sharpness_mean_abs": group["sharpness_mean_abs"].mean(),
                    **{column: group[column].mean() for column in FREE_COLUMNS}, "hole_rate": group["hole_rate"].mean(),
                    "read_ms": group["read_ms"].median(), "step_ms": group["step_ms"].median(),
                    "depth_abs_rel": group["depth_abs_rel"].mean()})
    wide = scores.set_index(["run_id", *SETTING_COLUMNS, "memory"])[["revisit_psnr", "mean_psnr", "depth_abs_rel"]]
    wide = wide.unstack("memory")  # one row per run: its memories side by side
    for a, b in PAIRS:
        if a not in scores["memory"].values or b not in scores["memory"].values:
            continue
        difference = pd.DataFrame({
            "revisit_psnr": wide[("revisit_psnr", a)] - wide[("revisit_psnr", b)],
            "mean_psnr": wide[("mean_psnr", a)] - wide[("mean_psnr", b)],
            "depth_abs_rel": wide[("depth_abs_rel", a)]}).reset_index()
        for keys, group in difference.groupby(SETTING_COLUMNS, sort=False):
            out.append({**dict(zip(SETTING_COLUMNS, keys)), "memory": f"{a} - {b}", "runs": len(group),
                        "revisit_psnr": group["revisit_psnr"].mean(), "revisit_psnr_ci": t_interval(group["revisit_psnr"]),
                        "revisit_ssim": math.nan, "mean_psnr": group["mean_psnr"].mean(),
                        "mean_psnr_ci": t_interval(group["mean_psnr"]), "sharpness_mean_abs": math.nan,
                        **dict.fromkeys(FREE_COLUMNS, math.nan),
                        "hole_rate": math.nan, "read_ms": math.nan, "step_ms": math.nan,
                        "depth_abs_rel": group["depth_abs_rel"].mean()})
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)
