"""Loading models by id, from a folder or the Hugging Face Hub, without ever hanging.

A model id is either a local folder (saved with ``save_pretrained``) or a hub id. Before a hub id is
fetched, one short TCP connection checks that the hub answers; when it does not (offline machines,
``HF_HUB_OFFLINE=1``), only the local cache is tried, so a missing model fails in a second with a
message saying so instead of retrying for half a minute.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch

__all__ = ["HubUnavailable", "hub_reachable", "pretrained_kwargs", "pick_device"]


class HubUnavailable(ValueError):
    """A model id could not be loaded (not a folder, not cached, and the hub is unreachable)."""


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


def pretrained_kwargs(model_id: str | Path) -> dict:
    """Extra ``from_pretrained`` arguments: cache-only when ``model_id`` is a hub id and the hub is unreachable."""
    if Path(model_id).is_dir() or hub_reachable():
        return {}
    return {"local_files_only": True}


def describe_failure(kind: str, model_id: str | Path, error: BaseException) -> str:
    """One line for a model that could not be loaded: which, from where, and why."""
    where = "folder" if Path(model_id).is_dir() else "hub id"
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    reason = reason.split(". ")[0].rstrip(".")  # the first sentence: hub libraries append paragraphs of advice
    offline = "" if Path(model_id).is_dir() or hub_reachable() else " (the hub cannot be reached from here and it is not in the local cache)"
    return f"{kind} {str(model_id)!r} ({where}) could not be loaded{offline}: {reason[:300]}"


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
