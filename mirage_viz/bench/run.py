"""``mirage-viz bench``: every part of the benchmark in one run, one JSON, one table, one plot."""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from mirage_viz.backbone import SHARP_VAE, build_backbone, load_embedded_backbone
from mirage_viz.geometry.depth import DEPTH_DOWNSAMPLE_MODES
from mirage_viz.rollout.config import MEMORY_SETTINGS, RolloutConfig
from mirage_viz.rollout.engine import run_rollout
from mirage_viz.memories import LatentSpatialMemory, RGBPointCloudMemory
from mirage_viz.memories.voxel_cache import check_voxel_size
from mirage_viz.scenes.trajectories import MAX_STEPS
from mirage_viz.scenes.worlds import WORLD_NAMES
from mirage_viz.bench.bandwidth import read_throughput
from mirage_viz.bench.common import VAE_KINDS
from mirage_viz.bench.fidelity import (PAPER_EMPTY_CELL_RATES, half_precision_difference, loop_consistency,
                                      memory_options, read_quality, rollout_scores, trajectory_views)
from mirage_viz.bench.peak import PEAK_MEMORY_SUPPORTED, measure_peak_memory
from mirage_viz.bench.speed import SpeedSetting, measure_speed
from mirage_viz.bench.truth_free import truth_free_agreement

__all__ = ["BENCH_FORMAT", "BenchConfig", "run_bench", "run_truth_free", "with_truth_free", "HALF_PRECISION_TOLERANCE"]

BENCH_FORMAT = "mirage_viz.bench/v1"
MATCH_DB = 0.1  # the latent memory "matches" the RGB memory when its mean loop PSNR is at most this far below
# A float16 cache must agree with the float32 one on at least this share of mask cells and change the
# latent of cells covered by both by at most this much on average (latents have unit variance).
HALF_PRECISION_TOLERANCE = {"mask_agreement_min": 0.99, "mean_abs_difference_max": 0.05}


