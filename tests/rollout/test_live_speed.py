"""scripts/live_speed.py, its in-process part (the steps; --no-cli) on a short, small loop as a smoke test: it runs
and writes its figures. No time is asserted on: they are for people to read."""

import json


def test_live_speed_writes_the_step_figures(tmp_path, load_script):
    out = tmp_path / "live_speed.json"
    load_script("live_speed").main(["--size", "64", "--steps", "2", "--no-cli", "--out", str(out)])
    result = json.loads(out.read_text())
    step = result["step"]
    assert step["together_s"] > 0 and step["alone_s"] > 0 and isinstance(step["within_bar"], bool)
    assert set(result["engine_step_s"]) == {"without_scores", "with_scores"}
    assert "cli" not in result and "app_start" not in result  # --no-cli
