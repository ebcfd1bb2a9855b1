"""Synthetic training and evaluation views, shared by the training scripts and the tests.

World seeds are split so that held-out numbers are honest: training uses seeds below
``HELD_OUT_SEED_START``, evaluation uses seeds from it on.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mirage_viz.geometry.cameras import Camera, Intrinsics
from mirage_viz.geometry.projection import make_pose, rotation_x, rotation_y
from mirage_viz.scenes.worlds import SyntheticWorld

__all__ = ["HELD_OUT_SEED_START", "random_camera", "nearby_camera", "render_views"]

HELD_OUT_SEED_START = 5000


def _pose(position: np.ndarray, yaw: float, pitch: float) -> torch.Tensor:
    """camera_to_world (4, 4) float32: yaw about world y (down), then pitch about the camera x axis."""
    return make_pose(rotation_y(yaw) @ rotation_x(pitch), torch.from_numpy(np.asarray(position, dtype=np.float64))).float()


def random_camera(world: SyntheticWorld, rng: np.random.Generator, intrinsics: Intrinsics) -> Camera:
    """A camera inside ``world``'s free space (in front of the back wall, behind the objects)."""
    position = np.array(
        [
            rng.uniform(-world.half_width + 0.7, world.half_width - 0.7),
            rng.uniform(-0.7, 0.7),
            rng.uniform(world.back + 0.6, 0.7),
        ]
    )
    yaw = rng.uniform(-1.2, 1.2) if rng.random() < 0.85 else rng.uniform(-math.pi, math.pi)
    return Camera(intrinsics, _pose(position, yaw, rng.uniform(-0.25, 0.25)))


def nearby_camera(camera: Camera, rng: np.random.Generator, max_shift: float = 0.5, max_angle: float = 0.3) -> Camera:
    """``camera`` moved by up to ``max_shift`` metres and turned by up to ``max_angle`` radians."""
    delta = _pose(rng.uniform(-max_shift, max_shift, size=3) * np.array([1.0, 0.5, 1.0]),
                  rng.uniform(-max_angle, max_angle), rng.uniform(-max_angle, max_angle) * 0.3)
    return Camera(camera.intrinsics, camera.camera_to_world @ delta)


def render_views(seeds: range | list[int], views_per_world: int, size: int, rng_seed: int = 0) -> torch.Tensor:
    """Render random views of worlds ``seeds``: uint8 (N, 3, size, size)."""
    rng = np.random.default_rng(rng_seed)
    intrinsics = Intrinsics.from_fov(size, size, 60.0)
    images = []
    for seed in seeds:
        world = SyntheticWorld(name="train", seed=int(seed))
        for _ in range(views_per_world):
            rgb = world.render(random_camera(world, rng, intrinsics)).rgb
            images.append((rgb * 255).round().to(torch.uint8))
    return torch.stack(images)
