import json
from pathlib import Path

import pytest

from mirage_viz.bench import HALF_PRECISION_TOLERANCE, BenchConfig, bench_figure, bench_markdown, load_bench, run_bench, write_bench
from mirage_viz.bench.report import (bench_headlines, headline_table, memory_settings_markdown,
                                     memory_settings_targets_markdown)
from mirage_viz.bench.common import median, pairwise_ratio
from mirage_viz.bench.fidelity import SHARP_DECODER_ROW, half_precision_difference, trajectory_views
from mirage_viz.bench.peak import measure_peak_memory
from mirage_viz.bench.run import _latent_cache_variants, _targets
from mirage_viz.cli import main
from mirage_viz.rollout.config import MEMORY_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_BENCH = ROOT / "mirage_viz" / "assets" / "bench" / "bench.json"


TINY = dict(sizes=(64,), vaes=("embedded", "sd"), sd_sizes=(64,), speed_steps=3, read_repeats=3, step_repeats=2,
            peak_memory_sizes=(), fidelity_worlds=("room",), fidelity_steps=3, long_loop_steps=4, variant_rollout_steps=2,
            voxel_sizes=(0.05,), fusion_voxel_size=0.05, read_cache_steps=4, size=64, option_worlds=("studio",),
            option_loop_steps=(3,), truth_free_worlds=("room",), truth_free_seeds=1, truth_free_settings=("paper",))


@pytest.fixture(scope="module")
def tiny_bench():
    """Every part of the benchmark, at 64x64 and a few steps (seconds, not minutes)."""
    return run_bench(BenchConfig(**TINY))


@pytest.mark.slow
def test_bench_json_has_the_promised_fields(tiny_bench):
    assert tiny_bench["format"] == "mirage_viz.bench/v1"
    for vae in ("embedded", "sd"):
        entry = tiny_bench["speed"][vae]["64"]
        assert set(entry["read_ms"]) == {"latent", "rgb"} and set(entry["step_ms"]) == {"latent", "rgb", "none"}
        for key in ("read_speedup", "step_speedup", "cache_bytes_ratio", "read_ms_warm", "stage_ms", "growth"):
            assert key in entry
        assert len(entry["read_samples_ms"]["latent"]) == 3 and len(entry["step_samples_ms"]["rgb"]) == 2
        assert entry["frames_in_cache"] == 4 and entry["latent_shape"] == [4, 8, 8]
    assert "random weights" in tiny_bench["speed"]["sd"]["64"]["vae_note"]
    assert set(tiny_bench["fidelity"]["loop"]["mean_over_worlds"]) == {"latent", "rgb", "none"}
    options = tiny_bench["memory_options"]
    # the rows are the named memory settings, and the paper's memory decoded by the sharp decoder
    assert options["worlds"] == ["studio"] and list(options["settings"]) == [*MEMORY_SETTINGS, SHARP_DECODER_ROW]
    latent = options["settings"]["keep what memory holds"]["3"]["mean_over_worlds"]["latent"]
    assert latent["sharpness"] > 0 and latent["vae_reconstruction_psnr"] > latent["return_psnr_vs_truth"] - 5
    # a blurred edge keeps its summed steps but loses its energy: the measures the figures fit read well above it
    assert min(latent["sharpness_mean_abs"], latent["sharpness_length"]) > 2 * latent["sharpness"]
    standard = options["settings"]["paper"]["3"]["mean_over_worlds"]["latent"]  # the same memory, frames drawn by
    decoded = options["settings"][SHARP_DECODER_ROW]["3"]["mean_over_worlds"]["latent"]  # the sharp decoder
    assert decoded["sharpness"] > 1.2 * standard["sharpness"]  # measured at 64 px: 1.6x to 1.8x
    assert set(tiny_bench["fidelity"]["depth_modes"]["loop"]) == {"bilinear", "nearest", "area", "median", "min", "center"}
    lifting = tiny_bench["fidelity"]["lifting"]["loop"]
    assert {"latent resolution (Mirage)", "pixel resolution", "latent resolution, sub-cell warp"} <= set(lifting)
    assert lifting["latent resolution, sub-cell warp"]["latent_mse_covered"] < lifting["latent resolution (Mirage)"]["latent_mse_covered"]
    # one fused cache per voxel size, each voxel keeping the first feature written into it
    assert [n for n in tiny_bench["caches"]["variants"] if n.startswith("fused")] == ["fused 0.05 m float16"]
    assert "fused 0.05 m float16" in tiny_bench["caches"]["rollouts"]
    assert tiny_bench["read_throughput"]["float32"]["read_gbps"] > 0
    assert all({"target", "value", "bar", "met"} <= set(t) for t in tiny_bench["targets"])
    # the bars are read on 12-step loops: the tiny run's 3-step loop stands in for one
    as_12 = {**tiny_bench, "memory_options": {**options, "settings": {
        name: {"12": loops["3"]} for name, loops in options["settings"].items()}}}
    sharpness_bars = {t["target"].split("(")[1].split(" /")[0]: t for t in _targets(as_12)
                      if t["target"].startswith("keep what memory holds: sharp")}
    assert {measure: t["value"] for measure, t in sharpness_bars.items()} == {  # each label with its own figure
        "gradient energy": latent["sharpness"], "mean abs. gradient": latent["sharpness_mean_abs"],
        "gradient length": latent["sharpness_length"]}
    assert {t["bar"] for t in sharpness_bars.values()} == {0.85}
    json.dumps(tiny_bench)  # JSON-ready: no tensors, no infinities
    assert "Infinity" not in json.dumps(tiny_bench) and "NaN" not in json.dumps(tiny_bench)


