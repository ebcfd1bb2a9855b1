"""The inspector notebook in a real JupyterLab: headless chromium opens it, runs every cell, sees the slider and the
plotly figures drawn by their front-end extensions (not their text repr), and moves the slider.

A widget whose JupyterLab extension is missing shows as its text repr (``VBox(children=(IntSlider(...``), which
nbclient alone cannot tell from a working one; this test can.
"""

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil  # the test extra: ends the server's kernels, which run in sessions of their own
import pytest

pytestmark = pytest.mark.slow  # runs the app, a browser, a kernel or a build: the full tier only

playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian chromium is not installed (scripts/setup.sh installs it)", allow_module_level=True)
if importlib.util.find_spec("jupyterlab") is None:
    pytest.skip("JupyterLab is not installed (scripts/setup.sh installs the `notebooks` extra)", allow_module_level=True)


NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02_inspect_rollout.ipynb"
FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 90
RUN_ALL_TIMEOUT_MS = 300_000  # the notebook runs a 6-step rollout of three memories and writes a GIF, on 2 cores
# In the test's isolated config and settings folders: no "Build Recommended" dialog (dash, which open3d brings,
# leaves a source extension that asks for a rebuild; the prebuilt extensions need none) and no news toast.
CONFIG = {"labconfig/page_config.json": '{"buildCheck": false, "buildAvailable": false}'}
SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings": '{"fetchNews": "false"}'}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


