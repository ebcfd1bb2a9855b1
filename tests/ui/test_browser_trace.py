"""Trace a cell in a real browser (Debian chromium driven by Playwright): a click on the picture answers in place."""

import re

import pytest
from headless_chromium import CHROMIUM, FLAGS, require_browser

pytestmark = pytest.mark.slow  # runs the app and a browser: the full tier only

playwright_sync = require_browser()


def test_a_click_on_the_picture_shows_where_the_cell_came_from(app_url):
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(app_url, wait_until="load")
        page.get_by_role("button", name="Run").wait_for(timeout=30_000)
        field = page.locator("input[aria-label='number input for steps']")
        field.fill("2")
        field.press("Tab")
        page.get_by_role("radio", name="128").first.click()
        page.get_by_role("button", name="Run").click()
        page.get_by_text("Drag the slider to scrub back").wait_for(timeout=180_000)
        label = page.locator("#trace-picture [data-testid=block-label]")
        page.wait_for_function("() => (document.querySelector('#trace-picture [data-testid=block-label]')?.textContent"
                               " || '').includes('step 2: ')", timeout=30_000)
        picture = page.locator("#trace-picture img")
        picture.scroll_into_view_if_needed()
        box = picture.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
        heading = page.locator("#trace-answer .mv-heading")
        heading.wait_for(timeout=30_000)
        x, y = map(int, re.search(r"Step 2, pixel \((\d+), (\d+)\)", heading.inner_text()).groups())
        assert abs(x - 0.3 * 128) <= 1 and abs(y - 0.5 * 128) <= 1  # the pixel under the click
        answer = page.locator("#trace-answer").inner_text()
        assert re.search(r"From step \d, at depth [\d.]+ m|A hole: ", answer) and "rgb memory" in answer
        assert "traced cell outlined" in label.inner_text()
        page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot .legendtext')]"
                               ".some(e => /^latent: (from step|a hole)/.test(e.textContent))", timeout=30_000)
        browser.close()
