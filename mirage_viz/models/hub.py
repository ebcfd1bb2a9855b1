"""Loading models by id, from a folder or the Hugging Face Hub, without ever hanging or trusting a visitor.

A model id is either a local folder (saved with ``save_pretrained``) or a hub id (``owner/name``). Before a
hub id is fetched, one short TCP connection checks that the hub answers; when it does not (offline machines,
``HF_HUB_OFFLINE=1``), only the local cache is tried, so a missing model fails in a second with a message
saying so instead of retrying for half a minute.

Who may name what is one decision, :class:`ModelAccess`: the CLI and the Python API (the machine's owner)
load any folder or hub id; the app's visitors load hub ids only (fetched into the hub cache as safetensors,
then loaded from there, so a hub-id-shaped text never reaches a local path) or folders inside the ones
whoever started the server allowed. A visitor's local path is refused with one message whether or not it exists.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import torch

__all__ = ["ModelAccess", "ModelKind", "ModelSource", "check_hub_id", "hub_reachable",
           "pretrained_kwargs", "pick_device"]

ModelKind = Literal["vae", "generator", "depth model"]
MAX_MODEL_ID_CHARS = 1024  # a folder path or a hub id; longer text is refused before touching the filesystem
# what a visitor's hub id may bring into the cache: configs, tokenizer files and safetensors weights (no pickles)
_VISITOR_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors"]


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout_s: float = 2.0) -> bool:
    """Whether the hub's host accepts a TCP connection within ``timeout_s`` (checked once per process)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def _is_folder(value: str | Path) -> bool:
    """``Path(value).is_dir()`` that answers False for text no filesystem accepts (too long, NUL bytes)."""
    try:
        return Path(value).is_dir()
    except (OSError, ValueError):
        return False


def check_hub_id(value: str, kind: str = "model", or_folder: bool = False) -> str:
    """``value`` if it has the form of a hub id (``name`` or ``owner/name``), else ``ValueError`` saying what is accepted."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(value)
    except HFValidationError:
        shown = value if len(value) <= 80 else value[:77] + "..."
        what = "neither a model folder nor a hub id" if or_folder else "not a hub id"
        raise ValueError(f"{kind} {shown!r} is {what}; accepted: {'a folder saved with save_pretrained, or ' if or_folder else ''}"
                         "owner/name of letters, digits, '-', '_' and '.', at most 96 characters, without '--' or '..'") from None
    return value


@dataclass(frozen=True)
class ModelSource:
    """A model to load: ``location`` is what ``from_pretrained`` gets (a folder, or a hub id when trusted)."""

    name: str  # as the user gave it: shown in names and messages
    location: str
    is_folder: bool
    visitor: bool = False  # a visitor's hub id: fetched into the cache and loaded from there (safetensors only)

    def fetch(self, kind: ModelKind) -> str:
        """The folder or id to hand to ``from_pretrained``; a visitor's hub id is fetched (or found in the cache) first."""
        if not self.visitor or self.is_folder:
            return self.location
        offline = not hub_reachable()
        if kind == "generator":
            from diffusers import DiffusionPipeline

            return str(DiffusionPipeline.download(self.location, use_safetensors=True, local_files_only=offline))
        from huggingface_hub import snapshot_download

        return snapshot_download(self.location, allow_patterns=_VISITOR_PATTERNS, local_files_only=offline)


@dataclass(frozen=True)
class ModelAccess:
    """Which models may be named: ``folders=None`` any folder or hub id; else hub ids and folders inside ``folders``."""

    folders: tuple[Path, ...] | None = None

    @classmethod
    def for_visitors(cls, folders: Sequence[str | Path] = ()) -> ModelAccess:
        return cls(tuple(Path(os.path.realpath(f)) for f in folders))

    def resolve(self, value: str | Path, kind: ModelKind) -> ModelSource:
        """The source ``value`` names, or ``ValueError`` (a visitor's local path: one message, exists or not)."""
        text = str(value).strip()
        if not text or len(text) > MAX_MODEL_ID_CHARS or "\x00" in text:
            raise ValueError(f"{kind}: give a hub id (owner/name) or a model folder of at most {MAX_MODEL_ID_CHARS} characters")
        if self.folders is None:  # the owner: folders first, as from_pretrained does
            if _is_folder(text):
                return ModelSource(text, text, is_folder=True)
            return ModelSource(text, check_hub_id(text, kind, or_folder=True), is_folder=False)
        try:
            return ModelSource(text, check_hub_id(text, kind), is_folder=False, visitor=True)
        except ValueError:
            pass
        real = Path(os.path.realpath(text)) if os.path.isabs(text) else None
        if real is not None and any(real == f or f in real.parents for f in self.folders) and _is_folder(real):
            return ModelSource(text, str(real), is_folder=True, visitor=True)
        allowed = f", or a folder inside {', '.join(map(str, self.folders))}" if self.folders else ""
        raise ValueError(f"{kind} {text[:80]!r} cannot be loaded here: this app loads models by hub id "
                         f"(owner/name, e.g. madebyollin/taesd){allowed}")


def pretrained_kwargs(model_id: str | Path) -> dict:
    """Extra ``from_pretrained`` arguments: cache-only when ``model_id`` is a hub id and the hub is unreachable."""
    if _is_folder(model_id) or hub_reachable():
        return {}
    return {"local_files_only": True}


def describe_failure(kind: str, source: ModelSource, error: BaseException) -> str:
    """One line for a model that could not be loaded: which, from where, and why."""
    where = "folder" if source.is_folder else "hub id"
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    reason = reason.split(". ")[0].rstrip(".")  # the first sentence: hub libraries append paragraphs of advice
    offline = "" if source.is_folder or hub_reachable() else " (the hub cannot be reached from here and it is not in the local cache)"
    return f"{kind} {source.name!r} ({where}) could not be loaded{offline}: {reason[:300]}"


def pick_device(device: str | None = None) -> tuple[torch.device, torch.dtype]:
    """``"auto"`` (or None): CUDA with float16 when present, else the CPU with float32; or ``"cpu"`` / ``"cuda[:N]"``."""
    name = (device or "auto").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu"), torch.float32
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but this machine has no CUDA GPU; accepted here: auto, cpu")
        if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return torch.device(name), torch.float16
    raise ValueError(f"unknown device {device!r}; accepted: auto, cpu, cuda, cuda:N")
