"""Posed image sequences as the world: read from the three formats that name images, cut as a photo is, scored
against their own frames; and a photo run along a camera file takes the file's intrinsics."""

import json
import math

import pytest
import torch
from PIL import Image

from mirage_viz.geometry.cameras import Camera, Intrinsics
from mirage_viz.geometry.projection import backproject_depth
from mirage_viz.rollout import RolloutConfig, run_rollout
from mirage_viz.rollout.config import plan_rollout
from mirage_viz.scenes.camera_files import read_cameras, write_cameras
from mirage_viz.scenes.photo import load_photo
from mirage_viz.scenes.sequence import EXAMPLE_SEQUENCE, SEQUENCE_FORMATS, load_sequence, write_sequence
from mirage_viz.scenes.trajectories import make_trajectory
from mirage_viz.scenes.worlds import make_world

SIZE, STEPS = 64, 3
PATHS = {"nerfstudio": "ns/transforms.json", "colmap": "colmap", "realestate10k": "re/clip.txt"}


def world_views(size=SIZE, steps=STEPS, trajectory="loop"):
    world = make_world("room", 5001)
    cameras = make_trajectory(trajectory, steps).cameras(Intrinsics.from_fov(size, size, 60))
    return world, cameras, torch.stack([world.render(camera).rgb for camera in cameras])


def written(tmp_path, format, frames, cameras):
    path = tmp_path / PATHS[format]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_sequence(frames, cameras, path, format)
    return path


@pytest.mark.parametrize("format", SEQUENCE_FORMATS)
def test_a_world_written_as_a_sequence_reads_back_its_cameras_and_frames(tmp_path, format):
    _, cameras, frames = world_views()
    sequence = load_sequence(written(tmp_path, format, frames, cameras), SIZE)
    assert sequence.format == format and sequence.steps == STEPS and len(sequence.frame_names) == STEPS + 1
    plan = plan_rollout(RolloutConfig(size=SIZE), sequence=sequence)
    assert plan.setup.first_frame == "sequence" and plan.setup.fov_source == "file"
    for asked, ran in zip(cameras, plan.cameras, strict=True):
        assert torch.allclose(asked.camera_to_world, ran.camera_to_world, atol=1e-5)
        k, j = asked.intrinsics, ran.intrinsics
        assert max(abs(k.fx - j.fx), abs(k.fy - j.fy), abs(k.cx - j.cx), abs(k.cy - j.cy)) < 1e-5
    quantized = (frames * 255).round() / 255
    assert torch.allclose(torch.stack([sequence.truth(i) for i in range(STEPS + 1)]), quantized, atol=1e-6)
    assert torch.equal(sequence.first_photo.image, sequence.truth(0))  # the first frame is step 0's truth, to the bit


def test_the_shipped_example_is_a_held_out_loop_with_its_frames():
    sequence = load_sequence(EXAMPLE_SEQUENCE, 128, steps=4)
    assert sequence.format == "nerfstudio" and sequence.steps == 4
    assert sequence.frame_names == tuple(f"images/frame_{i:05d}.png" for i in (0, 3, 6, 9, 12))  # picked evenly
    assert torch.allclose(sequence.trajectory.camera_to_world[0], sequence.trajectory.camera_to_world[-1], atol=1e-5)  # a loop
    assert sequence.frames.shape == (5, 3, 128, 128) and sequence.frames.dtype == torch.uint8


def test_a_sequence_rollout_scores_each_step_against_its_real_frame(backbone):
    rollout = run_rollout(RolloutConfig(size=64, memories=("latent", "none")), backbone=backbone,
                          sequence=load_sequence(EXAMPLE_SEQUENCE, 64, steps=2))
    assert rollout.setup.sequence == "transforms.json (nerfstudio, 3 frames)"
    assert rollout.setup.depth_source == "estimated" and rollout.setup.world is None
    assert rollout.setup.depth_scale == 1.0 and "unscaled" in rollout.setup.depth_scale_rule
    for records in rollout.records.values():
        assert all(record.psnr is not None and math.isfinite(record.psnr) for record in records)
        assert all(record.depth_abs_rel is None for record in records)  # a real frame has no true depth


