"""A benchmark result as a markdown report and a plotly figure; reading and writing ``bench.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["Headline", "bench_figure", "bench_headlines", "bench_markdown", "headline_table", "load_bench",
           "memory_settings_markdown", "memory_settings_targets_markdown", "targets_markdown", "write_bench"]

_COLORS = {"latent": "#1f77b4", "rgb": "#d62728", "none": "#7f7f7f"}
_MEMORY_LABELS = {"latent": "latent memory", "rgb": "RGB memory", "none": "no memory"}
_VAE_LABELS = {"embedded": "embedded VAE", "sd": "SD-layout VAE"}


def load_bench(path: str | Path) -> dict:
    """Read a ``bench.json`` written by ``mirage-viz bench``; a clear error for anything else."""
    from mirage_viz.inputs import read_json_file
    from mirage_viz.bench.run import BENCH_FORMAT

    data = read_json_file(path, "benchmark")
    if not isinstance(data, dict) or data.get("format") != BENCH_FORMAT:
        raise ValueError(f"{path} is not a mirage_viz benchmark (expected \"format\": \"{BENCH_FORMAT}\")")
    return data


def write_bench(result: dict, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write ``bench.json``, ``bench.md`` and ``bench.html`` (the plot) into ``out_dir``, all or nothing."""
    from mirage_viz.outputs.folder import atomic_output_dir

    with atomic_output_dir(out_dir, overwrite, written_by="mirage-viz bench") as staging:
        (staging / "bench.json").write_text(json.dumps(result, indent=1))
        (staging / "bench.md").write_text(bench_markdown(result))
        bench_figure(result).write_html(staging / "bench.html", include_plotlyjs=True, full_html=True)
    return Path(out_dir)


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _fmt_against(value: float | None, bar: float) -> str:
    """``value`` with two decimals, or as many more (up to four) as it takes not to print the bar itself (0.851 against
    a bar of 0.85 reads 0.851, 0.8496 reads 0.8496)."""
    digits = 2
    while value is not None and digits < 4 and round(value, digits) == round(bar, digits) and value != bar:
        digits += 1
    return _fmt(value, digits)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def targets_markdown(result: dict) -> str:
    """The targets (each measured figure against its bar) as one markdown table."""
    return "\n".join(_table(["target", "measured", "bar", "met"], [
        [t["target"], _fmt_against(t["value"], t["bar"]), _fmt(t["bar"]),
         {True: "yes", False: "**no**", None: "not measured"}[t["met"]]]
        for t in result["targets"]
    ])) + "\n"


