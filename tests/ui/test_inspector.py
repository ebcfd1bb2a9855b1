import pytest


def test_inspector_moves_every_panel_with_its_slider(small_rollout):
    pytest.importorskip("anywidget")
    from mirage_viz.ui.inspector import inspect

    inspector = inspect(small_rollout, max_points=500)
    assert inspector.step == 3 and inspector.slider.max == 3
    assert "Step 3 of 3: decoded frames" in inspector.view.value
    assert inspector.cache.layout.title.text.startswith("Step 3")
    inspector.slider.value = 1
    assert "Step 1 of 3: decoded frames" in inspector.view.value and inspector.view.value.count("<img") == 11
    assert inspector.cache.layout.title.text.startswith("Step 1")
    with pytest.raises(ValueError, match="step"):
        inspector.step = 9