@pytest.mark.slow
@pytest.mark.parametrize("format", SEQUENCE_FORMATS)
def test_a_sequence_scores_as_the_world_it_was_rendered_from(tmp_path, backbone, format):
    """The bar: within 0.1 dB (loop mean, per memory) of the world's own rollout with the same estimated depth."""
    steps, size = 6, 128
    _, cameras, frames = world_views(size, steps)
    world_run = run_rollout(RolloutConfig(world="room", world_seed=5001, steps=steps, size=size, depth_source="estimated"),
                            backbone=backbone)
    sequence_run = run_rollout(RolloutConfig(size=size), backbone=backbone,
                               sequence=load_sequence(written(tmp_path, format, frames, cameras), size))
    for name in world_run.records:
        mean = lambda run: sum(r.psnr for r in run.records[name][1:]) / steps  # noqa: E731
        assert abs(mean(world_run) - mean(sequence_run)) < 0.1, name


def test_colmap_sparse_points_set_the_depth_scale(tmp_path, backbone):
    """A model twice the world's size, with the points its first image sees: estimated depth is scaled to it."""
    world, cameras, frames = world_views()
    doubled = [Camera(c.intrinsics, torch.cat([c.camera_to_world[:3, :3], 2 * c.camera_to_world[:3, 3:]], 1).tolist()
                      + [[0.0, 0.0, 0.0, 1.0]]) for c in cameras]
    path = written(tmp_path, "colmap", frames, doubled)
    points = 2 * backproject_depth(world.render(cameras[0]).depth, cameras[0])[::7]  # [M, 3] the doubled world
    lines = [f"{i + 1} {x!r} {y!r} {z!r} 128 128 128 0.5 1 {i}" for i, (x, y, z) in enumerate(points.tolist())]
    (path / "points3D.txt").write_text("\n".join(lines) + "\n")
    sequence = load_sequence(path, SIZE)
    assert len(sequence.anchor_points) == len(points)
    estimated = backbone.estimate_depth(sequence.first_photo.image)
    factor, rule = sequence.depth_factor(estimated, doubled[0])
    truth = world.render(cameras[0]).depth
    assert factor == pytest.approx(2 * float((truth / estimated).median()), rel=0.03)
    assert rule.startswith("COLMAP's sparse points")
    given = load_sequence(path.parent / "colmap" / "images.txt", SIZE, depth_scale=5.0)
    (path / "points3D.txt").unlink()
    factor, rule = load_sequence(path, SIZE, depth_scale=5.0).depth_factor(estimated, doubled[0])
    assert float((estimated * factor).median()) == pytest.approx(5.0) and "--depth-scale" in rule
    assert len(given.anchor_points) == len(points)


def test_missing_unreadable_and_misshapen_frames_are_named(tmp_path):
    _, cameras, frames = world_views()
    path = written(tmp_path, "nerfstudio", frames, cameras)
    (path.parent / "images" / "frame_00002.png").unlink()
    with pytest.raises(ValueError, match=r"1 of the 4 frames .* are missing \(images/frame_00002.png\)"):
        load_sequence(path, SIZE)
    (path.parent / "images" / "frame_00002.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="frame_00002.png is not an image"):
        load_sequence(path, SIZE)
    Image.new("RGB", (96, 64)).save(path.parent / "images" / "frame_00002.png")
    with pytest.raises(ValueError, match="frame_00002.png is 96 x 64 pixels but images/frame_00000.png is 64 x 64"):
        load_sequence(path, SIZE)


def test_frames_outside_the_folder_and_formats_without_images_are_refused(tmp_path):
    _, cameras, frames = world_views()
    path = written(tmp_path, "nerfstudio", frames, cameras)
    data = json.loads(path.read_text())
    data["frames"][1]["file_path"] = "../../secret.png"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="lies outside the folder"):
        load_sequence(path, SIZE)
    write_cameras(cameras, tmp_path / "path.json", "mirage_viz")
    with pytest.raises(ValueError, match="a mirage_viz camera file, which names no images"):
        load_sequence(tmp_path / "path.json", SIZE)
    re_path = written(tmp_path, "realestate10k", frames, cameras)
    (re_path.with_suffix("") / "0.png").unlink()
    with pytest.raises(ValueError, match=r"1 of the 4 frames .* are missing \(0.png\)"):
        load_sequence(re_path, SIZE)


