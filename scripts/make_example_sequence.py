"""Render the shipped example sequence: a held-out world's loop written as images with a nerfstudio transforms.json
(``mirage_viz/assets/sequences/room_loop``), the posed footage the tests, the docs and the app's examples run.

    python3 scripts/make_example_sequence.py [--out mirage_viz/assets/sequences/room_loop]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mirage_viz.geometry.cameras import Intrinsics
from mirage_viz.scenes.data import HELD_OUT_SEED_START
from mirage_viz.scenes.sequence import EXAMPLE_SEQUENCE, write_sequence
from mirage_viz.scenes.trajectories import make_trajectory
from mirage_viz.scenes.worlds import make_world

WORLD, WORLD_SEED = "room", HELD_OUT_SEED_START + 1  # no model saw it in training (scenes.data)
SIZE, STEPS, FOV = 256, 12, 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=EXAMPLE_SEQUENCE.parent)
    args = parser.parse_args()
    world = make_world(WORLD, WORLD_SEED)
    cameras = make_trajectory("loop", STEPS).cameras(Intrinsics.from_fov(SIZE, SIZE, FOV))
    world.check_cameras(cameras)
    frames = torch.stack([world.render(camera).rgb for camera in cameras])  # [N+1, 3, H, W]
    args.out.mkdir(parents=True, exist_ok=False)
    written = write_sequence(frames, cameras, args.out / "transforms.json", "nerfstudio",
                             name=f"{WORLD} world seed {WORLD_SEED}, loop")
    print(f"wrote {len(written)} files to {args.out}")


if __name__ == "__main__":
    main()
