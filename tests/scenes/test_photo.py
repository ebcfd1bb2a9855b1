"""A photo as the first frame: decoding, orientation, field of view, bad files, an offline rollout."""

import io
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from mirage_viz.scenes import photo as photo_module
from mirage_viz.cli import main
from mirage_viz.rollout import RolloutConfig, run_rollout
from mirage_viz.outputs import write_rollout
from mirage_viz.scenes.photo import load_photo, sample_photos


def _save(image: Image.Image, path, **kwargs):
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize("path", sample_photos(), ids=lambda p: p.name)
def test_sample_photos_become_square_first_frames(path):
    photo = load_photo(path, 128)
    assert photo.image.shape == (3, 128, 128) and 0 <= photo.image.min() and photo.image.max() <= 1
    assert photo.fov_degrees == 60.0 and photo.fov_source == "default"
    assert photo.intrinsics.width == 128


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((40, 64, 3), dtype=np.uint8)
    pixels[:, :32] = (255, 0, 0)  # left half red, right half blue
    pixels[:, 32:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display turned 90 degrees clockwise
    path = _save(Image.fromarray(pixels), tmp_path / "rotated.jpg", exif=exif, quality=95)
    photo = load_photo(path, 32)
    assert photo.original_size == (40, 64)  # width and height swapped by the orientation
    top, bottom = photo.image[:, 2].mean(dim=1), photo.image[:, -3].mean(dim=1)
    assert top[0] > 0.8 and top[2] < 0.2 and bottom[2] > 0.8 and bottom[0] < 0.2  # red on top, blue below


def test_field_of_view_from_exif_35mm_focal_length_or_the_setting(tmp_path):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 28  # 28 mm equivalent
    path = _save(Image.new("RGB", (300, 200), (120, 130, 140)), tmp_path / "wide.jpg", exif=exif)
    photo = load_photo(path, 128)
    focal_px = 28 / math.hypot(36, 24) * math.hypot(300, 200) * 128 / 200
    assert photo.fov_source == "exif" and photo.fov_degrees == pytest.approx(math.degrees(2 * math.atan(64 / focal_px)))
    assert load_photo(path, 128, fov_degrees=70).fov_degrees == 70 and load_photo(path, 128, 70).fov_source == "setting"


def test_alpha_grayscale_and_16_bit_are_handled(tmp_path):
    clear = load_photo(_save(Image.new("RGBA", (40, 40), (255, 0, 0, 0)), tmp_path / "clear.png"), 32)
    assert torch.allclose(clear.image, torch.full_like(clear.image, 0.5), atol=1e-3)  # transparent: mid-grey
    grey = load_photo(_save(Image.new("L", (40, 40), 51), tmp_path / "grey.png"), 32)
    assert torch.allclose(grey.image, torch.full_like(grey.image, 0.2), atol=2e-3)
    deep = np.full((40, 40), 65535, dtype=np.uint16)
    deep[:, 20:] = 32768
    photo16 = load_photo(_save(Image.fromarray(deep), tmp_path / "deep.png"), 40)
    assert photo16.image[:, :, :16].min() > 0.99 and abs(float(photo16.image[:, :, 24:].mean()) - 0.5) < 0.01


@pytest.mark.parametrize("kind, message", [
    ("text", "not an image"),
    ("truncated", "could not be decoded"),
    ("tiny", "too small"),
    ("animated", "animated"),
    ("missing", "not found"),
    ("folder", "folder"),
])
def test_bad_files_get_a_clear_message(tmp_path, kind, message):
    path = tmp_path / "input"
    if kind == "text":
        path.write_text("hello, not a picture")
    elif kind == "truncated":
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buffer, "PNG")
        path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    elif kind == "tiny":
        Image.new("RGB", (1, 1)).save(path, "PNG")
    elif kind == "animated":
        frames = [Image.new("RGB", (64, 64), c) for c in ("red", "blue")]
        frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100)
    elif kind == "folder":
        path.mkdir()
    with pytest.raises(ValueError, match=message):
        load_photo(path, 64)


def test_huge_images_are_refused_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(photo_module, "MAX_PIXELS", 1000)
    with pytest.raises(ValueError, match="too large"):
        load_photo(_save(Image.new("RGB", (64, 64)), tmp_path / "big.png"), 32)


