"""scripts/app_speed.py, its cheapest part (--quick: panels and the streamed bytes of a 1-step run at 128 px) as a
smoke test: it runs and writes its figures. No figure is asserted on: they are for people to read."""

import json

import pytest

pytest.importorskip("gradio")
pytest.importorskip("httpx")


def test_quick_run_writes_the_panel_and_payload_figures(tmp_path, backbone, load_script):
    out = tmp_path / "app_speed.json"
    load_script("app_speed").main(["--quick", "--steps", "1", "--size", "128", "--out", str(out)])
    result = json.loads(out.read_text())
    panels, payload = result["panels"], result["payload"]
    assert "error" not in panels and "error" not in payload, (panels.get("error"), payload.get("error"))
    assert len(panels["panels_ms"]["each"]) == 2 and isinstance(panels["within_budget"], bool)
    steps = [m["step"] for m in payload["messages"] if isinstance(m.get("step"), int)]
    assert steps == [0, 1]  # each step's message was found in the stream and decoded
    assert payload["messages"][-1]["msg"] == "process_completed" and isinstance(payload["within_budget"], bool)
    assert set(payload["kb_per_output_per_step"]) >= {"step_view_html", "cache_plot", "metrics_plot"}
    assert "cli" not in result and "browser" not in result  # --quick