def test_ratios_are_computed_from_the_timings_written(tiny_bench):
    for sizes in tiny_bench["speed"].values():
        for entry in sizes.values():
            reads, steps = entry["read_samples_ms"], entry["step_samples_ms"]
            assert entry["read_speedup"] == pytest.approx(pairwise_ratio(reads["rgb"], reads["latent"]))
            assert entry["step_speedup"] == pytest.approx(pairwise_ratio(steps["rgb"], steps["latent"]))
            assert entry["read_ms"]["latent"] == pytest.approx(median(reads["latent"]), abs=1e-4)
            assert entry["step_ms"]["rgb"] == pytest.approx(median(steps["rgb"]), abs=1e-3)
            assert entry["cache_bytes_ratio"] == pytest.approx(entry["cache_bytes"]["rgb"] / entry["cache_bytes"]["latent"])
            # float32 both: 64 pixels x (3 + 3) floats per latent cell against (3 + 4) floats
            assert entry["cache_bytes_ratio"] == pytest.approx(384 / 7)
            assert entry["growth"]["cache_bytes"]["latent"] == sorted(entry["growth"]["cache_bytes"]["latent"])


def test_pairwise_ratio_is_the_median_of_pair_ratios():
    assert pairwise_ratio([10.0, 20.0, 300.0], [1.0, 1.0, 1.0]) == 20.0
    with pytest.raises(ValueError):
        pairwise_ratio([1.0], [1.0, 2.0])


def test_report_and_plot_are_written_all_together(tiny_bench, tmp_path):
    out = write_bench(tiny_bench, tmp_path / "bench")
    assert sorted(p.name for p in out.iterdir()) == [".mirage_viz.json", "bench.html", "bench.json", "bench.md"]
    assert load_bench(out / "bench.json") == json.loads(json.dumps(tiny_bench))
    markdown = bench_markdown(tiny_bench)
    assert "## Targets" in markdown and "| sd | 64 |" in markdown
    assert len(bench_figure(tiny_bench).data) >= 8
    with pytest.raises(ValueError, match="not empty"):
        write_bench(tiny_bench, out)  # nothing overwritten without asking


