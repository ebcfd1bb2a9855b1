"""A real browser (Debian chromium driven by Playwright) runs an example, sees the panels update and scrubs."""

import re

import pytest
from headless_chromium import CHROMIUM, FLAGS, require_browser

pytestmark = pytest.mark.slow  # runs the app, a browser, a kernel or a build: the full tier only

playwright_sync = require_browser()


@pytest.fixture
def page(app_url):
    """A fresh chromium page on the app."""
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        yield page
        browser.close()


def start_run(page, url: str, steps: int, size: int = 256) -> None:
    """Open the app and press Run for ``steps`` steps of the room's loop at ``size`` px."""
    page.goto(url)
    page.get_by_role("button", name="Run").wait_for(timeout=30_000)
    field = page.locator("input[aria-label='number input for steps']")
    field.fill(str(steps))
    field.press("Tab")
    if size != 256:
        page.get_by_role("radio", name=str(size)).first.click()
    page.get_by_role("button", name="Run").click()


def test_browser_runs_an_example_sees_the_panels_and_scrubs(page):
    page.get_by_text("examples (seconds on a CPU").wait_for(timeout=30_000)
    page.get_by_text("orbit_left", exact=True).click()  # the orbit example: 6 steps at 128x128
    page.wait_for_function(  # the example's values are in the inputs before Run reads them
        "() => document.querySelector(\"input[aria-label='number input for steps']\")?.value === '6'", timeout=30_000)
    page.get_by_text("Path preview: orbit_left, 6 steps").wait_for(timeout=60_000)  # the page is done reacting
    page.get_by_role("button", name="Run").click()
    try:
        # any step's status, or already the end: a browser on a loaded 2-core machine may be handed only the
        # latest of several streamed updates (streaming itself is checked on the 40-step run below)
        page.get_by_text(re.compile(r"Step \d of 6|Done: 6 steps")).first.wait_for(timeout=120_000)
    except playwright_sync.TimeoutError:
        status = page.locator("#run-status").inner_text()
        raise AssertionError(f"no step after Run; the status line says: {status!r}") from None
    page.get_by_text("Done:").wait_for(timeout=120_000)
    # The 3D plot is a plotly figure; the frames, error maps and conditioning are images in the step view.
    assert page.locator(".js-plotly-plot .gl-container, .js-plotly-plot canvas").count() > 0
    assert page.locator("#step-view img").count() == 11
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


def test_browser_previews_the_path_before_run_and_follows_the_inputs(page):
    page.get_by_text("Path preview: loop, 8 steps in room (seed 0)").wait_for(timeout=60_000)
    assert page.locator("#path-preview img").count() == 2  # the first frame and the true view at the last camera
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .gtitle')].some(e => e.textContent.startsWith("
        "'loop, 8 steps in room (seed 0): its cameras'))", timeout=30_000)
    page.get_by_label("then back to the start").check()
    page.get_by_text("Path preview: loop+back_to_start, 8 steps").wait_for(timeout=60_000)
    assert page.get_by_text("Run").first.is_visible() and page.get_by_text("This path cannot run").count() == 0