def test_a_photo_along_a_camera_file_takes_the_files_intrinsics_cut_as_the_photo_was(tmp_path):
    image = Image.new("RGB", (320, 240), (90, 120, 200))
    image.save(tmp_path / "photo.png")
    poses = make_trajectory("pan_left", 2).camera_to_world
    file_k = Intrinsics(fx=400.0, fy=410.0, cx=330.0, cy=235.0, width=640, height=480)  # the same shape, twice the size
    write_cameras([Camera(file_k, pose) for pose in poses], tmp_path / "cams.json", "mirage_viz")
    trajectory = read_cameras(tmp_path / "cams.json")
    photo = load_photo(tmp_path / "photo.png", 64)
    plan = plan_rollout(RolloutConfig(size=64), trajectory=trajectory, photo=photo)
    assert plan.setup.fov_source == "file"
    # 640x480 -> the photo's 320x240 (half: cx (330 + 0.5) / 2 - 0.5) -> its centre 240x240 square (from x = 40) -> 64 px
    expected = Intrinsics(fx=200.0, fy=205.0, cx=164.75 - 40, cy=117.25, width=240, height=240).scaled_to(64, 64)
    k = plan.cameras[0].intrinsics
    assert (k.fx, k.fy, k.cx, k.cy) == pytest.approx((expected.fx, expected.fy, expected.cx, expected.cy)) and k.width == 64
    assert plan.setup.fov_degrees == pytest.approx(math.degrees(2 * math.atan(32 / k.fx)))
    # a field of view asked for is the photo's own, as before
    photo_60 = load_photo(tmp_path / "photo.png", 64, 60.0)
    assert plan_rollout(RolloutConfig(size=64, fov_degrees=60.0), trajectory=trajectory, photo=photo_60).setup.fov_source == "setting"
    wide = Intrinsics(fx=400.0, fy=400.0, cx=500.0, cy=200.0, width=1000, height=400)
    write_cameras([Camera(wide, pose) for pose in poses], tmp_path / "wide.json", "mirage_viz")
    with pytest.raises(ValueError, match="is 320 x 240 pixels but the camera file .* describes images of 1000 x 400"):
        plan_rollout(RolloutConfig(size=64), trajectory=read_cameras(tmp_path / "wide.json"), photo=photo)


def zipped(folder, out):
    import zipfile

    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return out


@pytest.mark.parametrize("format", SEQUENCE_FORMATS)
def test_a_zipped_sequence_unpacks_to_its_camera_file(tmp_path, format):
    from mirage_viz.scenes.sequence import extract_sequence_zip

    _, cameras, frames = world_views()
    path = written(tmp_path / "made", format, frames, cameras)
    archive = zipped(tmp_path / "made", tmp_path / "footage.zip")
    (tmp_path / "out").mkdir()
    found = extract_sequence_zip(archive, tmp_path / "out")
    assert found.relative_to(tmp_path / "out") == path.relative_to(tmp_path / "made")
    assert torch.equal(load_sequence(found, SIZE).frames, load_sequence(path, SIZE).frames)


def test_hostile_zips_are_refused_and_write_nothing_outside(tmp_path, monkeypatch):
    import zipfile

    import mirage_viz.scenes.sequence as sequence_module
    from mirage_viz.scenes.sequence import extract_sequence_zip

    def attempt(name, write, match):
        archive = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(archive, "w") as out:
            write(out)
        folder = tmp_path / name
        folder.mkdir()
        with pytest.raises(ValueError, match=match):
            extract_sequence_zip(archive, folder)

    attempt("slip", lambda z: z.writestr("../evil.json", "{}"), "leads out of the zip's folder")
    link = zipfile.ZipInfo("images/link.png")
    link.external_attr = 0o120777 << 16  # a symbolic link
    attempt("link", lambda z: z.writestr(link, "/etc/passwd"), "is a link")
    attempt("two", lambda z: (z.writestr("a/transforms.json", "{}"), z.writestr("b/transforms.json", "{}")),
            r"holds 2 sequences \(a/transforms.json, b/transforms.json\)")
    attempt("none", lambda z: z.writestr("notes.md", "hello"), "holds 0 sequences")
    monkeypatch.setattr(sequence_module, "MAX_ZIP_BYTES", 1000)
    attempt("bomb", lambda z: z.writestr("transforms.json", "0" * 5000, compress_type=zipfile.ZIP_DEFLATED),
            "unpacks to over")
    (tmp_path / "plain.zip").write_text("not a zip")
    with pytest.raises(ValueError, match="plain.zip is not a zip file"):
        extract_sequence_zip(tmp_path / "plain.zip", tmp_path)
    assert not (tmp_path.parent / "evil.json").exists()


def test_the_path_preview_of_footage_shows_its_last_real_frame():
    from mirage_viz.viz.preview import path_preview_html, preview_path

    sequence = load_sequence(EXAMPLE_SEQUENCE, 64, steps=2)
    preview = preview_path(plan_rollout(RolloutConfig(size=64), sequence=sequence), sequence=sequence)
    assert torch.equal(preview.last_view, sequence.truth(2)) and "transforms.json (nerfstudio" in preview.title
    html = path_preview_html(preview)
    assert "true view at the last camera (step 2)" in html and "no truth beyond step 0" not in html
