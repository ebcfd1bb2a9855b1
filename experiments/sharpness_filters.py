"""What it costs to meet issue 15's sharpness bar in gradient energy (the word the bar uses; its figures were taken in
mean absolute gradient) by sharpening the frames after decoding: writes runs/sharpness_filters.json (and, with
--picture, a strip of crops to look at).

The held-out 12-step loops (`studio`, `gallery`, 256 px, seed 0) run once with "closest to the truth"; the latent
memory's generated latents are decoded with the embedded decoder moved 0, 0.6 ("sharp and close") and 1 of the way to
the sharp one, then each post-filter runs on the decoded frames: an unsharp mask, a shock filter (Osher and Rudin
1990) and a toggle filter (Kramer and Bruckner 1975). Per row: the mean PSNR over the generated steps and the three
sharpness measures of :data:`mirage_viz.metrics.SHARPNESS_MEASURES`, each relative to the truth.

    python experiments/sharpness_filters.py                    # about 2 minutes on 2 CPU cores
    python experiments/sharpness_filters.py --picture runs/sharpness_filters.png
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from mirage_viz.backbone import load_embedded_backbone
from mirage_viz.image import gaussian_blur, to_uint8_image
from mirage_viz.metrics import SHARPNESS_MEASURES, psnr, sharpness_ratios
from mirage_viz.rollout import MEMORY_SETTINGS, RolloutConfig, run_rollout

HELD_OUT_WORLDS = ("studio", "gallery")
DECODER_AMOUNTS = (0.0, 0.6, 1.0)


def luminance(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W): the mean of the colour channels."""
    return images.mean(1, keepdim=True)


def unsharp_mask(images: torch.Tensor, sigma: float, amount: float) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] plus ``amount`` times their difference from a Gaussian blur of ``sigma`` px, clipped."""
    return (images + amount * (images - gaussian_blur(images, sigma))).clamp(0, 1)


def toggle_filter(images: torch.Tensor, passes: int = 1, size: int = 3) -> torch.Tensor:
    """(B, 3, H, W): each pixel takes the colour of its ``size`` x ``size`` window's darkest or brightest pixel, whichever
    is nearer in luminance (Kramer and Bruckner's toggle, the window's extremes picked by luminance so colours stay
    whole), ``passes`` times. A ramp becomes a step; a flat image stays flat."""
    pad = size // 2
    for _ in range(passes):
        batch, _, height, width = images.shape
        padded = F.pad(images, (pad,) * 4, mode="replicate")
        windows = F.unfold(padded, size).view(batch, 3, size * size, height, width)  # (B, 3, K, H, W)
        window_lum = windows.mean(1)  # (B, K, H, W)
        darkest, brightest = window_lum.argmin(1, keepdim=True), window_lum.argmax(1, keepdim=True)  # (B, 1, H, W)
        own = luminance(images)
        nearer_dark = own - window_lum.gather(1, darkest) < window_lum.gather(1, brightest) - own
        pick = torch.where(nearer_dark, darkest, brightest)  # (B, 1, H, W)
        images = windows.gather(2, pick[:, None].expand(-1, 3, 1, -1, -1)).squeeze(2)
    return images


def shock_filter(images: torch.Tensor, iterations: int, step: float = 0.25, sigma: float = 1.0) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] after ``iterations`` explicit steps of the shock filter u_t = -sign(lap(G * u)) |grad u|
    (upwind differences; the sign from the blurred luminance's Laplacian, shared by the channels): a blurred edge
    steepens towards a step at its middle, with no overshoot."""
    laplacian = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    for _ in range(iterations):
        sign = torch.sign(F.conv2d(F.pad(luminance(gaussian_blur(images, sigma)), (1,) * 4, mode="replicate"), laplacian))
        padded = F.pad(images, (1,) * 4, mode="replicate")
        centre = padded[..., 1:-1, 1:-1]
        forward_x, backward_x = padded[..., 1:-1, 2:] - centre, centre - padded[..., 1:-1, :-2]
        forward_y, backward_y = padded[..., 2:, 1:-1] - centre, centre - padded[..., :-2, 1:-1]
        # erosion where the Laplacian is positive (the dark side of an edge), dilation where it is negative
        erode = (forward_x.clamp(max=0) ** 2 + backward_x.clamp(min=0) ** 2
                 + forward_y.clamp(max=0) ** 2 + backward_y.clamp(min=0) ** 2).sqrt()
        dilate = (forward_x.clamp(min=0) ** 2 + backward_x.clamp(max=0) ** 2
                  + forward_y.clamp(min=0) ** 2 + backward_y.clamp(max=0) ** 2).sqrt()
        images = (images - step * (sign.clamp(min=0) * erode - (-sign).clamp(min=0) * dilate)).clamp(0, 1)
    return images


