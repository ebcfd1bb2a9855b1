import importlib.util
import os
from pathlib import Path

import pytest
import torch

# Nothing here may reach a model hub: every model is shipped or built by the tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def backbone():
    from mirage_viz.backbone import load_embedded_backbone

    return load_embedded_backbone()


@pytest.fixture
def load_script():
    """Import one of ``scripts/*.py`` by name (the scripts are not a package)."""
    def load(name: str):
        path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