def bench_markdown(result: dict, targets: bool = True) -> str:
    """The whole result as markdown tables (what ``bench.md`` holds); ``targets=False`` leaves the targets out."""
    config, machine = result["config"], result["machine"]
    lines = [
        "# mirage_viz benchmark",
        "",
        f"{result['created']} on {machine['processor']} ({machine['cpu_count']} CPUs, {machine['torch_threads']} torch "
        f"threads), torch {machine['torch']}. Reproduce: `mirage-viz bench{' --quick' if config['quick'] else ''}`.",
    ]
    if targets:
        lines += ["", "## Targets", "", targets_markdown(result).rstrip("\n")]
    lines += ["", "## Speed and bytes (latent vs RGB memory, same trajectory, one process)", "",
              f"A `loop` of {config['speed_steps']} steps; reads and steps timed at the full cache. Read speedup: median "
              "of pairwise RGB/latent ratios, each read following the other memory's (cold caches, as in a rollout); "
              "warm: each memory's reads back to back. Peak: resident memory above the loaded models while writing "
              "every frame and reading once, in a fresh process per memory.", ""]
    rows = []
    for vae, sizes in result["speed"].items():
        for size, s in sizes.items():
            peak = s.get("peak_memory") or {}
            rows.append([
                vae, f"{size}", _fmt(s["read_ms"]["latent"], 3), _fmt(s["read_ms"]["rgb"], 1),
                f"{s['read_speedup']:,.0f}x", f"{s['read_speedup_warm']:,.0f}x",
                _fmt(s["step_ms"]["latent"], 0), _fmt(s["step_ms"]["rgb"], 0), _fmt(s["step_ms"]["none"], 0),
                f"{s['step_speedup']:.2f}x", f"{s['dominant_stage']['latent']} / {s['dominant_stage']['rgb']}",
                f"{s['cache_bytes']['latent']:,} / {s['cache_bytes']['rgb']:,}", f"{s['cache_bytes_ratio']:.1f}x",
                " / ".join(_fmt(peak[m]["peak_over_baseline_mb"], 1) for m in ("latent", "rgb")) if peak else "-",
            ])
    lines += _table(["VAE", "size", "read latent (ms)", "read RGB (ms)", "read speedup", "warm", "step latent (ms)",
                     "step RGB (ms)", "step none (ms)", "step speedup", "slowest stage latent / RGB",
                     "cache bytes latent / RGB", "bytes ratio", "peak MB latent / RGB"], rows)
    for vae, note in result["notes"]["vaes"].items():
        lines.append(f"\n`{vae}`: {note}.")

    loop = result["fidelity"]["loop"]
    lines += ["", f"## Consistency: `loop` of {loop['steps']} steps at {loop['size']}x{loop['size']}, "
              f"mean over {', '.join(loop['worlds'])}", ""]
    lines += _table(["memory", "mean PSNR (dB)", "mean SSIM", "return frame vs truth (dB)", "return frame vs first (dB)"], [
        [name, _fmt(m["mean_psnr"]), _fmt(m["mean_ssim"], 3), _fmt(m["return_psnr_vs_truth"]), _fmt(m["return_psnr_vs_first"])]
        for name, m in loop["mean_over_worlds"].items()
    ])

    options = result.get("memory_options")
    if options:
        lines += ["", f"## Memory settings, side by side ({', '.join(options['worlds'])}: worlds the denoiser "
                  f"never saw; {options['size']}x{options['size']}, means over worlds)", ""]
        rows = []
        for name, loops in options["settings"].items():
            for steps, run in loops.items():
                m = run["mean_over_worlds"]
                rows.append([name, steps, _fmt(m["latent"]["return_psnr_vs_truth"]), _fmt(m["rgb"]["return_psnr_vs_truth"]),
                             _fmt(m["latent"]["vae_reconstruction_psnr"]), _fmt(m["latent"]["mean_psnr"]),
                             _fmt(m["rgb"]["mean_psnr"]), _fmt(m["none"]["mean_psnr"]), _fmt(m["latent"]["sharpness"], 3),
                             _fmt(m["latent"].get("sharpness_vs_vae"), 3), _fmt(m["latent"].get("sharpness_mean_abs"), 3),
                             _fmt(m["latent"].get("sharpness_length"), 3)])
        lines += _table(["setting", "loop steps", "return latent (dB)", "return RGB (dB)", "VAE ceiling (dB)",
                         "mean latent (dB)", "mean RGB (dB)", "mean none (dB)", "sharpness latent: energy",
                         "energy vs VAE", "mean abs. gradient", "gradient length"], rows)

    modes = result["fidelity"]["depth_modes"]
    paper = modes["paper_empty_cell_rates"]
    lines += ["", f"## Empty latent cells per depth-downsampling mode ({modes['world']}, {modes['steps']} steps, true views)", ""]
    lines += _table(["mode", "empty cells, loop", "empty cells, pan_right", "paper (its data)", "latent MSE on covered cells, loop"], [
        [mode, f"{100 * r['empty_cell_rate']:.1f}%", f"{100 * modes['pan_right'][mode]['empty_cell_rate']:.1f}%",
         f"{100 * paper[mode]:.1f}%" if mode in paper else "-", _fmt(r["latent_mse_covered"], 4)]
        for mode, r in modes["loop"].items()
    ])
    lifting = result["fidelity"]["lifting"]
    lines += ["", "## Lifting at latent vs pixel resolution (loop, true views)", ""]
    lines += _table(["cache", "empty cells", "latent MSE on covered cells", "read (ms)", "cache bytes"], [
        [name, f"{100 * r['empty_cell_rate']:.1f}%", _fmt(r["latent_mse_covered"], 4), _fmt(r["read_ms_median"], 3), f"{r['cache_bytes']:,}"]
        for name, r in lifting["loop"].items()
    ])
    half = result["fidelity"]["half_precision"]
    lines += ["", f"float16 cache against float32 (same frames, one read): mask agreement {half['mask_agreement']:.4f}, mean "
              f"|difference| {half['mean_abs_difference']:.4f} (max {half['max_abs_difference']:.3f}, latents up to "
              f"{half['latent_abs_max']:.2f}); tolerance: agreement >= {half['tolerance']['mask_agreement_min']}, mean "
              f"|difference| <= {half['tolerance']['mean_abs_difference_max']}."]

    caches = result["caches"]
    lines += ["", f"## Cache variants over a {caches['steps']}-step loop, twice round ({caches['world']}, true views)", ""]
    rows = []
    for name, r in caches["variants"].items():
        points = r["points_per_step"]
        lap = caches["steps"]
        rows.append([name, f"{r['cache_bytes_after_one_lap']:,}", f"{r['bytes_ratio_vs_rgb']:.1f}x",
                     f"{r['cache_bytes']:,}", f"{points[lap]:,} -> {points[-1]:,}", f"{100 * r['empty_cell_rate']:.1f}%",
                     _fmt(r["latent_mse_covered"], 4), _fmt(r["read_ms_median"], 3)])
    lines += _table(["cache", "bytes after one lap", "RGB / this", "bytes after two laps", "points lap 1 -> lap 2",
                     "empty cells", "latent MSE on covered", "read (ms)"], rows)
    lines += ["", f"Rollouts (generation) of a `loop` of {config['variant_rollout_steps']} steps with each cache:", ""]
    lines += _table(["cache", "mean PSNR (dB)", "mean SSIM", "return frame (dB)", "cache bytes", "read (ms)"], [
        [name, _fmt(r["mean_psnr"]), _fmt(r["mean_ssim"], 3), _fmt(r["return_psnr_vs_truth"]), f"{r['cache_bytes']:,}",
         _fmt(r["read_ms_median"], 3)]
        for name, r in caches["rollouts"].items()
    ])
    lines += _truth_free_markdown(result.get("truth_free"))
    throughput = result["read_throughput"]
    lines += ["", f"## Read throughput: a {throughput['steps']}-step cache at {throughput['size']}x{throughput['size']}", ""]
    lines += _table(["storage", "points", "bytes", "read (ms)", "GB/s read", "copy GB/s, main memory", "copy GB/s, same size",
                     "share of main-memory copy"], [
        [dtype, f"{r['cache_points']:,}", f"{r['cache_bytes']:,}", _fmt(r["read_ms"], 3), _fmt(r["read_gbps"], 2),
         _fmt(throughput["copy_gbps_main_memory"], 1), _fmt(r["copy_gbps_same_size"], 1), f"{100 * r['fraction_of_main_memory_copy']:.0f}%"]
        for dtype, r in ((d, throughput[d]) for d in ("float32", "float16"))
    ])
    return "\n".join(lines) + "\n"


