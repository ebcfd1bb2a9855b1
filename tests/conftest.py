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


@pytest.fixture(scope="session")
def short_rollout(backbone):
    """Two steps right at 128 px, all three memories."""
    from mirage_viz.rollout import RolloutConfig, run_rollout

    return run_rollout(RolloutConfig(trajectory="move_right", steps=2, size=128, seed=3), backbone=backbone)


@pytest.fixture(scope="session")
def small_rollout(backbone):
    """Three steps left at 128 px, all three memories: what the figures, exports and inspector draw."""
    from mirage_viz.rollout import RolloutConfig, run_rollout

    return run_rollout(RolloutConfig(trajectory="move_left", steps=3, size=128, seed=1), backbone=backbone)


@pytest.fixture
def random_camera():
    """A seeded camera with a small yaw and offset, a non-square grid and an off-centre principal point."""
    from mirage_viz.geometry.cameras import Camera, Intrinsics

    def make(seed: int, width: int = 24, height: int = 16) -> Camera:
        g = torch.Generator().manual_seed(seed)
        angle = float(torch.rand(1, generator=g)) * 0.6 - 0.3
        c, s = torch.cos(torch.tensor(angle)), torch.sin(torch.tensor(angle))
        pose = torch.eye(4)
        pose[:3, :3] = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        pose[:3, 3] = torch.rand(3, generator=g) - 0.5
        return Camera(Intrinsics(fx=20.0, fy=22.0, cx=11.3, cy=7.6, width=width, height=height), pose)

    return make


@pytest.fixture(scope="module")
def served(backbone):
    """The app served on a free loopback port, for one test module: ``(demo, url)``."""
    from mirage_viz.ui.app import build_demo, launch

    demo = build_demo(max_rollouts=32)  # a module's tests keep many clients open: room for all of them
    _, url, _ = launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    yield demo, url
    demo.close()
    demo.mirage_sessions.shutdown()


@pytest.fixture(scope="module")
def app_url(served):
    return served[1]