def test_photo_rollout_runs_offline_on_the_embedded_fallback(tmp_path, backbone):
    rollout = run_rollout(RolloutConfig(trajectory="push_in", steps=2, size=64, magnitude=0.3), backbone=backbone,
                          photo=sample_photos()[0])
    assert rollout.setup.photo == sample_photos()[0].name and rollout.setup.depth_source == "estimated"
    first, later = rollout.records["latent"][0], rollout.records["latent"][2]
    assert first.true_frame is not None and first.psnr > 15  # the photo through the VAE
    assert later.true_frame is None and later.psnr is None and later.depth_model == "embedded"
    assert later.mask.any() and later.frame.shape == (3, 64, 64)
    out = write_rollout(rollout, tmp_path / "run")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["memories"]["rgb"]["steps"][2]["psnr"] is None
    assert sorted(p.name for p in (out / "frames" / "truth").iterdir()) == ["step_000.png"]


def test_cli_image_runs_offline_and_notes_the_depth_fallback(tmp_path, capsys):
    code = main(["rollout", "--image", str(sample_photos()[0]), "--steps", "1", "--size", "64", "--quiet",
                 "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == 0 and "no truth to score against" in captured.out
    assert "Depth-Anything-V2-Small" in captured.err and "using the embedded depth estimator" in captured.err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["notices"] and summary["memories"]["latent"]["steps"][1]["depth_model"] == "embedded"


def test_cli_bad_image_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    assert main(["rollout", "--image", str(bad), "--out", str(tmp_path / "run")]) == 2
    assert "not an image" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_a_header_cut_short_gets_a_message(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[:300])
    with pytest.raises(ValueError, match="could not be"):
        load_photo(path, 32)


def test_photo_gif_keeps_one_frame_width(tmp_path, backbone):
    from mirage_viz.outputs.exports import export_animation

    rollout = run_rollout(RolloutConfig(trajectory="pan_left", steps=2, size=64), backbone=backbone, photo=sample_photos()[0])
    gif = Image.open(export_animation(rollout, tmp_path / "photo.gif"))
    assert gif.size == (3 * 64, 64) and gif.n_frames == 3


_BOUNDED_DECODE = """
import resource, sys
from mirage_viz.scenes.photo import load_photo
size_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize"))
limit = size_kb * 1024 + 1536 * 2**20  # what is mapped now, plus 1.5 GiB
resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
for path in sys.argv[1:]:
    try:
        photo = load_photo(path, 256)
        print(path, "loaded", tuple(photo.image.shape), photo.original_size)
    except ValueError as error:
        print(path, "refused", error)
"""


def test_photos_of_every_shape_decode_within_a_memory_bound(tmp_path):
    """The 50 MP strip that allocated 38 GB at 256 px, and 50 MP at the widest accepted shape, under a 1.5 GiB
    address-space allowance: the strip is refused for its shape, the others load."""
    import subprocess
    import sys

    strip, wide, square = tmp_path / "strip.png", tmp_path / "wide.png", tmp_path / "square.jpg"
    Image.new("RGB", (32, 1_562_500), (200, 40, 40)).save(strip)  # exactly 50 MP, under the pixel cap
    Image.new("RGB", (20_000, 2_500), (40, 200, 40)).save(wide)  # 50 MP at 8:1
    Image.new("RGB", (7_000, 7_000), (40, 40, 200)).save(square, quality=90)
    result = subprocess.run([sys.executable, "-c", _BOUNDED_DECODE, str(strip), str(wide), str(square)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert "32 x 1562500 pixels" in lines[str(strip)] and "aspect ratios up to 8:1" in lines[str(strip)]
    assert lines[str(wide)] == "loaded (3, 256, 256) (20000, 2500)"
    assert lines[str(square)] == "loaded (3, 256, 256) (7000, 7000)"


def test_nan_and_infinite_pixels_are_a_photo_problem(tmp_path):
    for value in (np.nan, np.inf):
        array = np.full((64, 64), 0.5, dtype=np.float32)
        array[10, 10] = value
        path = tmp_path / "float.tiff"
        Image.fromarray(array, mode="F").save(path)
        with pytest.raises(ValueError, match="float.tiff has NaN or infinite pixel values"):
            load_photo(path, 64)


def test_large_jpegs_decode_at_a_reduced_scale_and_match_a_full_decode(tmp_path):
    rng = np.random.default_rng(0)
    small = rng.uniform(0, 255, (48, 64, 3)).astype(np.uint8)
    path = tmp_path / "big.jpg"
    Image.fromarray(small).resize((3200, 2400), Image.Resampling.BILINEAR).save(path, quality=95)
    reduced = load_photo(path, 128).image
    full = load_photo(Image.open(path).convert("RGB"), 128).image  # a Pillow image: no draft
    assert reduced.shape == full.shape == (3, 128, 128)
    assert float((reduced - full).abs().mean()) < 0.02