def test_browser_benchmark_tab_tells_three_results_first_and_keeps_the_rest_closed(page):
    page.get_by_role("tab", name="Benchmark").click()
    for title in ("How fast each memory is read", "How many bytes each memory holds",
                  "How close each memory's frames come to the truth"):
        page.get_by_text(title).first.wait_for(timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .legend').length >= 3", timeout=30_000)
    assert page.get_by_text("read speedup, SD-layout VAE, 512x512").count() == 0  # the targets wait, closed
    page.get_by_text("Targets:").first.click()
    page.get_by_text("read speedup, SD-layout VAE, 512x512").first.wait_for(timeout=30_000)
    page.get_by_text("Across scenes, paths and depth quality: the shipped sweep").click()
    page.get_by_text("The claims across scenes, paths and depth quality").wait_for(timeout=30_000)
    for title in ("Return frame PSNR per memory", "latent minus RGB", "Holes in what memory hands", "Read and step time"):
        page.wait_for_function(
            f"() => [...document.querySelectorAll('.js-plotly-plot .gtitle')].some(e => e.textContent.includes({title!r}))",
            timeout=30_000)


def test_browser_stop_ends_the_run_and_closing_the_tab_frees_the_session(served, tmp_path):
    import time

    SCREENSHOTS = tmp_path
    demo, url = served
    sessions = demo.mirage_sessions
    with playwright_sync.sync_playwright() as p:
        # without WebGL the 3D plot costs the page nothing: on 2 shared cores, software WebGL can leave the page
        # seconds behind the stream, and the run would end before the page took the click on Stop
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, "--disable-webgl"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        start_run(page, url, 40, size=128)
        page.get_by_text(re.compile(r"Step \d+ of 40 done")).first.wait_for(timeout=90_000)  # it streams
        page.get_by_role("button", name="Stop").click(timeout=90_000)
        page.get_by_text("Stopped after step").first.wait_for(timeout=150_000)
        page.get_by_text("Drag the slider").first.wait_for(timeout=60_000)  # the downloads are written
        folders = [f for f in sessions.export_root.iterdir()]
        assert len(folders) == 1 and (folders[0] / "mirage_out" / "summary.json").is_file()
        page.screenshot(path=str(SCREENSHOTS / "stopped_1280x800.png"))
        page.close()  # the visitor closes the tab: the heartbeat ends, Gradio's unload runs
        deadline = time.time() + 60
        while folders[0].exists() and time.time() < deadline:
            time.sleep(0.2)
        assert not folders[0].exists() and sessions.stats()["rollouts"] == 0
        browser.close()


# Text of the figures: the step view's labels, plotly's titles, subplot titles and legend entries.
LABELS = ("#step-view .mv-title, #step-view .mv-caption, #step-view h4, .js-plotly-plot .gtitle, "
          ".js-plotly-plot .annotation-text, .js-plotly-plot .legendtext")
OVERLAPS_JS = """(selector) => {
  const boxes = [...document.querySelectorAll(selector)].map(e => [e, e.getBoundingClientRect()])
    .filter(([e, r]) => r.width > 0 && r.height > 0 && e.textContent.trim());
  const clash = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, ra] = boxes[i], [b, rb] = boxes[j];
    if (a.contains(b) || b.contains(a)) continue;
    const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
    const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
    if (w > 1 && h > 1) clash.push([a.textContent.trim(), b.textContent.trim()]);
  }
  return {count: boxes.length, clash};
}"""


WATCH_STREAM_JS = """() => {
  const status = document.querySelector("#run-status")?.innerText || "";
  const found = status.match(/Step (\\d+) of 6 done/);
  const image = document.querySelector("#step-view img");
  if (!found || !image || status.includes("Done:")) return false;
  const step = Number(found[1]);
  const seen = window.mirageSeen = window.mirageSeen || {};
  if (step >= 1 && seen.first === undefined) { seen.first = step; seen.src_first = image.src; }
  if (seen.first !== undefined && step > seen.first) {
    seen.later = step; seen.src_later = image.src;
    seen.progress_bars = document.querySelectorAll("progress").length;  // progress shows in one place only
    return true;
  }
  return false;
}"""


def test_browser_step_view_streams_reads_at_1280_and_nothing_overlaps(served, tmp_path):
    _, url = served
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        start_run(page, url, 6)
        # Two streamed steps as the page shows them (a busy page may skip one): the first image must differ
        page.wait_for_function(WATCH_STREAM_JS, timeout=120_000, polling=100)
        seen = page.evaluate("() => window.mirageSeen")
        assert seen["later"] > seen["first"] >= 1 and seen["later"] < 6 and seen["src_first"] != seen["src_later"], {
            k: v for k, v in seen.items() if not k.startswith("src")}
        assert seen["progress_bars"] == 1  # progress in one place: the status line, never over the panels
        page.screenshot(path=str(tmp_path / "streaming_1280x800.png"))
        page.get_by_text("Done: 6 steps").first.wait_for(timeout=120_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(tmp_path / "step_view_1280x800.png"), full_page=True)
        widths = page.eval_on_selector_all("#step-view img", "els => els.map(e => e.getBoundingClientRect().width)")
        assert len(widths) == 11 and min(widths) >= 200, widths  # every frame and map at least 200 px wide
        assert page.evaluate("() => document.scrollingElement.scrollWidth <= window.innerWidth")  # no sideways scroll
        labels = page.evaluate(OVERLAPS_JS, LABELS)
        assert labels["count"] >= 25 and labels["clash"] == [], labels
        browser.close()


def drive_status(page) -> str:
    return page.locator("#drive-status").inner_text()


def wait_drive(page, step: int, points: int) -> None:
    page.get_by_text(f"Step {step} of at most 48; the latent cache holds {points:,} points").wait_for(timeout=60_000)


def test_browser_drive_by_keyboard_undo_back_to_start_and_two_sessions_apart(served, tmp_path):
    _, url = served
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        pages = []
        for world in ("room", "studio"):
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()  # a session each
            page.goto(url)
            page.get_by_role("tab", name="Drive").click()
            page.get_by_role("combobox", name="world").last.wait_for(timeout=30_000)
            if world != "room":
                page.get_by_role("combobox", name="world").last.click()
                page.get_by_role("option", name=world).click()
            page.get_by_role("button", name="Start here").click()
            wait_drive(page, 0, 256)
            page.locator("h1").first.click()  # focus off the fields: keys drive
            pages.append(page)
        one, two = pages
        for step, key in enumerate(("w", "d", "q"), start=1):  # three moves in one tab, one in the other between them
            one.keyboard.press(key)
            if step == 2:
                two.keyboard.press("e")
            wait_drive(one, step, 256 * (step + 1))
        wait_drive(two, 1, 512)
        one.keyboard.press("z")  # Undo
        wait_drive(one, 2, 768)
        one.keyboard.press("b")  # back to start
        wait_drive(one, 3, 1024)
        assert "Step 1 of at most 48" in drive_status(two)  # the other session saw none of it
        assert one.locator("#drive-view img").count() == 11
        # the driver paused: the last step is scored and its 3D caches are drawn (the scores: test_app's /drive_scores)
        one.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot .gtitle')].some("
                              "e => e.textContent.includes('Step 3: the caches in 3D'))", timeout=30_000)
        one.screenshot(path=str(tmp_path / "drive_1280x800.png"), full_page=True)
        labels = one.evaluate(OVERLAPS_JS, LABELS.replace("#step-view", "#drive-view"))
        assert labels["clash"] == [], labels
        browser.close()
