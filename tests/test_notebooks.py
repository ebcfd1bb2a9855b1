"""The notebooks run top to bottom offline."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the app, a browser, a kernel or a build: the full tier only

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_teaching_inspection_and_benchmark_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["01_latent_warping.ipynb", "02_inspect_rollout.ipynb", "03_benchmark_and_photo.ipynb", "04_sweep.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    if path.name.startswith("01"):
        assert "read: latent" in text and "cache: latent" in text and "PSNR against the true view" in text
    elif path.name.startswith("02"):
        assert "Step 3" in text and "the previewed cameras are the cameras that ran: True" in text
    elif path.name.startswith("04"):
        assert "216 runs" in text and "latent - rgb: return frame" in text and "again: 0 runs ran, 2 were finished" in text
    else:
        assert "read speedup" in text and "ratio 54.86x" in text and "depth from: embedded" in text