def _percent(share: float | None) -> float | None:
    return None if share is None else 100 * share


def _truth_free_markdown(part: dict | None) -> list[str]:
    """The truth-free scores against PSNR (:mod:`mirage_viz.bench.truth_free`): how far each orders the memories and the
    settings as PSNR does, and the camera-control error of the true frames."""
    if not part:
        return []
    truth = part["truth_camera_error"]
    lines = ["", f"## Scores that need no truth, checked against it ({part['steps']}-step loops at {part['size']} px, "
             f"{', '.join(part['worlds'])}, {part['seeds']} held-out seeds each, settings: {', '.join(part['settings'])})", "",
             f"How far to trust each score on footage: the share of runs in which it ranks latent, RGB and none as PSNR "
             f"against the truth does, and Kendall's tau between the two rankings (1: the same order, -1: reversed), over "
             f"the memories of a run and over the settings of a world, seed and memory. The true frames' own camera-control "
             f"error: median {_fmt(truth['rotation_deg_median'])} degrees of rotation ({_fmt(_percent(truth['rotation_under_1_deg']), 0)}% "
             f"of pairs under 1 degree) and {_fmt(truth['direction_deg_median'])} degrees of heading, over {truth['measured']} "
             f"of {truth['pairs']} step pairs with enough matches.", ""]
    lines += _table(["score (docs/consistency.md)", "runs ranked", "orders the memories as PSNR", "tau, memories",
                     "tau, settings"], [
        [score, str(a["runs_ranked"]), "-" if a["orders_memories_as_psnr"] is None else f"{_percent(a['orders_memories_as_psnr']):.0f}%",
         _fmt(a["memories_kendall_tau"]), _fmt(a["settings_kendall_tau"])]
        for score, a in part["agreement"].items()])
    return lines


