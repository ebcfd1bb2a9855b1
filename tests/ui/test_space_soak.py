"""The Space under a stream of visitors: 20 sessions run and leave one after another, nothing accumulates."""


import pytest

pytestmark = pytest.mark.slow  # runs the app, a browser, a kernel or a build: the full tier only

pytest.importorskip("gradio")


def test_twenty_sessions_leave_nothing_behind(load_script):
    result = load_script("space_soak").soak(sessions=20, steps=4, size=128, checkpoint=5)
    records = result["records"]
    assert len(records) == 20 and all(r["export_folders_while_held"] == 1 for r in records)  # each had its downloads
    assert result["export_folders_outliving_their_session"] == 0  # and each lost them when it left
    assert result["growth_mb_from_session_5_to_last"] < 100, result
    assert result["left_in_temp_dir_after_shutdown"] in ([], ["mirage_viz"]), result
