"""A real browser (Debian chromium driven by Playwright) runs an example, sees the panels update and scrubs."""

import re
import shutil

import pytest

playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not shutil.which("chromium"):
    pytest.skip("Debian chromium is not installed (scripts/setup.sh installs it)", allow_module_level=True)

from mirage_viz.app import build_demo, launch  # noqa: E402

FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def served(backbone):
    demo = build_demo()
    _, url, _ = launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield demo, url
    demo.close()
    demo.mirage_sessions.shutdown()


@pytest.fixture(scope="module")
def app_url(served):
    return served[1]


@pytest.fixture
def page(app_url):
    """A fresh chromium page on the app."""
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        yield page
        browser.close()


def test_browser_runs_an_example_sees_the_panels_and_scrubs(page):
    page.get_by_text("examples (seconds on a CPU").wait_for(timeout=30_000)
    page.get_by_text("orbit_left", exact=True).click()  # the orbit example: 6 steps at 128x128
    page.get_by_role("button", name="Run").click()
    page.get_by_text("Step 0 of").first.wait_for(timeout=60_000)
    page.get_by_text("Done:").wait_for(timeout=120_000)
    # The 3D plot and the frames are plotly figures in the page.
    assert page.locator(".js-plotly-plot .gl-container, .js-plotly-plot canvas").count() > 0
    assert page.locator(".js-plotly-plot image, .js-plotly-plot .layer-above image").count() >= 3
    title_before = page.locator(".js-plotly-plot .gtitle").all_text_contents()
    assert any(t.startswith("Step 6") for t in title_before)
    # Scrub: drag the step slider to its start; every panel redraws for step 0.
    slider = page.locator("input[type='range'][aria-label='range slider for step']")
    assert slider.is_enabled()
    slider.fill("0")  # sets the value as a drag would, then lets go of the handle
    slider.dispatch_event("pointerup")
    slider.dispatch_event("mouseup")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .gtitle')].some(e => e.textContent.startsWith('Step 0'))",
        timeout=30_000,
    )


def test_browser_benchmark_tab_plots_the_shipped_run(page):
    page.get_by_role("tab", name="Benchmark").click()
    page.get_by_text("mirage_viz benchmark").first.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .gtitle, .js-plotly-plot .annotation-text')]"
        ".some(e => e.textContent.includes('memory read at the full cache'))",
        timeout=30_000,
    )
    assert page.get_by_text("read speedup, SD-layout VAE, 512x512").count() >= 1


def test_browser_stop_ends_the_run_and_closing_the_tab_frees_the_session(served, tmp_path):
    import time

    SCREENSHOTS = tmp_path
    demo, url = served
    sessions = demo.mirage_sessions
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        page.get_by_role("button", name="Run").wait_for(timeout=30_000)
        steps = page.locator("input[aria-label='number input for steps']")
        steps.fill("40")
        steps.press("Tab")
        page.get_by_role("button", name="Run").click()
        page.get_by_text(re.compile(r"Step \d+ of 40 done")).first.wait_for(timeout=90_000)  # it streams
        page.get_by_role("button", name="Stop").click()
        page.get_by_text("Stopped after step").first.wait_for(timeout=60_000)
        folders = [f for f in sessions.export_root.iterdir()]
        assert len(folders) == 1 and (folders[0] / "summary.json").is_file()
        page.screenshot(path=str(SCREENSHOTS / "stopped_1280x800.png"))
        page.close()  # the visitor closes the tab: the heartbeat ends, Gradio's unload runs
        deadline = time.time() + 60
        while folders[0].exists() and time.time() < deadline:
            time.sleep(0.2)
        assert not folders[0].exists() and sessions.stats()["rollouts"] == 0
        browser.close()