def test_the_three_headlines_read_their_figures_from_the_result():
    result = load_bench(SHIPPED_BENCH)
    read, held, close = bench_headlines(result)
    entry = result["speed"]["embedded"]["256"]
    assert f"{entry['read_speedup']:.0f}x faster" in read.sentence and f"{entry['read_ms']['rgb']:.0f} ms" in read.sentence
    latent = next(iter(result["caches"]["variants"].values()))
    assert f"{latent['bytes_ratio_vs_rgb']:.0f}x less" in held.sentence
    means = result["fidelity"]["loop"]["mean_over_worlds"]
    assert f"latent memory {means['latent']['mean_psnr']:.1f} dB" in close.sentence
    assert f"RGB memory {means['rgb']['return_psnr_vs_truth']:.1f} dB" in close.sentence
    for headline in (read, held, close):  # each chart has its own legend and labelled axes
        assert headline.figure.layout.legend.orientation == "h" and headline.figure.layout.yaxis.title.text
        assert len(headline.figure.data) >= 3


def test_load_bench_names_what_is_wrong(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "b.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not valid JSON"):
        load_bench(tmp_path / "a.json")
    with pytest.raises(ValueError, match="not a mirage_viz benchmark"):
        load_bench(tmp_path / "b.json")
    with pytest.raises(ValueError, match="not found"):
        load_bench(tmp_path / "missing.json")


def test_bench_config_refuses_bad_settings():
    with pytest.raises(ValueError, match="multiples of 32"):
        BenchConfig(sizes=(100,)).validate()
    with pytest.raises(ValueError, match="accepted: embedded, sd"):
        BenchConfig(vaes=("taesd",)).validate()
    with pytest.raises(ValueError, match="read_repeats"):
        BenchConfig(read_repeats=0).validate()


def test_cli_bench_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--sizes", "100", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2 and "multiples of 32" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert main(["bench", "--quick", "--out", str(busy)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]


@pytest.mark.slow
def test_peak_memory_probe_runs_in_its_own_process():
    latent = measure_peak_memory("latent", 128, "embedded", 4)
    rgb = measure_peak_memory("rgb", 128, "embedded", 4)
    for probe in (latent, rgb):
        assert probe["peak_mb"] >= probe["baseline_mb"] > 0 and probe["peak_over_baseline_mb"] >= 0
    assert rgb["cache_bytes"] == 4 * 128 * 128 * 24 and latent["cache_bytes"] == 4 * 16 * 16 * 28
    # the RGB read renders at pixel resolution and runs the VAE encoder: its peak is the larger
    assert rgb["peak_over_baseline_mb"] > latent["peak_over_baseline_mb"]


# -- half-precision caches ----------------------------------------------------------


@pytest.fixture(scope="module")
def loop_views(backbone):
    return trajectory_views("room", "loop", 6, 64, backbone)


def test_half_precision_changes_a_read_by_less_than_the_stated_tolerance(loop_views):
    result = half_precision_difference(loop_views)
    assert result["bytes"]["float16"] * 2 == result["bytes"]["float32"]
    assert result["mask_agreement"] >= HALF_PRECISION_TOLERANCE["mask_agreement_min"]
    assert result["mean_abs_difference"] <= HALF_PRECISION_TOLERANCE["mean_abs_difference_max"]


def test_the_quick_preset_is_a_valid_smaller_bench():
    quick, full = BenchConfig.quick_preset(), BenchConfig()
    quick.validate()
    assert quick.quick and set(quick.sizes) < set(full.sizes) and quick.speed_steps < full.speed_steps
    assert set(quick.option_worlds) <= set(full.option_worlds) and quick.option_loop_steps == (12,)


