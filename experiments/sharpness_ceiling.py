"""How much of the truth's sharpness (gradient energy) any decoder could keep: writes runs/sharpness_ceiling.json.

Held-out views (worlds the models never saw, 256 px) against themselves blurred by a Gaussian of a fraction of a
pixel, downsampled 8x and upsampled again, and through each shipped VAE (encode, decode).

    python experiments/sharpness_ceiling.py          # about 20 seconds on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from mirage_viz.backbone import ASSETS_DIR
from mirage_viz.image import gaussian_blur
from mirage_viz.metrics import gradient_energy, psnr
from mirage_viz.models.vae import decode_latents, encode_images, load_vae
from mirage_viz.scenes.data import HELD_OUT_SEED_START, render_views


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=4, help="views per held-out world (4 worlds)")
    parser.add_argument("--out", type=Path, default=Path("runs/sharpness_ceiling.json"))
    args = parser.parse_args()
    truth = render_views(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + 4), args.views, 256, rng_seed=1).float() / 255
    energy = gradient_energy(truth)
    rows: dict[str, dict] = {}
    for sigma in (0.5, 0.75, 1.0, 2.0):
        blurred = gaussian_blur(truth, sigma)
        rows[f"gaussian blur {sigma} px"] = {"sharpness": gradient_energy(blurred) / energy, "psnr_db": psnr(blurred, truth)}
    cells = F.interpolate(F.avg_pool2d(truth, 8), scale_factor=8, mode="bilinear")
    rows["8x8 cell means, bilinear"] = {"sharpness": gradient_energy(cells) / energy, "psnr_db": psnr(cells, truth)}
    for name in ("vae", "vae_sharp"):
        vae = load_vae(ASSETS_DIR / name)
        with torch.no_grad():
            decoded = torch.cat([decode_latents(vae, encode_images(vae, chunk)) for chunk in truth.split(8)])
        rows[f"shipped {name}"] = {"sharpness": gradient_energy(decoded) / energy, "psnr_db": psnr(decoded, truth)}
    rows = {k: {m: round(v, 4) for m, v in row.items()} for k, row in rows.items()}
    for name, row in rows.items():
        print(f"{name:>26}: sharpness {row['sharpness']:.3f}, {row['psnr_db']:.2f} dB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"views": len(truth), "size": 256, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
