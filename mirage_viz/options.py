"""Options owned by their layer, each written once: a field of a frozen dataclass with its default, its help text and
its check (:func:`option`). The latent memory's options live beside the memory, the sampler's beside the generator,
the decoder's with the VAE; ``RolloutConfig`` holds them as groups. The command line builds its flags from these
fields (:func:`option_specs`), so adding an option is one field and its check.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Union

__all__ = ["OptionGroup", "OptionSpec", "option", "option_specs"]


def option(default: Any, help: str, check: Callable[[Any], object] | None = None, metavar: str | None = None) -> Any:
    """A dataclass field that is a user-facing option: ``help`` is its flag's help text (one plain sentence or two),
    ``check`` raises ``ValueError`` naming the option and what is accepted."""
    return field(default=default, metadata={"help": help, "check": check, "metavar": metavar})


class OptionGroup:
    """A frozen dataclass of options. :meth:`validate` runs each field's check, then :meth:`check_together`."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad option and what is accepted."""
        for spec in fields(self):  # type: ignore[arg-type]  # subclasses are dataclasses
            check = spec.metadata.get("check")
            if check is not None:
                check(getattr(self, spec.name))
        self.check_together()

    def check_together(self) -> None:
        """Rules across fields (an option that needs another's value); none by default."""


@dataclass(frozen=True)
class OptionSpec:
    """What a command-line flag needs to know about one option."""

    name: str  # the field's name; its flag is --name-with-dashes
    kind: type  # bool, int, float or str
    default: Any
    help: str
    choices: tuple[str, ...] | None  # a Literal's values
    optional: bool  # None is accepted (the field's type is X | None)
    metavar: str | None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def option_specs(group: type[OptionGroup]) -> list[OptionSpec]:
    """The options of ``group`` (a dataclass of :func:`option` fields), in field order, with their types resolved."""
    hints = typing.get_type_hints(group)
    specs = []
    for spec in fields(group):  # type: ignore[arg-type]
        hint, optional = hints[spec.name], False
        if typing.get_origin(hint) in (Union, types.UnionType):
            args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
            hint, optional = args[0], True
        choices = typing.get_args(hint) if typing.get_origin(hint) is Literal else None
        kind = str if choices else hint
        if kind not in (bool, int, float, str):
            raise TypeError(f"{group.__name__}.{spec.name}: an option is a bool, int, float, str or Literal, got {hint}")
        specs.append(OptionSpec(spec.name, kind, spec.default, spec.metadata["help"], choices, optional,
                                spec.metadata.get("metavar")))
    return specs