def bench_figure(result: dict) -> go.Figure:
    """Four panels: read time per size, read time as the cache grows, cache bytes over two laps, PSNR per step."""
    figure = make_subplots(rows=2, cols=2, subplot_titles=(
        "memory read at the full cache (ms, log)", "read as the cache grows (ms, log)",
        "cache bytes over a long loop, twice round (log)", "PSNR against the truth per step (dB)"))
    for vae, sizes in result["speed"].items():
        keys = sorted(sizes, key=int)
        for memory in ("latent", "rgb"):
            figure.add_trace(go.Scatter(
                x=[int(k) for k in keys], y=[sizes[k]["read_ms"][memory] for k in keys], mode="lines+markers",
                name=f"{memory} read, {vae} VAE", line=dict(color=_COLORS[memory], dash="solid" if vae == "embedded" else "dash"),
            ), row=1, col=1)
    speed_256 = result["speed"].get("embedded", {}).get("256") or next(iter(next(iter(result["speed"].values())).values()))
    growth = speed_256["growth"]
    for memory in ("latent", "rgb"):
        figure.add_trace(go.Scatter(x=growth["step"], y=growth["read_ms"][memory], mode="lines+markers",
                                    name=f"{memory} read vs step ({speed_256['vae']}, {speed_256['size']})",
                                    line=dict(color=_COLORS[memory])), row=1, col=2)
    for name, variant in result["caches"]["variants"].items():
        figure.add_trace(go.Scatter(y=variant["bytes_per_step"], mode="lines", name=name), row=2, col=1)
    loop = result["fidelity"]["loop"]
    world = loop["worlds"][0]
    for memory, entry in loop["per_world"][world].items():
        figure.add_trace(go.Scatter(y=entry["psnr"], mode="lines+markers", name=f"{memory} PSNR ({world})",
                                    line=dict(color=_COLORS.get(memory))), row=2, col=2)
    figure.update_yaxes(type="log", row=1, col=1)
    figure.update_yaxes(type="log", row=1, col=2)
    figure.update_yaxes(type="log", row=2, col=1)
    figure.update_xaxes(title_text="image size (px)", row=1, col=1)
    figure.update_xaxes(title_text="step", row=1, col=2)
    figure.update_xaxes(title_text="frames written", row=2, col=1)
    figure.update_xaxes(title_text="step", row=2, col=2)
    figure.update_layout(height=760, margin=dict(l=40, r=20, t=60, b=40), legend=dict(font=dict(size=10)))
    return figure


@dataclass(frozen=True)
class Headline:
    """One result of a benchmark: a title, one sentence with its figures (computed, never typed) and a chart."""

    title: str
    sentence: str
    figure: go.Figure


def bench_headlines(result: dict) -> list[Headline]:
    """The three results that matter, each read from ``result``: how fast each memory is read, how many bytes it
    holds over a long loop, and how close each memory's frames come to the truth over a loop."""
    return [_read_headline(result), _bytes_headline(result), _psnr_headline(result)]


def _chart(title_x: str, title_y: str, log_y: bool = False) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(height=340, margin=dict(l=60, r=20, t=10, b=50), font=dict(size=13),
                         legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0))
    figure.update_xaxes(title_text=title_x)
    figure.update_yaxes(title_text=title_y, type="log" if log_y else "linear")
    return figure


def _read_headline(result: dict) -> Headline:
    speed = result["speed"]
    figure = _chart("image size (px)", "read (ms, log scale)", log_y=True)
    for vae, sizes in speed.items():
        keys = sorted(sizes, key=int)
        for memory in ("latent", "rgb"):
            figure.add_trace(go.Scatter(
                x=[int(k) for k in keys], y=[sizes[k]["read_ms"][memory] for k in keys], mode="lines+markers",
                name=f"{_MEMORY_LABELS[memory]}, {_VAE_LABELS.get(vae, vae)}", line=dict(color=_COLORS[memory], dash="solid" if vae == "embedded" else "dash")))
    vae = "embedded" if "embedded" in speed else next(iter(speed))
    size = "256" if "256" in speed[vae] else max(speed[vae], key=int)
    entry = speed[vae][size]
    sentence = (f"Reading the memory into the next camera at {size} px takes the latent memory "
                f"{entry['read_ms']['latent']:.1f} ms and the RGB memory {entry['read_ms']['rgb']:.0f} ms with the "
                f"{_VAE_LABELS.get(vae, vae)}: {entry['read_speedup']:.0f}x faster, since the RGB memory renders every pixel and encodes the "
                "render at every step.")
    others = [v for v in speed if v != vae and size in speed[v]]
    if others:
        sentence += (f" With the {_VAE_LABELS.get(others[0], others[0])}, whose encoder is Stable Diffusion's size, "
                     f"{speed[others[0]][size]['read_speedup']:.0f}x.")
    return Headline("How fast each memory is read", sentence, figure)


