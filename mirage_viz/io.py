"""Kept for code written against earlier versions: :func:`write_rollout` now lives in :mod:`mirage_viz.outputs`
(the one writer of a rollout's output folder) and :func:`to_uint8_image` in :mod:`mirage_viz.image`."""

from __future__ import annotations

from .image import to_uint8_image
from .output_dir import atomic_output_dir, check_output_dir
from .outputs import write_rollout

__all__ = ["atomic_output_dir", "check_output_dir", "to_uint8_image", "write_rollout"]
