"""Drive mode: one press, one step; undo and reset take steps back out of every memory; the path replays."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from mirage_viz.cli import main
from mirage_viz.rollout.drive import MOVES, DriveSession
from mirage_viz.rollout import RolloutConfig, iter_rollout
from mirage_viz.image import to_uint8_image
from mirage_viz.scenes.trajectories import load_trajectory

SIZE, CELLS = 64, (64 // 8) ** 2  # pixels a side; latent cells a frame


def config(memories: tuple[str, ...] = RolloutConfig().memories, **options) -> RolloutConfig:
    return RolloutConfig(size=SIZE, seed=7, memories=memories).with_options(**options)


def position(drive: DriveSession) -> list[float]:
    return [round(v, 4) for v in drive.camera.camera_to_world[:3, 3].tolist()]


def cache_points(drive: DriveSession) -> dict[str, int]:
    return {name: records[-1].cache_points for name, records in drive.rollout.records.items()}


@pytest.fixture(scope="module")
def driven(backbone, tmp_path_factory):
    """A drive with an undo and a revisit in its history, its path saved, and the frames of every step."""
    drive = DriveSession(config(), backbone=backbone)
    sizes = [cache_points(drive)]
    for press in ("forward", "turn_left", "undo", "right", "back_to_start"):
        if press == "undo":
            drive.undo()
        elif press == "back_to_start":
            drive.back_to_start()
        else:
            drive.move(press)
        sizes.append(cache_points(drive))
    path = tmp_path_factory.mktemp("drive") / "path.json"
    drive.trajectory().save(path)
    return drive, sizes, path


def test_the_drive_starts_at_step_zero_at_the_identity(backbone):
    drive = DriveSession(config(memories=("none",)), backbone=backbone)
    assert drive.steps == 0 and len(drive.rollout) == 1 and len(drive.rollout.cameras) == 1
    assert torch.equal(drive.camera.camera_to_world, torch.eye(4)) and drive.rollout.setup.steps == 0
    assert drive.rollout.setup.trajectory == "custom"  # validates like any file's trajectory


def test_caches_follow_moves_undo_and_the_revisit(driven):
    drive, sizes, _ = driven
    latent = [s["latent"] for s in sizes]
    rgb = [s["rgb"] for s in sizes]
    # start, forward, turn_left, undo, right, back_to_start
    assert latent == [c * CELLS for c in (1, 2, 3, 2, 3, 4)]
    assert rgb == [c * SIZE**2 for c in (1, 2, 3, 2, 3, 4)]
    assert all(s["none"] == 0 for s in sizes)
    assert drive.steps == 3 and len(drive.rollout) == 4 and len(drive.rollout.cameras) == 4
    assert drive.rollout.setup.steps == 3
    assert [r.step for r in drive.rollout.records["latent"]] == [0, 1, 2, 3]
    assert drive.engine.memories["latent"].stats().points == 4 * CELLS  # the memory itself, not just the records
    positions = [[round(v, 4) for v in c.camera_to_world[:3, 3].tolist()] for c in drive.rollout.cameras]
    assert positions == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.25], [0.25, 0.0, 0.25], [0.0, 0.0, 0.0]]  # the turn undone
    assert torch.equal(drive.camera.camera_to_world, torch.eye(4))  # the revisit: exactly the start pose


def test_moves_are_taken_in_the_camera_frame(driven):
    drive, _, _ = driven
    step = drive.step_m
    assert position(drive) == [0.0, 0.0, 0.0]
    assert [round(v, 4) for v in drive.next_camera("forward").camera_to_world[:3, 3].tolist()] == [0.0, 0.0, step]
    assert [round(v, 4) for v in drive.next_camera("up").camera_to_world[:3, 3].tolist()] == [0.0, -step, 0.0]
    assert [round(v, 4) for v in drive.next_camera("left").camera_to_world[:3, 3].tolist()] == [-step, 0.0, 0.0]
    # after turning left, forward leads left (-x) and ahead (+z), and the view axis turned by turn_degrees
    turned = MOVES["turn_left"].relative_pose(step, drive.turn_degrees) @ MOVES["forward"].relative_pose(step, drive.turn_degrees)
    angle = math.radians(drive.turn_degrees)
    assert turned[0, 3] == pytest.approx(-step * math.sin(angle)) and turned[2, 3] == pytest.approx(step * math.cos(angle))
    assert turned[0, 2] == pytest.approx(-math.sin(angle))  # the view (+z) now points to -x: left
    turned_right = MOVES["turn_right"].relative_pose(step, drive.turn_degrees)
    assert turned_right[0, 2] == pytest.approx(math.sin(angle))


def test_the_path_replays_to_the_same_frames_in_python(driven, backbone):
    drive, _, path = driven
    trajectory = load_trajectory(path)
    assert trajectory.name == "drive" and trajectory.steps == 3
    replay = None
    for replay in iter_rollout(config(), backbone=backbone, trajectory=trajectory):
        pass
    assert len(replay) == len(drive.rollout) == 4 and replay.setup.trajectory == "custom"
    for name, records in drive.rollout.records.items():
        for driven_record, replayed in zip(records, replay.records[name], strict=True):
            assert torch.equal(driven_record.frame, replayed.frame), (name, driven_record.step)
            assert torch.equal(driven_record.camera.camera_to_world, replayed.camera.camera_to_world)
            assert driven_record.cache_points == replayed.cache_points
    for name in drive.rollout.caches:
        assert all(torch.equal(a, b) for a, b in zip(drive.rollout.caches[name], replay.caches[name], strict=True))


def test_the_path_replays_to_the_same_frames_with_the_cli(driven, tmp_path):
    drive, _, path = driven
    out = tmp_path / "replay"
    assert main(["rollout", "--trajectory-file", str(path), "--world", "room", "--seed", "7", "--size", str(SIZE),
                 "--out", str(out), "--quiet"]) == 0
    for name, records in drive.rollout.records.items():
        for record in records:
            written = np.asarray(Image.open(out / "frames" / name / f"step_{record.step:03d}.png"))
            assert np.array_equal(written, to_uint8_image(record.frame)), (name, record.step)


def test_refused_presses_say_why_and_change_nothing(backbone):
    drive = DriveSession(config(memories=("latent",)), backbone=backbone, max_steps=1, step_m=4.0)
    before = (drive.steps, len(drive.rollout), cache_points(drive), drive.engine.steps_done)
    accepted = "forward, back, left, right, up, down, turn_left, turn_right"
    with pytest.raises(ValueError, match=f"unknown move 'jump'; accepted: {accepted}"):
        drive.move("jump")
    with pytest.raises(ValueError, match="cannot move back: the camera would stand at .*outside the 'room' room"):
        drive.move("back")  # 4 m behind the start: through the back wall
    with pytest.raises(ValueError, match="nothing to undo: the drive is at its first frame"):
        drive.undo()
    with pytest.raises(ValueError, match=r"cannot go back to the start: the drive is at the start, its first frame \(step 0\)"):
        drive.back_to_start()  # nothing generated: the first frame is already on screen
    with pytest.raises(ValueError, match="at least one step"):
        drive.trajectory()
    assert (drive.steps, len(drive.rollout), cache_points(drive), drive.engine.steps_done) == before
    drive.move("forward")
    with pytest.raises(ValueError, match="max_steps = 1"):
        drive.move("turn_left")
    with pytest.raises(ValueError, match="max_steps = 1"):
        drive.back_to_start()
    assert drive.steps == 1 and cache_points(drive) == {"latent": 2 * CELLS} and len(drive.rollout.cameras) == 2


def test_a_press_into_an_object_is_refused(backbone):
    drive = DriveSession(config(memories=("none",)), backbone=backbone, step_m=1.25)
    for press in ("down", "forward", "forward", "forward", "forward"):
        drive.move(press)
    with pytest.raises(ValueError, match="cannot move forward: .*inside an object; the drive stays at step 5"):
        drive.move("forward")
    assert drive.steps == 5 and drive.engine.steps_done == 6


def test_reset_goes_back_to_the_first_frame(backbone):
    drive = DriveSession(config(memories=("latent", "none"), voxel_size=0.05), backbone=backbone)
    first = [t.clone() for t in drive.rollout.caches["latent"]]
    drive.move("forward")
    drive.move("turn_right")
    ahead = drive.next_camera("forward").camera_to_world[:3, 3]  # forward of the turned camera: ahead and right
    angle = math.radians(drive.turn_degrees)
    assert torch.allclose(ahead, torch.tensor([0.25 * math.sin(angle), 0.0, 0.25 + 0.25 * math.cos(angle)]), atol=1e-6)
    drive.reset()
    assert drive.steps == 0 and len(drive.rollout) == 1 and len(drive.rollout.cameras) == 1
    assert drive.rollout.setup.steps == 0 and drive.engine.steps_done == 1
    assert all(torch.equal(a, b) for a, b in zip(drive.rollout.caches["latent"], first, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(drive.engine.caches()["latent"], first, strict=True))
    assert len(drive.rollout.snapshots["latent"]) == 1
    again = drive.move("forward")
    assert again.records["latent"][1].step == 1 and drive.steps == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"max_steps": 0}, "max_steps"), ({"step_m": -1.0}, "step_m"), ({"turn_degrees": 720}, "turn_degrees"),
    ({"max_steps": 401}, "max_steps 401 at 256 px"),
])
def test_bad_drive_settings_are_refused(backbone, kwargs, message):
    with pytest.raises(ValueError, match=message):
        DriveSession(RolloutConfig(size=256), backbone=backbone, **kwargs)


def test_deferred_scores_are_filled_in_later_as_they_would_have_been(backbone):
    """A drive that answers with its frames first: its presses leave the scores that need no truth unset, ``score``
    fills them in, in order, equal to a drive scored at every press; an undone unscored step is never scored."""
    presses = ("forward", "turn_left", "undo", "right", "forward")
    drives = {defer: DriveSession(config(), backbone=backbone, defer_scores=defer) for defer in (False, True)}
    for defer, drive in drives.items():
        for press in presses:
            drive.undo() if press == "undo" else drive.move(press)
    deferred, scored = drives[True], drives[False]
    assert deferred.changes == len(presses) + 1  # the first frame, each move and the undo
    assert all(r.consistency is None for records in deferred.rollout.records.values() for r in records)
    deferred.score()
    for name, records in scored.rollout.records.items():
        expected = [r.consistency for r in records[1:]]
        assert [r.consistency for r in deferred.rollout.records[name][1:]] == expected
        assert all(score is not None and score.step == step for step, score in enumerate(expected, start=1))
    deferred.move("back")  # undone before it was scored: never scored
    deferred.undo()
    for drive in (deferred, scored):
        drive.move("back")
    deferred.score()
    assert deferred.rollout.records["latent"][-1].consistency == scored.rollout.records["latent"][-1].consistency
