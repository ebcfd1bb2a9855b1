"""One step, staged, and the z-test lesson (issue 34): the stages say this step's own figures, the lesson's owners are
the trace's and its reads the memory's."""

from collections import defaultdict

import numpy as np
import pytest
import torch

from mirage_viz.rollout import FIRST_HAND_TIE_BITS, PAPER_TIE_BITS, RolloutConfig, owners_under_rules, run_rollout
from mirage_viz.viz.walkthrough import (STAGE_NAMES, conditioning_under_rule, revisited_step, walkthrough,
                                        walkthrough_html, ztest_lesson)


def landed_per_cell(rollout, memory, step, bits):
    """Per cell of the read grid: how many cached points landed in it and whether two or more tie with the nearest
    (within a factor 1 + 2**-bits), by the plain loop of splat_points_reference (no seen rays)."""
    record = rollout.records[memory][step]
    rows, cols = record.source.shape
    camera = record.camera if memory == "rgb" else record.camera.scaled_to(cols, rows)
    k, w2c = camera.intrinsics, camera.world_to_camera
    depths = defaultdict(list)
    for point in rollout.cache_at(memory, step - 1)[0]:
        x, y, z = (w2c[:3, :3] @ point + w2c[:3, 3]).tolist()
        if z <= 1e-3:
            continue
        col, row = round(k.fx * x / z + k.cx), round(k.fy * y / z + k.cy)
        if 0 <= col < cols and 0 <= row < rows:
            depths[row, col].append(torch.tensor(z, dtype=torch.float32))
    factor = 1.0 + 2.0**-bits
    several = sum(len(d) >= 2 for d in depths.values())
    ties = sum(sum(bool(z <= min(d) * factor) for z in d) >= 2 for d in depths.values())
    return len(depths), several, ties


def test_five_stages_say_this_steps_figures(small_rollout):
    step = 2
    stages = walkthrough(small_rollout, step)
    assert len(stages) == len(STAGE_NAMES) == 5
    for stage, name in zip(stages, STAGE_NAMES):
        assert name.lower() in stage.title.lower() and len(stage.sentences) == 2
        assert all(sentence.endswith(".") for sentence in stage.sentences)
        assert stage.picture.dtype == np.uint8 and stage.picture.ndim == 3 and stage.picture.shape[2] == 3
        assert min(stage.picture.shape[:2]) >= 256  # panels at least the frame's size, titles above
    lift, project, ztest, holes, generate = (stage.text for stage in stages)
    records = small_rollout.records["latent"]
    record = records[step]
    cells = record.mask.numel()
    lifted = records[step - 1].cache_points - records[step - 2].cache_points
    assert f"gave {lifted:,} points" in lift and f"holds {records[step - 1].cache_points:,} points" in lift
    reached, several, ties = landed_per_cell(small_rollout, "latent", step, PAPER_TIE_BITS)
    assert reached == int(record.mask.sum())
    assert f"{reached:,} of the {cells:,} cells received at least one point" in project
    assert ztest.startswith(f"{several:,} of the {cells:,} cells were reached by more than one point")
    assert f"{ties:,} cells were such ties" in ztest
    first_cells = sum(int(i) < records[0].cache_points for i in record.source[record.source >= 0])
    assert f"step 0, the first frame, won {first_cells:,} cells" in ztest
    holes_count = int((~record.mask).sum())
    assert holes.startswith(f"{holes_count:,} of the {cells:,} cells") and holes_count > 0
    assert f"PSNR {record.psnr:.1f} dB and SSIM {record.ssim:.3f}" in generate


def test_rgb_stages_count_pixels(small_rollout):
    step = 1
    stages = walkthrough(small_rollout, step, memory="rgb")
    record = small_rollout.records["rgb"][step]
    pixels = record.source.numel()
    holes_count = int((record.source < 0).sum())
    assert stages[3].text.startswith(f"{holes_count:,} of the {pixels:,} pixels") and holes_count > 0
    assert f"{pixels - holes_count:,} of the {pixels:,} pixels received at least one point" in stages[1].text
    assert "z-test" in stages[2].title.lower() and "pixel" in stages[2].title


def test_walkthrough_refuses_what_has_no_read(small_rollout):
    with pytest.raises(ValueError, match="step 0 is the given first frame"):
        walkthrough(small_rollout, 0)
    with pytest.raises(ValueError, match="1 to 3"):
        walkthrough(small_rollout, 4)
    with pytest.raises(ValueError, match="no-memory stores nothing"):
        walkthrough(small_rollout, 1, memory="none")


def test_html_holds_five_images_and_the_sentences(small_rollout):
    stages = walkthrough(small_rollout, 3)
    page = walkthrough_html(stages, heading="Step 3, staged")
    assert page.count("<img ") == 5 and page.count('src="data:image/png;base64,') == 5
    assert "http" not in page and "<script" not in page  # self-contained: opens offline
    for stage in stages:
        assert stage.title in page and stage.sentences[0].replace("'", "&#x27;") in page


def test_revisits_are_found_by_pose_not_by_name(small_rollout):
    assert [revisited_step(small_rollout, step) for step in range(4)] == [None] * 4  # move_left never comes back