@dataclass
class BenchConfig:
    """What to measure. The defaults are the full benchmark (about 25 minutes on 2 CPU cores, 10 of them the memory
    settings)."""

    sizes: tuple[int, ...] = (128, 256, 512)
    vaes: tuple[str, ...] = ("embedded", "sd")
    sd_sizes: tuple[int, ...] | None = None  # sizes timed with the SD-layout VAE (default: ``sizes``)
    speed_steps: int = 48
    read_repeats: int = 5
    step_repeats: int = 3
    peak_memory_sizes: tuple[int, ...] | None = None  # default: every size of the speed runs
    fidelity_worlds: tuple[str, ...] = ("room", "studio", "gallery")
    fidelity_steps: int = 12
    option_worlds: tuple[str, ...] = ("studio", "gallery")  # held out from the denoiser's training worlds
    option_loop_steps: tuple[int, ...] = (12, 48)
    long_loop_steps: int = 48
    variant_rollout_steps: int = 48  # rollouts with each cache variant (consistency through generation)
    voxel_sizes: tuple[float, ...] = (0.02, 0.04, 0.08)
    fusion_voxel_size: float = 0.04  # the fused variant carried into rollouts
    read_cache_steps: int = 100
    # the truth-free scores against PSNR: loops in these worlds, this many held-out seeds each, under these settings
    truth_free_worlds: tuple[str, ...] = ("room", "studio", "gallery")
    truth_free_seeds: int = 2
    truth_free_settings: tuple[str, ...] = ("paper", "keep what memory holds")
    size: int = 256  # image size of the fidelity and cache parts
    seed: int = 0
    quick: bool = False
    labels: dict = field(default_factory=dict)

    @classmethod
    def quick_preset(cls) -> BenchConfig:
        """About 150 seconds on 2 CPU cores: fewer sizes and steps, the SD layout at 128 only, the options in one world."""
        return cls(sizes=(128, 256), sd_sizes=(128,), speed_steps=12, read_repeats=5, step_repeats=2,
                   peak_memory_sizes=(256,), fidelity_worlds=("room",), fidelity_steps=12, option_worlds=("studio",),
                   option_loop_steps=(12,), long_loop_steps=48,
                   variant_rollout_steps=12, voxel_sizes=(0.04,), read_cache_steps=100, truth_free_worlds=("room",),
                   truth_free_settings=("paper",), quick=True)

    def validate(self) -> None:
        for size in self.sizes + (self.sd_sizes or ()) + (self.peak_memory_sizes or ()) + (self.size,):
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % 32 or size > 2048:
                raise ValueError(f"sizes must be positive multiples of 32 up to 2048, got {size!r}")
        bad = [v for v in self.vaes if v not in VAE_KINDS]
        if bad or not self.vaes:
            raise ValueError(f"unknown VAE {', '.join(map(repr, bad)) or '(none given)'}; accepted: {', '.join(VAE_KINDS)}")
        for name in ("speed_steps", "read_repeats", "step_repeats", "fidelity_steps", "long_loop_steps",
                     "variant_rollout_steps", "read_cache_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_STEPS:
                raise ValueError(f"{name} must be an integer in [1, {MAX_STEPS}], got {value!r}")
        for voxel_size in self.voxel_sizes + (self.fusion_voxel_size,):
            check_voxel_size(voxel_size)
        for steps in self.option_loop_steps:
            if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
                raise ValueError(f"option_loop_steps must be integers in [1, {MAX_STEPS}], got {steps!r}")
        if any(w not in WORLD_NAMES for w in self.option_worlds):
            raise ValueError(f"option_worlds must be names from {', '.join(WORLD_NAMES)}, got {list(self.option_worlds)}")
        if not self.fidelity_worlds or any(w not in WORLD_NAMES for w in self.fidelity_worlds):
            raise ValueError(f"fidelity_worlds must be names from {', '.join(WORLD_NAMES)}, got {list(self.fidelity_worlds)}")
        if any(w not in WORLD_NAMES for w in self.truth_free_worlds):
            raise ValueError(f"truth_free_worlds must be names from {', '.join(WORLD_NAMES)}, got {list(self.truth_free_worlds)}")
        if isinstance(self.truth_free_seeds, bool) or not isinstance(self.truth_free_seeds, int) or not 1 <= self.truth_free_seeds <= 20:
            raise ValueError(f"truth_free_seeds must be an integer in [1, 20], got {self.truth_free_seeds!r}")
        if not self.truth_free_settings or any(s not in MEMORY_SETTINGS for s in self.truth_free_settings):
            raise ValueError(f"truth_free_settings must be names from {', '.join(MEMORY_SETTINGS)}, got {list(self.truth_free_settings)}")


def _speed_settings(config: BenchConfig) -> list[SpeedSetting]:
    settings = []
    for vae in config.vaes:
        sizes = config.sizes if vae != "sd" or config.sd_sizes is None else config.sd_sizes
        for size in sizes:
            settings.append(SpeedSetting(size=size, vae=vae, steps=config.speed_steps, read_repeats=config.read_repeats,
                                         step_repeats=config.step_repeats, seed=config.seed))
    return settings


def _latent_cache_variants(config: BenchConfig) -> dict[str, Callable[[], LatentSpatialMemory]]:
    variants: dict[str, Callable[[], LatentSpatialMemory]] = {
        "flat float32 (paper)": lambda: LatentSpatialMemory(),
        "flat float16": lambda: LatentSpatialMemory(latent_dtype="float16"),
    }
    for voxel in config.voxel_sizes:  # a voxel keeps the first feature written into it
        variants[f"fused {voxel:g} m float16"] = lambda voxel=voxel: LatentSpatialMemory(latent_dtype="float16", voxel_size=voxel)
    return variants


def _summary(quality: dict) -> dict:
    """A read-quality result without its per-step lists."""
    return {k: v for k, v in quality.items() if not k.endswith("_per_step")}


def _targets(result: dict) -> list[dict]:
    """The issue's bars, each with the measured value and whether it is met."""
    targets = []
    speed = result["speed"]

    def add(name: str, value: float | None, bar: float, lower: bool = False) -> None:
        met = None if value is None else value <= bar if lower else value >= bar
        targets.append({"target": name, "value": value, "bar": bar, "met": met})

    embedded_256 = speed.get("embedded", {}).get("256")
    add("read speedup, embedded VAE, 256x256 (in context)", embedded_256 and round(embedded_256["read_speedup"], 2), 100)
    add("read speedup, embedded VAE, 256x256 (warm)", embedded_256 and round(embedded_256["read_speedup_warm"], 2), 100)
    sd_512 = speed.get("sd", {}).get("512")
    add("read speedup, SD-layout VAE, 512x512", sd_512 and round(sd_512["read_speedup"], 1), 1000)
    if embedded_256:
        # the paper's "55x" is (64 pixels x (3 + 3) floats) / (3 + 4) floats = 384 / 7 = 54.86, rounded
        add("cache bytes ratio at equal frames (f=8, C=4, float32; the paper's 55x is 384/7)",
            round(embedded_256["cache_bytes_ratio"], 2), round(384 / 7, 2))
    fused = [v["bytes_ratio_vs_rgb"] for k, v in result["caches"]["variants"].items() if k.startswith("fused")]
    if fused:
        add(f"cache bytes ratio with fusion + float16 over a {result['caches']['steps']}-step loop (best voxel size)", max(fused), 100)
    overall = result["fidelity"]["loop"]["mean_over_worlds"]
    # "matches": within MATCH_DB of the RGB memory's mean PSNR
    add(f"loop mean PSNR: latent minus rgb (dB; matches within {MATCH_DB} dB)",
        round(overall["latent"]["mean_psnr"] - overall["rgb"]["mean_psnr"], 3), -MATCH_DB)
    add("loop mean PSNR: rgb minus none (dB)", round(overall["rgb"]["mean_psnr"] - overall["none"]["mean_psnr"], 3), 0.0)
    add("loop mean PSNR: latent minus none (dB)", round(overall["latent"]["mean_psnr"] - overall["none"]["mean_psnr"], 3), 0.0)
    options = result.get("memory_options", {}).get("settings", {})
    for name, loops in options.items():
        if "12" not in loops:
            continue
        short = loops["12"]["mean_over_worlds"]
        latent = short["latent"]
        add(f"{name}: 12-step loop return frame, latent (dB, held out)", latent["return_psnr_vs_truth"], 29.0)
        add(f"{name}: 12-step return, latent minus VAE reconstruction (dB)",
            round(latent["return_psnr_vs_truth"] - latent["vae_reconstruction_psnr"], 3), -1.5)
        for steps, loop in loops.items():
            scores = loop["mean_over_worlds"]
            add(f"{name}: {steps}-step return frame, latent minus rgb (dB)",
                round(scores["latent"]["return_psnr_vs_truth"] - scores["rgb"]["return_psnr_vs_truth"], 3), -0.5)
        add(f"{name}: 12-step loop mean PSNR, latent (dB)", latent["mean_psnr"], 23.5)
        add(f"{name}: 12-step loop mean PSNR, latent minus none (dB)",
            round(latent["mean_psnr"] - short["none"]["mean_psnr"], 3), 3.0)
        # the bar in the measure the figures were taken in, the mean absolute gradient (its rollout re-run on the
        # code and weights it was filed with gives them: experiments/sharpness_calibration.py --commit ba212fc), then the
        # energy, the word the issue used (no decoder of an f = 8 latent keeps a quarter of it: sharpness_ceiling.py),
        # and the gradient length, beside it for comparison
        add(f"{name}: sharpness of generated frames, latent (mean abs. gradient / truth's: the measure of the issue's "
            "figures)", latent.get("sharpness_mean_abs"), 0.85)
        add(f"{name}: sharpness of generated frames, latent (gradient energy / truth's: the issue's word, not its "
            "figures' measure)", latent["sharpness"], 0.85)
        add(f"{name}: sharpness of generated frames, latent (gradient length / truth's: for comparison)",
            latent.get("sharpness_length"), 0.85)
    truth_free = result.get("truth_free")
    if truth_free:  # a bench from before the truth-free scores has none
        truth = truth_free["truth_camera_error"]
        add("truth-free: camera-control rotation error of the true frames, median (deg; the estimator works)",
            truth["rotation_deg_median"], 1.0, lower=True)
        for score, agreement in truth_free["agreement"].items():
            add(f"truth-free: {score} orders latent/rgb/none as PSNR does (share of runs)",
                agreement["orders_memories_as_psnr"], 0.8)
    return targets


def run_truth_free(config: BenchConfig, backbone, say: Callable[[str], None]) -> dict:
    """The bench's truth-free part (:func:`~mirage_viz.bench.truth_free.truth_free_agreement`) as ``config`` asks."""
    say(f"truth-free scores against PSNR: loops in {', '.join(config.truth_free_worlds)}, {config.truth_free_seeds} "
        f"held-out seeds each, settings {', '.join(config.truth_free_settings)}")
    return truth_free_agreement(config.truth_free_worlds, config.truth_free_seeds, config.truth_free_settings,
                                config.fidelity_steps, config.size, backbone, config.seed, say)


def with_truth_free(result: dict, say: Callable[[str], None] | None = None) -> dict:
    """``result`` (a bench.json's) with its truth-free part run again under its own config, and its targets anew;
    every other figure as it was measured."""
    config = BenchConfig(**{key: tuple(value) if isinstance(value, list) else value
                            for key, value in result["config"].items()})
    config.validate()
    updated = dict(result, config=asdict(config))
    updated["truth_free"] = run_truth_free(config, load_embedded_backbone(), say or (lambda message: None))
    updated["targets"] = _targets(updated)
    return updated


def _machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def run_bench(config: BenchConfig | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Run everything ``config`` asks for and return the JSON-ready result (see ``bench.json`` in the README)."""
    config = config or BenchConfig()
    config.validate()
    say = progress or (lambda message: None)
    backbone = load_embedded_backbone()
    result: dict = {
        "format": BENCH_FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": asdict(config),
        "machine": _machine(),
        "notes": {
            "vaes": VAE_KINDS,
            "read_speedup": "median over pairs of (RGB read / latent read), each pair timed back to back on the same cache",
            "step_speedup": "median over pairs of (RGB step / latent step); a step is read + generate + decode + depth + write",
            "cache_bytes_ratio": "RGB cache bytes over latent cache bytes after the last step (float32 both)",
            "peak_memory": "resident memory of a fresh process per memory (Linux /proc); null where not measurable",
        },
    }

    # speed, bytes and peak memory
    result["speed"] = {}
    for setting in _speed_settings(config):
        say(f"speed: {setting.vae} VAE at {setting.size}x{setting.size}, {setting.steps}-step loop")
        entry = measure_speed(setting)
        peak_sizes = config.peak_memory_sizes if config.peak_memory_sizes is not None else config.sizes
        if setting.size in peak_sizes and not PEAK_MEMORY_SUPPORTED:
            entry["peak_memory"] = None  # the probe reads Linux's /proc; said in notes
        elif setting.size in peak_sizes:
            say(f"peak memory: {setting.vae} VAE at {setting.size}x{setting.size} (one fresh process per memory)")
            entry["peak_memory"] = {
                name: measure_peak_memory(name, setting.size, setting.vae, setting.steps + 1) for name in ("latent", "rgb")
            }
        result["speed"].setdefault(setting.vae, {})[str(setting.size)] = entry

    # fidelity through full rollouts
    say(f"fidelity: loop of {config.fidelity_steps} steps in {', '.join(config.fidelity_worlds)}")
    fidelity: dict = {"loop": loop_consistency(config.fidelity_worlds, config.fidelity_steps, config.size, backbone, config.seed)}

    # reads against the truth: depth modes and lifting resolution, on the loop and on a pan that reveals new content
    say("fidelity: empty cells per depth-downsampling mode, latent vs pixel lifting")
    world = config.fidelity_worlds[0]
    fidelity["depth_modes"] = {"world": world, "steps": config.fidelity_steps, "paper_empty_cell_rates": PAPER_EMPTY_CELL_RATES}
    fidelity["lifting"] = {"world": world, "steps": config.fidelity_steps}
    for trajectory in ("loop", "pan_right"):
        views = trajectory_views(world, trajectory, config.fidelity_steps, config.size, backbone)
        fidelity["depth_modes"][trajectory] = {
            mode: _summary(read_quality(views, lambda mode=mode: LatentSpatialMemory(depth_mode=mode))) for mode in DEPTH_DOWNSAMPLE_MODES
        }
        fidelity["lifting"][trajectory] = {
            "latent resolution (Mirage)": fidelity["depth_modes"][trajectory]["bilinear"],
            "pixel resolution": _summary(read_quality(views, lambda: LatentSpatialMemory(lift="pixel"))),
            "latent resolution, sub-cell warp": _summary(read_quality(views, lambda: LatentSpatialMemory(warp="subcell"))),
            "rgb point cloud (baseline)": _summary(read_quality(views, lambda: RGBPointCloudMemory(backbone.encode))),
        }
        if trajectory == "loop":
            fidelity["half_precision"] = half_precision_difference(views) | {"tolerance": HALF_PRECISION_TOLERANCE}
    result["fidelity"] = fidelity

    # the memory and sampler options beside the paper's, on worlds the denoiser never saw
    if config.option_worlds:
        say(f"memory options: loops of {', '.join(map(str, config.option_loop_steps))} steps in "
            f"{', '.join(config.option_worlds)}, each option side by side")
        result["memory_options"] = {"worlds": list(config.option_worlds), "size": config.size, "settings": memory_options(
            config.option_worlds, config.option_loop_steps, config.size, backbone, config.seed,
            sharp_backbone=build_backbone(vae=SHARP_VAE, depth=None, device="cpu"))}  # as the embedded rows

    # cache variants over a long loop, twice round: bytes, growth, read time, read error
    say(f"caches: flat / float16 / fused over a {config.long_loop_steps}-step loop, twice round")
    lap = config.long_loop_steps
    long_loop = trajectory_views(world, "loop", lap, config.size, backbone, laps=2)
    rgb = read_quality(long_loop[: lap + 1], lambda: RGBPointCloudMemory(backbone.encode))  # one lap: 49 frames
    caches: dict = {"world": world, "steps": lap, "laps": 2, "size": config.size, "variants": {}}
    for name, make in _latent_cache_variants(config).items():
        entry = read_quality(long_loop, make)
        entry["cache_bytes_after_one_lap"] = entry["bytes_per_step"][lap]
        caches["variants"][name] = entry
    caches["variants"]["rgb point cloud (baseline), one lap"] = rgb | {"cache_bytes_after_one_lap": rgb["cache_bytes"]}
    for entry in caches["variants"].values():
        entry["bytes_ratio_vs_rgb"] = round(rgb["cache_bytes"] / entry["cache_bytes_after_one_lap"], 2)

    # the same variants through full rollouts: does fusion or float16 cost consistency?
    say(f"caches: rollouts of a {config.variant_rollout_steps}-step loop with each cache variant")

    def loop(memories: tuple[str, ...], **options: object) -> RolloutConfig:
        return RolloutConfig(world=world, trajectory="loop", steps=config.variant_rollout_steps, size=config.size,
                             seed=config.seed, memories=memories).with_options(**options)

    rollouts = {
        "flat float32 (paper)": loop(("latent", "rgb", "none")),
        "flat float16": loop(("latent",), latent_dtype="float16"),
        f"fused {config.fusion_voxel_size:g} m float16": loop(("latent",), latent_dtype="float16",
                                                              voxel_size=config.fusion_voxel_size),
    }
    caches["rollouts"] = {}
    for name, rollout_config in rollouts.items():
        rollout = run_rollout(rollout_config, backbone=backbone)
        for memory, records in rollout.records.items():
            caches["rollouts"][name if memory == "latent" else f"{memory} (reference)"] = rollout_scores(records)
    result["caches"] = caches

    # the read against the machine's memory bandwidth
    say(f"read throughput: a {config.read_cache_steps}-step cache at {config.size}x{config.size}")
    result["read_throughput"] = read_throughput(backbone, config.read_cache_steps, config.size)
    if config.truth_free_worlds:
        result["truth_free"] = run_truth_free(config, backbone, say)
    result["targets"] = _targets(result)
    return result