def stop(process: subprocess.Popen) -> None:
    """End the server and every process it started (kernels run in sessions of their own)."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a free loopback port, no token, rooted in a tmp folder holding a copy of the notebook;
    its config, data, runtime, settings, workspaces and the kernel's IPython and temp folders isolated in tmp."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)  # the kernel runs in root: nothing is written into the repo
    folders = {name: base / name for name in ("config", "data", "runtime", "settings", "workspaces", "ipython", "tmp")}
    for folder in folders.values():
        folder.mkdir()
    for folder, files in ((folders["config"], CONFIG), (folders["settings"], SETTINGS)):
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
    env = dict(os.environ,
               JUPYTER_CONFIG_DIR=str(folders["config"]),
               JUPYTER_DATA_DIR=str(folders["data"]),  # sys.prefix/share/jupyter (the lab extensions) stays on the path
               JUPYTER_RUNTIME_DIR=str(folders["runtime"]),
               JUPYTERLAB_SETTINGS_DIR=str(folders["settings"]),
               JUPYTERLAB_WORKSPACES_DIR=str(folders["workspaces"]),
               IPYTHONDIR=str(folders["ipython"]),
               TMPDIR=str(folders["tmp"]))  # the notebook's exports go to tempfile.mkdtemp()
    log = base / "server.log"
    for attempt in range(3):  # the free port may be taken between the probe and the server's bind
        port = free_port()
        command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
                   "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
                   "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
                   "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run JupyterLab's own commands
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        with open(log, "ab") as out:
            server = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        if server.poll() is None and time.monotonic() < deadline:
            break
        stop(server)
        if "already in use" not in log_tail(log) or attempt == 2:
            pytest.fail(f"JupyterLab did not answer on {url} within {START_TIMEOUT_S} s "
                        f"(exit code {server.returncode}); the end of its log:\n{log_tail(log)}")
    try:
        yield {"url": url, "log": log}
    finally:
        stop(server)


PANEL_JS = f"[...(window.jupyterapp?.shell?.widgets('main') || [])].find(w => w.context?.path === '{NOTEBOOK.name}')"
KERNEL_IDLE_JS = f"""() => {{
  const panel = {PANEL_JS};
  const kernel = panel?.sessionContext?.session?.kernel;
  if (!panel?.content?.widgets?.length || kernel?.status !== 'idle' || kernel?.connectionStatus !== 'connected') return false;
  window.jupyterapp.shell.activateById(panel.id);  // Run All acts on the current notebook
  return window.jupyterapp.shell.currentWidget === panel && document.querySelectorAll('.jp-Dialog').length === 0;
}}"""

RUN_ALL_JS = """() => {
  window.mirageRunAll = undefined;
  window.jupyterapp.commands.execute('notebook:run-all-cells')
    .then(ok => { window.mirageRunAll = String(ok); }, error => { window.mirageRunAll = 'failed: ' + error; });
}"""

# The inspector's output: the code cell that shows ``inspector``; what its output area draws.
INSPECTOR_JS = """() => {
  const cell = [...document.querySelectorAll('.jp-CodeCell')]
    .find(c => (c.querySelector('.jp-InputArea')?.textContent || '').includes('inspector = inspect(rollout)'));
  if (!cell) return null;
  const out = cell.querySelector('.jp-OutputArea');
  const plots = [...out.querySelectorAll('.js-plotly-plot')];
  const range = out.querySelector('.widget-slider .noUi-handle[role="slider"], .widget-slider input[type="range"]');
  return {
    text: out.innerText,
    sliders: out.querySelectorAll('.widget-slider').length,
    handle: range ? {now: range.getAttribute('aria-valuenow'), max: range.getAttribute('aria-valuemax'),
                     width: range.getBoundingClientRect().width} : null,
    readout: out.querySelector('.widget-slider .widget-readout')?.textContent?.trim() ?? null,
    plots: plots.length,
    drawn: plots.filter(p => p.querySelector('.main-svg') && p.getBoundingClientRect().width > 100).length,
    traces: plots.map(p => p.querySelectorAll('.trace, .scatterlayer path, .gl-container canvas, .imagelayer image').length),
    titles: [...out.querySelectorAll('.js-plotly-plot .gtitle')].map(e => e.textContent),
    view: [...out.querySelectorAll('.widget-html .mv-title, .widget-html h4')].map(e => e.textContent).slice(0, 1),
    images: [...out.querySelectorAll('.widget-html img')].map(e => [e.naturalWidth, e.src.slice(-48)]),
  };
}"""

TEXT_REPR = r"VBox\(|IntSlider\(|HTML\(value=|FigureWidget\(|Figure\(\{"
TEXT_REPR_JS = "/" + TEXT_REPR.replace("/", "\\/") + "/"

# Error outputs in the notebook's model, and any traceback printed to a cell's stderr.
ERRORS_JS = f"""() => [
  ...{PANEL_JS}.content.model.sharedModel.cells.flatMap(c => (c.toJSON().outputs || [])
    .filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)),
  ...[...document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(e => e.innerText).filter(t => t.includes('Traceback'))]"""


def wait_inspector(page, condition: str, timeout_ms: int = 60_000) -> None:
    """Wait until ``condition`` (JavaScript on ``s``, the inspector's state) holds; else fail showing the state."""
    try:
        page.wait_for_function(f"() => {{ const s = window.mirageInspector(); return Boolean(s && ({condition})) }}",
                               timeout=timeout_ms, polling=250)
    except playwright_sync.TimeoutError:
        state = page.evaluate("() => window.mirageInspector()")
        pytest.fail(f"the inspector's output never showed {condition!r} in {timeout_ms / 1000:.0f} s; it shows "
                    f"{ {k: v for k, v in (state or {}).items() if k != 'images'} }")


def test_jupyterlab_runs_the_inspector_notebook_draws_its_widgets_and_the_slider_moves_them(lab, tmp_path):
    started = time.monotonic()
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{lab['url']}/lab/tree/{NOTEBOOK.name}")
            try:
                page.wait_for_function(KERNEL_IDLE_JS, timeout=120_000, polling=250)
            except playwright_sync.TimeoutError:
                pytest.fail(f"the notebook's kernel never became idle; the server's log:\n{log_tail(lab['log'])}")
            page.evaluate(RUN_ALL_JS)  # JupyterLab's Run > Run All Cells
            page.wait_for_function("() => window.mirageRunAll !== undefined", timeout=RUN_ALL_TIMEOUT_MS, polling=500)
            ran = page.evaluate("() => window.mirageRunAll")
            errors = page.evaluate(ERRORS_JS)
            assert ran == "true" and not errors, (ran, errors, log_tail(lab["log"]))
            run_all_s = time.monotonic() - started

            # The inspector drawn: a slider at step 3 (the notebook moves it there from code), its plotly figures
            # (the caches in 3D, the charts over steps) and the step view, all rendered by the lab extensions.
            inspector_cell = page.locator(".jp-CodeCell", has_text="inspector = inspect(rollout)")
            inspector_cell.scroll_into_view_if_needed()
            page.evaluate(f"() => {{ window.mirageInspector = {INSPECTOR_JS}; }}")
            wait_inspector(page, f"{TEXT_REPR_JS}.test(s.text) || "
                           "s.sliders === 1 && s.drawn >= 2 && s.titles.includes('Step 3: the caches in 3D')")
            before = page.evaluate(INSPECTOR_JS)
            # a widget without its front end shows as its text repr: VBox(children=(IntSlider(value=3, ...
            assert not re.search(TEXT_REPR, before["text"]), before["text"][:300]
            assert before["handle"] and before["handle"]["now"] in ("3", "3.0") and before["handle"]["width"] > 0, before
            assert before["readout"] == "3", before
            # the caches in 3D, the charts and the picture a click traces
            assert before["plots"] == 3 and all(count > 0 for count in before["traces"]), before
            assert "Step 3: the caches in 3D" in before["titles"], before["titles"]
            assert before["view"] and before["view"][0].startswith("Step 3 of 6"), before["view"]
            assert len(before["images"]) == 11 and min(w for w, _ in before["images"]) > 0, before["images"]  # decoded
            inspector_cell.evaluate("e => e.scrollIntoView({block: 'start'})")  # the slider and the step view
            page.screenshot(path=str(tmp_path / "lab_1280x800.png"))
            inspector_cell.locator(".js-plotly-plot").first.evaluate("e => e.scrollIntoView({block: 'start'})")
            page.screenshot(path=str(tmp_path / "lab_figures_1280x800.png"))  # the caches in 3D, the charts

            # Move the slider from the keyboard as a user would: every panel redraws for step 2.
            handle = inspector_cell.locator(".widget-slider .noUi-handle").first
            handle.focus()
            handle.press("ArrowLeft")
            wait_inspector(page, "s.titles.includes('Step 2: the caches in 3D') && s.view[0]?.startsWith('Step 2 of 6')")
            after = page.evaluate(INSPECTOR_JS)
            assert after["readout"] == "2" and after["drawn"] >= 2 and all(count > 0 for count in after["traces"]), after
            assert after["images"] != before["images"]  # new frames, not only new titles
            assert not page.evaluate(ERRORS_JS)
            # and the notebook's static plotly figure (the charts over steps) is drawn too: four plots in all
            assert page.locator(".jp-OutputArea .js-plotly-plot .main-svg").count() >= 4
            page.screenshot(path=str(tmp_path / "lab_after_slider_1280x800.png"))
        finally:
            browser.close()
    elapsed = time.monotonic() - started
    print(f"JupyterLab: open and Run All {run_all_s:.1f} s, whole test {elapsed:.1f} s")