def _bytes_headline(result: dict) -> Headline:
    caches = result["caches"]
    variants = caches["variants"]
    rgb_name = next(name for name in variants if name.startswith("rgb"))
    latent_name = next(iter(variants))  # the paper's flat float32 cache comes first
    shown = [latent_name, *[n for n in variants if n.startswith("flat") and n != latent_name][:1], rgb_name]
    figure = _chart("frames written", "cache (MB, log scale)", log_y=True)
    for name in shown:  # the latent caches in the latent memory's colour (float16 dashed), the RGB cloud in its own
        line = dict(color=_COLORS["rgb"]) if name == rgb_name else dict(color=_COLORS["latent"],
                                                                        dash="solid" if name == latent_name else "dash")
        figure.add_trace(go.Scatter(y=[b / 1e6 for b in variants[name]["bytes_per_step"]], mode="lines", name=name,
                                    line=line))
    lap_latent = variants[latent_name]["cache_bytes_after_one_lap"]
    lap_rgb = variants[rgb_name]["cache_bytes_after_one_lap"]
    sentence = (f"After one lap of a {caches['steps']}-step loop at {caches['size']} px, the RGB point cloud holds "
                f"{lap_rgb / 1e6:.0f} MB and the latent cache {lap_latent / 1e6:.1f} MB: "
                f"{variants[latent_name]['bytes_ratio_vs_rgb']:.0f}x less, since it keeps one point per latent cell "
                "instead of one per pixel.")
    return Headline("How many bytes each memory holds", sentence, figure)


def _psnr_headline(result: dict) -> Headline:
    loop = result["fidelity"]["loop"]
    figure = _chart("step", "PSNR against the truth (dB)")
    worlds = loop["worlds"]
    for memory in loop["mean_over_worlds"]:
        per_step = [sum(values) / len(values) for values in zip(*(loop["per_world"][w][memory]["psnr"] for w in worlds))]
        figure.add_trace(go.Scatter(y=per_step, mode="lines+markers", name=_MEMORY_LABELS.get(memory, memory),
                                    line=dict(color=_COLORS.get(memory))))
    means = loop["mean_over_worlds"]
    sentence = (f"Over a {loop['steps']}-step loop at {loop['size']} px (mean of {', '.join(worlds)}), the generated frames "
                "come this close to the truth on average: " + ", ".join(
                    f"{_MEMORY_LABELS.get(name, name)} {m['mean_psnr']:.1f} dB" for name, m in means.items())
                + "; the frame back at the start: " + ", ".join(
                    f"{_MEMORY_LABELS.get(name, name)} {m['return_psnr_vs_truth']:.1f} dB" for name, m in means.items()) + ".")
    return Headline("How close each memory's frames come to the truth", sentence, figure)


def headline_table(result: dict) -> str:
    """The headline results as the README's markdown table, read from ``result`` (the README holds this function's
    output for the shipped bench, and a test keeps the two equal)."""
    speed = result["speed"]["embedded"]["256"]
    sd = result["speed"].get("sd", {}).get("256")
    variants = result["caches"]["variants"]
    latent = next(iter(variants.values()))
    rgb = next(v for name, v in variants.items() if name.startswith("rgb"))
    loop = result["fidelity"]["loop"]
    means = loop["mean_over_worlds"]
    steps = result["caches"]["steps"]

    def db(key: str) -> list[str]:
        values = [f"{means[m][key]:.1f} dB" for m in ("latent", "rgb", "none")]
        return [*values, f"{means['latent'][key] - means['rgb'][key]:+.1f} dB"]

    faster = f"{speed['read_speedup']:.0f}x faster" + (f" ({sd['read_speedup']:,.0f}x with an SD-layout VAE)" if sd else "")
    rows = [
        [f"read into the next camera, cache of a {result['config']['speed_steps']}-step loop (embedded VAE)",
         f"{speed['read_ms']['latent']:.1f} ms", f"{speed['read_ms']['rgb']:.0f} ms", "-", faster],
        [f"cache after one lap of the {steps}-step loop", f"{latent['cache_bytes_after_one_lap'] / 1e6:.1f} MB",
         f"{rgb['cache_bytes_after_one_lap'] / 1e6:.0f} MB", "-", f"{latent['bytes_ratio_vs_rgb']:.0f}x fewer bytes"],
        [f"mean PSNR over a {loop['steps']}-step loop ({', '.join(loop['worlds'])})", *db("mean_psnr")],
        ["PSNR of the frame back at the start of that loop", *db("return_psnr_vs_truth")],
    ]
    return "\n".join(_table(["result", "latent", "RGB", "none", "latent against RGB"], rows)) + "\n"