@pytest.mark.slow
def test_cli_quick_bench_writes_its_report(tmp_path, capsys, monkeypatch):
    """The CLI's path: flags into the config, the run, the three files, the targets printed. The quick preset is
    swapped for the tiny one (the preset itself is checked above; a real --quick run takes minutes)."""
    monkeypatch.setattr(BenchConfig, "quick_preset", classmethod(lambda cls: cls(**TINY, quick=True)))
    assert main(["bench", "--quick", "--vaes", "embedded", "--repeats", "4", "--quiet", "--out", str(tmp_path / "bench")]) == 0
    out = capsys.readouterr().out
    assert "read speedup, embedded VAE, 256x256 (in context): - (bar 100.00) not measured" in out and "bench.json" in out
    result = load_bench(tmp_path / "bench" / "bench.json")
    assert set(result["speed"]) == {"embedded"} and set(result["speed"]["embedded"]) == {"64"}
    assert len(result["speed"]["embedded"]["64"]["read_samples_ms"]["latent"]) == 4
    assert result["config"]["quick"] and result["config"]["vaes"] == ["embedded"]
    assert (tmp_path / "bench" / "bench.md").read_text().startswith("# mirage_viz benchmark")


def test_the_readme_holds_the_shipped_benchs_headline_table_as_generated():
    """The README's table of results is headline_table's output for the shipped bench, never typed by hand."""
    table = headline_table(load_bench(SHIPPED_BENCH))
    assert table in (ROOT / "README.md").read_text(), "regenerate the README's table with headline_table (docs/development.md)"


def test_the_memory_settings_doc_holds_the_shipped_benchs_tables_as_generated():
    """docs/memory-settings.md's two tables of figures are memory_settings_markdown's and
    memory_settings_targets_markdown's output for the shipped bench, never typed by hand."""
    result = load_bench(SHIPPED_BENCH)
    doc = (ROOT / "docs" / "memory-settings.md").read_text()
    for table in (memory_settings_markdown(result), memory_settings_targets_markdown(result)):
        assert table in doc, "regenerate docs/memory-settings.md's tables with memory_settings_markdown (its command)"
    assert "frame_bars" not in doc  # the sweep runs other grids (--memory-settings)


def test_the_shipped_bench_has_the_rows_and_targets_this_code_writes():
    """The shipped run's memory rows are the named settings (and the sharp decoder's row), its cache variants those
    of its config, and its targets the ones _targets computes from its figures."""
    result = load_bench(SHIPPED_BENCH)
    assert list(result["memory_options"]["settings"]) == [*MEMORY_SETTINGS, SHARP_DECODER_ROW]
    variants = _latent_cache_variants(BenchConfig(**{**result["config"], "sizes": tuple(result["config"]["sizes"]),
                                                     "voxel_sizes": tuple(result["config"]["voxel_sizes"])}))
    assert list(result["caches"]["variants"]) == [*variants, "rgb point cloud (baseline), one lap"]
    assert _targets(result) == result["targets"]
    assert bench_markdown(result) == SHIPPED_BENCH.with_name("bench.md").read_text()  # bench.md: its tables, as written