FILTERS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda images: images,
    "unsharp 1 px x 1": lambda images: unsharp_mask(images, 1.0, 1.0),
    "unsharp 1 px x 2": lambda images: unsharp_mask(images, 1.0, 2.0),
    "shock x 6": lambda images: shock_filter(images, 6),
    "shock x 12": lambda images: shock_filter(images, 12),
    "toggle 3x3 x 1": lambda images: toggle_filter(images, 1),
    "toggle 3x3 x 2": lambda images: toggle_filter(images, 2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("runs/sharpness_filters.json"))
    parser.add_argument("--picture", type=Path, default=None, help="a PNG of 96 px crops of one frame through each filter")
    args = parser.parse_args()
    backbone = load_embedded_backbone()
    latents, truths = [], []  # the latent memory's generated steps of each world: (N, C, h, w), (N, 3, H, W)
    for world in HELD_OUT_WORLDS:
        config = RolloutConfig(world=world, trajectory="loop", steps=args.steps, size=args.size, seed=0,
                               **MEMORY_SETTINGS["closest to the truth"])
        records = run_rollout(config, backbone=backbone).records["latent"][1:]
        latents.append(torch.stack([r.generated_latent for r in records]))
        truths.append(torch.stack([r.true_frame for r in records]))
    latent, truth = torch.cat(latents), torch.cat(truths)
    rows: dict[str, dict[str, float]] = {}
    strip: list[torch.Tensor] = [truth[len(truth) // 4]]  # a studio frame halfway out, for the picture
    for amount in DECODER_AMOUNTS:
        with torch.no_grad():
            decoded = backbone.with_decoder_sharpness(amount).decode(latent).clamp(0, 1)
        for name, post_filter in FILTERS.items():
            frames = post_filter(decoded)
            ratios = [sharpness_ratios(frame, true) for frame, true in zip(frames, truth)]
            rows[f"decoder sharpness {amount}, {name}"] = {
                "mean_psnr": round(statistics.fmean(psnr(frame, true) for frame, true in zip(frames, truth)), 3),
                **{key: round(statistics.fmean(r[key] for r in ratios), 4) for key in SHARPNESS_MEASURES}}
            if amount == 0.0:
                strip.append(frames[len(frames) // 4])
    print(f"{'decoder, filter':>40}  mean dB  energy  mean abs  length")
    for name, row in rows.items():
        print(f"{name:>40}  {row['mean_psnr']:7.2f}  {row['sharpness']:6.3f}  {row['sharpness_mean_abs']:8.3f}  "
              f"{row['sharpness_length']:6.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"worlds": HELD_OUT_WORLDS, "steps": args.steps, "size": args.size,
                                    "setting": "closest to the truth", "frames": len(truth), "rows": rows}, indent=1))
    print(f"wrote {args.out}")
    if args.picture is not None:  # truth, then each filter on the plain decoder: a 96 px crop of the middle, 3x
        middle = slice(args.size // 2 - 48, args.size // 2 + 48)
        crops = torch.cat([image[:, middle, middle] for image in strip], -1)
        picture = Image.fromarray(to_uint8_image(crops))
        picture.resize((picture.width * 3, picture.height * 3), Image.NEAREST).save(args.picture)
        print(f"wrote {args.picture}: the truth, then {', '.join(FILTERS)}")


if __name__ == "__main__":
    main()