def memory_settings_markdown(result: dict) -> str:
    """The memory settings' figures as the markdown table of ``docs/memory-settings.md``, read from ``result``'s memory
    options (the doc holds this function's output for the shipped bench, and a test keeps the two equal): per setting,
    the return frame and the loop mean of each loop length for the latent / RGB (/ none) memories, the VAE's own
    reconstruction of the first frame, and the sharpness of the latent memory's frames on the shortest loop. Means
    over the option worlds, PSNR in dB."""
    settings = result["memory_options"]["settings"]
    loops = sorted(next(iter(settings.values())), key=int)
    short = loops[0]

    def scores(run: dict, key: str, memories: tuple[str, ...]) -> str:
        return " / ".join(_fmt(run["mean_over_worlds"][m][key]) for m in memories)

    header = ["setting", f"{short}-step return: latent / RGB", "VAE's own reconstruction",
              f"{short}-step mean: latent / RGB / none"]
    for steps in loops[1:]:
        header += [f"{steps}-step return: latent / RGB", f"{steps}-step mean: latent / RGB"]
    header.append("sharpness: energy / mean abs. gradient / length")
    rows = []
    for name, runs in settings.items():
        latent = runs[short]["mean_over_worlds"]["latent"]
        row = [name, scores(runs[short], "return_psnr_vs_truth", ("latent", "rgb")), _fmt(latent["vae_reconstruction_psnr"]),
               scores(runs[short], "mean_psnr", ("latent", "rgb", "none"))]
        for steps in loops[1:]:
            row += [scores(runs[steps], "return_psnr_vs_truth", ("latent", "rgb")),
                    scores(runs[steps], "mean_psnr", ("latent", "rgb"))]
        row.append(" / ".join(_fmt(latent.get(key), 3) for key in ("sharpness", "sharpness_mean_abs", "sharpness_length")))
        rows.append(row)
    return "\n".join(_table(header, rows)) + "\n"


def _setting_targets(result: dict) -> dict[str, dict[str, dict]]:
    """The targets of each memory-options row, by bar: ``{bar label: {row name: target}}`` (a target's label is the
    row's name, a colon, and the bar's label)."""
    names = list(result.get("memory_options", {}).get("settings", {}))
    bars: dict[str, dict[str, dict]] = {}
    for target in result["targets"]:
        name = next((n for n in sorted(names, key=len, reverse=True) if target["target"].startswith(f"{n}: ")), None)
        if name is not None:
            bars.setdefault(target["target"][len(name) + 2:], {})[name] = target
    return bars


def memory_settings_targets_markdown(result: dict) -> str:
    """The targets each memory setting is checked against (issue 15's bars, held-out worlds), one row per bar and one
    column per setting, each with its measured figure and whether it is met: the second table of
    ``docs/memory-settings.md``, read from ``result``'s targets (a test keeps the two equal)."""
    names = list(result["memory_options"]["settings"])
    rows = []
    for bar, by_name in _setting_targets(result).items():
        some = next(iter(by_name.values()))
        rows.append([bar, f">= {_fmt(some['bar'])}", *(
            "-" if name not in by_name else
            f"{_fmt_against(by_name[name]['value'], by_name[name]['bar'])} "
            f"{ {True: 'yes', False: 'no', None: 'not measured'}[by_name[name]['met']]}"
            for name in names)])
    return "\n".join(_table(["bar", "bar value", *names], rows)) + "\n"