def test_what_the_memory_settings_doc_says_holds_on_the_shipped_bench():
    """The sentences of docs/memory-settings.md about its tables (they carry no figures) hold for the shipped run."""
    settings = load_bench(SHIPPED_BENCH)["memory_options"]["settings"]

    def latent(name: str, steps: str = "12") -> dict:
        return settings[name][steps]["mean_over_worlds"]["latent"]

    def rgb(name: str, steps: str = "12") -> dict:
        return settings[name][steps]["mean_over_worlds"]["rgb"]

    # the paper's return frame is well under the RGB memory's, further on the long loop; "keep what memory holds"
    # gives back the VAE's reconstruction of the first frame on both loops
    short, long = (rgb("paper", s)["return_psnr_vs_truth"] - latent("paper", s)["return_psnr_vs_truth"] for s in ("12", "48"))
    assert 1.0 < short < long
    for steps in ("12", "48"):
        keep = latent("keep what memory holds", steps)
        assert keep["return_psnr_vs_truth"] == pytest.approx(keep["vae_reconstruction_psnr"], abs=0.01)
    # same sampler: over the long loop the latent memory is closer to the truth than the RGB memory
    assert latent("keep what memory holds", "48")["mean_psnr"] > rgb("keep what memory holds", "48")["mean_psnr"]
    # "closest to the truth": the highest loop mean, softer frames; "sharp and close" sharper for a little mean
    means = {name: latent(name)["mean_psnr"] for name in settings}
    assert max(means, key=means.get) == "closest to the truth"
    closest, sharp = latent("closest to the truth"), latent("sharp and close")
    assert closest["sharpness_mean_abs"] < latent("keep what memory holds")["sharpness_mean_abs"]
    assert sharp["sharpness_mean_abs"] > closest["sharpness_mean_abs"] and 0 < closest["mean_psnr"] - sharp["mean_psnr"] < 0.2
    # the sharp decoder alone: the sharpest frames, at a cost in loop mean
    alone = latent(SHARP_DECODER_ROW)
    assert all(alone["sharpness_mean_abs"] > latent(name)["sharpness_mean_abs"] for name in MEMORY_SETTINGS)
    assert alone["mean_psnr"] < latent("paper")["mean_psnr"]
    # "sharp and close" meets every bar but the gradient energy's, which no setting meets
    targets = load_bench(SHIPPED_BENCH)["targets"]
    energy = [t for t in targets if "gradient energy" in t["target"] and t["target"].split(":")[0] in settings]
    assert energy and not any(t["met"] for t in energy)
    missed = {name: [t["target"] for t in targets if t["target"].startswith(f"{name}: ") and not t["met"]]
              for name in MEMORY_SETTINGS}
    assert [name for name, bars in missed.items() if all("gradient energy" in bar for bar in bars)] == ["sharp and close"]


def test_kendall_tau_counts_concordant_minus_discordant_pairs():
    from mirage_viz.bench.truth_free import _kendall_tau

    assert _kendall_tau([1, 2, 3], [10, 20, 30]) == 1.0 and _kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    assert _kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3) and _kendall_tau([1], [1]) is None


def test_agreement_ranks_each_score_against_psnr_with_its_sign():
    """A lower error, or a higher flow agreement, ranks a memory as a higher PSNR does."""
    from mirage_viz.bench.truth_free import _agreement

    def run(seed, psnr, error, flow):
        memories = {name: {"mean_psnr": p, "camera_rotation_error_deg": e, "camera_direction_error_deg": None,
                           "reprojection_error": e, "flow_agreement": f}
                    for name, p, e, f in zip(("latent", "rgb", "none"), psnr, error, flow)}
        return {"world": "room", "world_seed": seed, "setting": "paper", "memories": memories}

    runs = [run(0, (22, 23, 18), (0.02, 0.01, 0.05), (0.6, 0.7, 0.3)),  # both scores agree with PSNR
            run(1, (22, 23, 18), (0.01, 0.02, 0.05), (0.7, 0.6, 0.3))]  # both swap latent and rgb
    agreement = _agreement(runs)
    for score in ("reprojection_error", "flow_agreement", "camera_rotation_error_deg"):
        assert agreement[score]["orders_memories_as_psnr"] == 0.5 and agreement[score]["runs_ranked"] == 2
        assert agreement[score]["memories_kendall_tau"] == pytest.approx((1 + 1 / 3) / 2, abs=1e-4)
    assert agreement["camera_direction_error_deg"]["runs_ranked"] == 0  # never measured: no ranking, no claim


@pytest.mark.slow
def test_the_bench_checks_the_truth_free_scores_against_psnr(tiny_bench):
    part = tiny_bench["truth_free"]
    assert part["runs"] and part["runs"][0]["world_seed"] >= 5000  # held out from every model's training
    assert set(part["agreement"]) == {"camera_rotation_error_deg", "camera_direction_error_deg", "reprojection_error",
                                      "flow_agreement"}
    assert part["truth_camera_error"]["pairs"] == 3 and "Scores that need no truth" in bench_markdown(tiny_bench)
    names = [t["target"] for t in tiny_bench["targets"]]
    assert any(name.startswith("truth-free: camera-control rotation error of the true frames") for name in names)
