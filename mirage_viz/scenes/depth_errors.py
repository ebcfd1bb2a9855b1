"""Truth with controlled errors: a synthetic world's true depth made wrong the way a monocular estimator is wrong,
by a set amount, so estimated depth and noisy truth sit on one axis of depth error.

A :class:`DepthErrors` is written as a spec of ``key=value`` settings joined by ``+`` (``""``: exact truth)::

    errors = parse_depth_errors("noise=0.1+bias=1.1+smear=3+holes=0.05")
    noisy = errors.apply(depth, torch.Generator().manual_seed(0))  # (H, W), NaN in the holes

Applied in a fixed order: ``smear`` (edges blurred across depth discontinuities), ``bias`` (a global scale),
``noise`` (spatially smooth multiplicative log-normal noise, ``grain`` pixels per cell of its field), ``holes``
(blobs of pixels without depth, NaN). :func:`depth_abs_rel` measures how far a depth map is from the truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from mirage_viz.geometry.projection import check_depth

__all__ = ["DEPTH_ERROR_KEYS", "HOLE_GRAIN", "SMEAR_MOVED", "DepthErrors", "depth_abs_rel", "hole_fraction",
           "parse_depth_errors", "smear_depth", "smooth_field"]

HOLE_GRAIN = 16  # pixels per cell of the coarse field whose top quantile becomes holes: blobs, not salt
SMEAR_MOVED = 0.05  # a pixel the smear changed by more than this fraction of its depth counts as moved

# each setting: its type, its accepted range and what it means, in the order the errors are applied
_SETTINGS: dict[str, tuple[type, float, float, str]] = {
    "smear": (int, 0, 16, "the radius in pixels of the box filter that smears depth edges"),
    "bias": (float, 0.25, 4.0, "a global scale of depth, 1 for none"),
    "noise": (float, 0.0, 1.0, "the std of log depth of the multiplicative noise"),
    "grain": (int, 1, 64, "pixels per cell of the noise field, 1 for per-pixel noise"),
    "holes": (float, 0.0, 0.9, "the fraction of pixels without depth"),
}
DEPTH_ERROR_KEYS: tuple[str, ...] = ("noise", "grain", "bias", "smear", "holes")  # as a spec writes them
_EXAMPLE = "'noise=0.1+bias=1.1+smear=3+holes=0.05', or '' for the exact truth"


@dataclass(frozen=True)
class DepthErrors:
    """Errors put on true depth, each off at its default; see the module docstring and :meth:`apply`.

    ``grain`` shapes the noise only: without noise it is reset to its default, so equal errors have one spec.
    Raises ``ValueError`` for a setting outside its range, naming it and what is accepted.
    """

    noise: float = 0.0  # std of log(noisy / true), in [0, 1]
    grain: int = 16  # pixels per cell of the noise field, in [1, 64]; 1: per-pixel independent noise
    bias: float = 1.0  # global scale, in [0.25, 4]; 1: none
    smear: int = 0  # box filter radius in pixels, in [0, 16]; 0: none
    holes: float = 0.0  # fraction of pixels without depth (NaN), in [0, 0.9]

    def __post_init__(self) -> None:
        for name, (kind, low, high, _) in _SETTINGS.items():
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or (kind is int and not isinstance(value, int)) or not low <= value <= high:
                raise _out_of_range(name, value)
            object.__setattr__(self, name, kind(value))
        if self.noise == 0.0:
            object.__setattr__(self, "grain", _DEFAULTS["grain"])  # no noise: its grain means nothing

    @property
    def spec(self) -> str:
        """The canonical spec: the settings that differ from their defaults, in a fixed order; ``""`` for none.
        ``parse_depth_errors(errors.spec) == errors``."""
        return "+".join(f"{name}={_format(getattr(self, name))}" for name in DEPTH_ERROR_KEYS
                        if getattr(self, name) != _DEFAULTS[name])

    @property
    def is_exact(self) -> bool:
        """Whether these errors leave depth as it is (the truth)."""
        return self.noise == 0.0 and self.bias == 1.0 and self.smear == 0 and self.holes == 0.0

    def apply(self, depth: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """True metric depth (H, W) > 0 with these errors: smear, then bias, then noise, then holes (NaN).

        Random draws come from ``generator`` only (the same seed gives the same errors), each error from a stream
        of its own, so the holes of ``holes=0.1`` are those of ``noise=0.1+holes=0.1``. Exact errors return
        ``depth`` itself. Returns (H, W) float32.
        """
        depth = check_depth(depth, "true depth")  # (H, W) float32
        if not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator (seeded, so errors repeat), "
                             f"got {type(generator).__name__}")
        if self.is_exact:
            return depth
        height, width = depth.shape
        if height < 2 or width < 2:
            raise ValueError(f"depth errors need a depth map of at least 2x2 pixels, got {height}x{width}")
        seeds = torch.randint(0, 2**62, (2,), generator=generator).tolist()  # one stream per random error
        noise_stream, hole_stream = (torch.Generator().manual_seed(seed) for seed in seeds)
        out = smear_depth(depth, self.smear)[0]  # (H, W)
        if self.bias != 1.0:
            out = out * self.bias
        if self.noise > 0.0:
            out = out * torch.exp(self.noise * smooth_field(height, width, self.grain, noise_stream))
        if self.holes > 0.0:
            out = out.masked_fill(_hole_mask(height, width, self.holes, hole_stream), float("nan"))
        return out


_DEFAULTS = {f.name: f.default for f in fields(DepthErrors)}


def parse_depth_errors(spec: str) -> DepthErrors:
    """The errors a spec names: ``key=value`` settings joined by ``+`` (keys ``noise``, ``grain``, ``bias``,
    ``smear``, ``holes``; each at most once, in any order); ``""`` is the exact truth.

    Raises ``ValueError`` for a malformed token, an unknown or repeated key, or a value of the wrong type or range,
    saying what is accepted.
    """
    if not isinstance(spec, str):
        raise ValueError(f"depth_errors must be a spec string such as {_EXAMPLE}; got {type(spec).__name__}")
    if not spec.strip():
        return DepthErrors()
    values: dict[str, int | float] = {}
    for token in spec.split("+"):
        key, equals, text = (part.strip() for part in token.partition("="))
        if not equals or not key or not text:
            raise ValueError(f"depth_errors: malformed setting {token.strip()!r} in {spec!r}; accepted: key=value "
                             f"settings joined by '+', keys {', '.join(DEPTH_ERROR_KEYS)}, e.g. {_EXAMPLE}")
        if key not in _SETTINGS:
            raise ValueError(f"depth_errors: unknown setting {key!r} in {spec!r}; "
                             f"accepted: {', '.join(DEPTH_ERROR_KEYS)}")
        if key in values:
            raise ValueError(f"depth_errors: {key} is given twice in {spec!r}; accepted: each setting at most once")
        try:
            values[key] = _SETTINGS[key][0](text)  # int or float
        except ValueError:
            raise _out_of_range(key, text) from None
    return DepthErrors(**values)


def smooth_field(height: int, width: int, grain: int, generator: torch.Generator) -> torch.Tensor:
    """A spatially smooth random field (H, W) with mean 0 and std 1 over the image, measured: standard normal
    values on a grid of (H / grain, W / grain) cells (at least 2 x 2), upsampled bilinearly. ``grain`` 1 gives
    independent values per pixel."""
    grid = (max(2, math.ceil(height / grain)), max(2, math.ceil(width / grain)))
    coarse = torch.randn(1, 1, *grid, generator=generator)  # (1, 1, h, w)
    if grid != (height, width):
        coarse = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    field = coarse[0, 0] - coarse.mean()  # (H, W)
    return field / field.std(correction=0)


def _hole_mask(height: int, width: int, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """(H, W) bool: the ``round(fraction * H * W)`` pixels where a coarse random field is highest (blobs)."""
    field = smooth_field(height, width, HOLE_GRAIN, generator).reshape(-1)  # [H*W]
    mask = torch.zeros(height * width, dtype=torch.bool)
    mask[field.topk(round(fraction * height * width)).indices] = True  # thresholded at its quantile, exactly
    return mask.reshape(height, width)


def smear_depth(depth: torch.Tensor, radius: int) -> tuple[torch.Tensor, int]:
    """Depth (H, W) smeared across its edges as a monocular estimator smears them: the mean of the
    (2 * radius + 1)^2 pixels around each (replicated at the border). A plane changes little; at a depth edge the
    filter leaves in-between ("flying") depths. Returns the smeared depth (H, W) and how many pixels it moved by
    more than ``SMEAR_MOVED`` (5%) of their depth."""
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise ValueError(f"radius must be an integer >= 0 (pixels), got {radius!r}")
    if radius == 0:
        return depth, 0
    padded = F.pad(depth[None, None], (radius, radius, radius, radius), mode="replicate")  # (1, 1, H + 2r, W + 2r)
    smeared = F.avg_pool2d(padded, kernel_size=2 * radius + 1, stride=1)[0, 0]  # (H, W)
    moved = int(((smeared - depth).abs() > SMEAR_MOVED * depth).sum())
    return smeared, moved


def depth_abs_rel(used: torch.Tensor, true: torch.Tensor) -> float:
    """Mean |used - true| / true over the pixels where ``used`` (H, W) has depth (not NaN), against the true
    depth (H, W) > 0; NaN when no pixel has depth. 0 for the truth itself."""
    if used.shape != true.shape:
        raise ValueError(f"used and true depth must have the same shape (H, W), "
                         f"got {tuple(used.shape)} and {tuple(true.shape)}")
    kept = ~torch.isnan(used)  # (H, W)
    if not kept.any():
        return math.nan
    return float(((used[kept].float() - true[kept].float()).abs() / true[kept].float()).mean())


def hole_fraction(depth: torch.Tensor) -> float:
    """The fraction of pixels of ``depth`` (H, W) without depth (NaN)."""
    return float(torch.isnan(depth).float().mean())


def _out_of_range(name: str, value: object) -> ValueError:
    """The refusal of a setting's value, saying what the setting accepts and means."""
    kind, low, high, meaning = _SETTINGS[name]
    what = "an integer" if kind is int else "a number"
    return ValueError(f"depth_errors: {name} must be {what} in [{low:g}, {high:g}] ({meaning}), got {value!r}")


def _format(value: int | float) -> str:
    """A setting as a spec writes it: integers plainly, other numbers in their shortest exact form."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
