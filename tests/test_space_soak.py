"""The Space under a stream of visitors: 20 sessions run and leave one after another, nothing accumulates."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("gradio")


def load_soak():
    path = Path(__file__).resolve().parent.parent / "scripts" / "space_soak.py"
    spec = importlib.util.spec_from_file_location("space_soak", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_twenty_sessions_leave_nothing_behind():
    result = load_soak().soak(sessions=20, steps=4, size=128, checkpoint=5)
    records = result["records"]
    assert len(records) == 20 and all(r["export_folders_while_held"] == 1 for r in records)  # each had its downloads
    assert result["export_folders_outliving_their_session"] == 0  # and each lost them when it left
    assert result["growth_mb_from_session_5_to_last"] < 100, result
    assert result["left_in_temp_dir_after_shutdown"] in ([], ["mirage_viz"]), result
