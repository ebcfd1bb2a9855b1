"""The one way a setting is checked: a named choice from a fixed set, with one wording everywhere.

Each set of accepted values is a ``Literal`` type owned by the module whose code it selects (depth modes in
:mod:`mirage_viz.geometry.depth`, fusion modes in :mod:`mirage_viz.memories.voxel_cache`, ...), and checked there with
:func:`check_choice`; everything else asks that owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

__all__ = ["check_choice"]

T = TypeVar("T", bound=str)


def check_choice(name: str, value: object, accepted: Sequence[T]) -> T:
    """``value`` when it is one of ``accepted``; else a ``ValueError`` naming ``name``, the value and what is accepted."""
    if not isinstance(value, str) or value not in accepted:
        raise ValueError(f"unknown {name} {value!r}; accepted: {', '.join(accepted)}")
    return value  # type: ignore[return-value]  # one of ``accepted``
