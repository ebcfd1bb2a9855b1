"""The package works wherever it is installed: a wheel carries its models, photos and shipped bench, and runs
from a folder outside the checkout; ``python -m mirage_viz`` is the CLI; the Space metadata pins what the tests ran."""

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the app, a browser, a kernel or a build: the full tier only

ROOT = Path(__file__).resolve().parent.parent


def run(command: list[str], cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def test_the_wheel_holds_the_models_and_runs_outside_the_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
        cwd=tmp_path)
    wheel = next(wheels.glob("mirage_viz-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for needed in ("mirage_viz/assets/vae/diffusion_pytorch_model.safetensors", "mirage_viz/assets/depth/config.json",
                   "mirage_viz/assets/vae_sharp/diffusion_pytorch_model.safetensors",
                   "mirage_viz/assets/denoiser/unet/diffusion_pytorch_model.safetensors",
                   "mirage_viz/assets/photos/chelsea.png", "mirage_viz/assets/bench/bench.json", "mirage_viz/py.typed"):
        assert needed in names, needed
    # A fresh environment that sees the installed dependencies, with the wheel as its only mirage_viz
    environment = tmp_path / "env"
    venv.create(environment, system_site_packages=True, with_pip=False)
    python = str(environment / "bin" / "python")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", str(wheel)], cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    where = run([python, "-c", "import mirage_viz, mirage_viz.backbone as b; print(mirage_viz.__file__); "
                 "print(b.ASSETS_DIR)"], cwd=elsewhere, env=env).stdout.split()
    assert all(str(environment) in line and str(ROOT) not in line for line in where), where
    out = elsewhere / "out"
    run([python, "-m", "mirage_viz", "rollout", "--steps", "2", "--size", "64", "--trajectory", "push_in", "--out",
         str(out)], cwd=elsewhere, env=env)
    assert (out / "summary.json").is_file()
    run([python, "-c", "import mirage_viz.ui.app as app; assert app.SHIPPED_BENCH.is_file(); "
         "assert app.EXAMPLES[-1][-1].startswith(%r)" % str(environment)], cwd=elsewhere, env=env)


def test_python_dash_m_is_the_cli(tmp_path):
    result = run([sys.executable, "-m", "mirage_viz", "--help"], cwd=tmp_path)
    assert "rollout" in result.stdout and "bench" in result.stdout


def front_matter() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n"), "README.md must start with the Space's front matter"
    block = text.split("---\n", 2)[1]
    return {key.strip(): value.strip().strip('"') for key, value in (line.split(":", 1) for line in block.splitlines() if ":" in line)}


def test_the_space_metadata_pins_the_gradio_and_python_the_tests_ran_with():
    gradio = pytest.importorskip("gradio")
    meta = front_matter()
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["sdk_version"] == gradio.__version__, "README's sdk_version must be the Gradio the tests ran with"
    assert meta["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