@pytest.fixture(scope="module")
def studio_loops(backbone):
    """A 6-step loop of the held-out studio at 64 px (its last step back at the first camera), under the paper's
    setting and under first-hand ties with seen rays."""
    config = RolloutConfig(world="studio", trajectory="loop", steps=6, size=64, seed=0, memories=("latent", "rgb"))
    return {setting: run_rollout(config.with_memory_setting(setting), backbone=backbone)
            for setting in ("paper", "keep what memory holds")}


@pytest.mark.slow
def test_lesson_owners_are_the_traces_and_differ_on_the_return(studio_loops, backbone):
    rollout = studio_loops["paper"]
    step = len(rollout) - 1
    assert revisited_step(rollout, step) == 0 and revisited_step(rollout, step - 1) is None
    lesson = ztest_lesson(rollout, step, backbone)
    expected = owners_under_rules(rollout, step)
    for name in ("paper", "first_hand", "differ", "paper_source", "first_hand_source"):
        assert torch.equal(getattr(lesson.owners, name), getattr(expected, name)), name
    assert lesson.owners.differ.any() and lesson.revisit_of == 0
    assert torch.equal(lesson.paper.owners, expected.paper) and torch.equal(lesson.first_hand.owners, expected.first_hand)
    # the rule that ran is the record's own; first-hand ties keep more of the first frame
    record = rollout.records["latent"][step]
    assert lesson.paper.ran and lesson.paper.frame is record.frame and lesson.paper.psnr == record.psnr
    assert not lesson.first_hand.ran and lesson.first_hand.psnr is not None
    assert lesson.first_hand.cells_of(0) > lesson.paper.cells_of(0)
    assert f"{lesson.differing_cells} of its {record.mask.numel()} latent cells" in lesson.sentences[0]
    assert f"{lesson.paper.psnr:.2f} dB" in lesson.sentences[1] and f"{lesson.first_hand.psnr:.2f} dB" in lesson.sentences[1]
    page = walkthrough_html(walkthrough(rollout, step) + lesson.stages())
    assert page.count("<img ") == 7


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["paper", "keep what memory holds"])
def test_each_rules_read_is_the_memorys_splat(studio_loops, setting):
    rollout = studio_loops[setting]
    step = len(rollout) - 1
    record = rollout.records["latent"][step]
    owners = owners_under_rules(rollout, step)
    for bits, source in ((PAPER_TIE_BITS, owners.paper_source), (FIRST_HAND_TIE_BITS, owners.first_hand_source)):
        latent, mask, winners = conditioning_under_rule(rollout, step, bits)
        assert torch.equal(winners, source)
        if bits == rollout.config.latent.depth_tie_bits:  # the rule that ran: the engine's own read
            assert torch.equal(latent, record.conditioning_latent) and torch.equal(mask, record.mask)
            assert torch.equal(winners, record.source)


@pytest.mark.slow
def test_the_other_rule_is_generated_on_the_steps_own_noise(studio_loops, backbone):
    """Regenerating the rule that ran, as the lesson generates the other, gives the recorded latent back (within float
    tolerance: the engine generated it in a batch with the other memories): the same sampler, the same noise."""
    from mirage_viz.rollout.engine import step_noise

    rollout = studio_loops["keep what memory holds"]
    for step in (3, len(rollout) - 1):
        record = rollout.records["latent"][step]
        sampler = rollout.config.sampler
        latent = backbone.generate(record.conditioning_latent, record.mask.float(), step_noise(rollout.config, step),
                                   rollout.setup.num_inference_steps, sampler.known_cells, sampler.average_samples)
        assert torch.allclose(latent, record.generated_latent, atol=1e-4)  # the engine's batch: float tolerance
    lesson = ztest_lesson(rollout, len(rollout) - 1, backbone)
    assert lesson.first_hand.ran and lesson.first_hand.frame is rollout.records["latent"][-1].frame
    assert lesson.paper.frame is not None and not lesson.paper.ran


def test_lesson_without_the_generator_decodes_the_reads(small_rollout):
    """Without the generator the lesson still decodes each rule's read (the warped latents only)."""
    lesson = ztest_lesson(small_rollout, 3, generate=False)
    assert lesson.paper.frame is None and lesson.first_hand.frame is None
    assert lesson.paper.conditioning_frame.shape == small_rollout.records["latent"][3].frame.shape
    assert "not run" in lesson.sentences[1]


@pytest.mark.slow  # imports the app (Gradio): seconds on its own
def test_the_apps_panel_stages_the_step_on_the_slider(small_rollout):
    from mirage_viz.ui.app import _staged_html

    assert "Press Run" in _staged_html(None, 0) and "read no memory" in _staged_html(small_rollout, 0)
    page = _staged_html(small_rollout, 2.0)
    assert page.count("<img ") == 5 and "Step 2: the latent memory" in page and "z-test lesson" not in page


@pytest.mark.slow
def test_the_apps_panel_adds_the_lesson_at_a_loops_return(studio_loops):
    from mirage_viz.ui.app import _staged_html

    rollout = studio_loops["paper"]
    page = _staged_html(rollout, len(rollout) - 1)
    assert page.count("<img ") == 7 and "The z-test lesson: who owns each cell" in page
    assert _staged_html(rollout, len(rollout) - 2).count("<img ") == 5
