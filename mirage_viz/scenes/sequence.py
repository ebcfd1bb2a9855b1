"""A posed image sequence as the world: real frames at the cameras that took them.

Read from a nerfstudio ``transforms.json`` with its ``file_path`` frames, a COLMAP text model with its images folder
(``images/`` beside the model, or one or two folders up: ``sparse/0``'s layout), or a RealEstate10K camera file
with a folder of its frames named by timestamp (``clip.txt`` and ``clip/<timestamp>.png``). The first image is the
first frame; every later one is the truth a generated frame is scored against at its camera. Images are cut as a
photo is (:func:`~mirage_viz.scenes.photo.centre_square`) and the file's intrinsics are cut to match.

The poses of a file are in its own units, and estimated depth in the estimator's: :meth:`ImageSequence.depth_factor`
makes them agree by one rule, recorded in the rollout's setup: COLMAP's sparse points the first image sees when
there are enough, else a median depth given by the user (``--depth-scale``), else the estimator's depth as it is.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from PIL import Image

from mirage_viz.geometry.cameras import Camera
from mirage_viz.geometry.projection import project_points
from mirage_viz.image import to_uint8_image
from mirage_viz.models.hub_depth import check_depth_scale
from mirage_viz.scenes.camera_files import CameraFormat, detect_camera_format, read_cameras, write_cameras
from mirage_viz.scenes.camera_files.colmap import colmap_image_names, read_colmap_points
from mirage_viz.scenes.camera_files.nerfstudio import nerfstudio_file_paths
from mirage_viz.scenes.camera_files.realestate10k import FRAMES_PER_SECOND, realestate10k_timestamps
from mirage_viz.scenes.photo import Photo, load_photo
from mirage_viz.scenes.trajectories import MAX_STEPS, Trajectory

__all__ = ["EXAMPLE_SEQUENCE", "MIN_ANCHOR_POINTS", "SEQUENCE_FORMATS", "ImageSequence", "extract_sequence_zip",
           "load_sequence", "write_sequence"]

SEQUENCE_FORMATS: tuple[CameraFormat, ...] = ("nerfstudio", "colmap", "realestate10k")  # the formats that name images
MIN_ANCHOR_POINTS = 20  # sparse points the first image must see before their median ratio is trusted
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
# shipped: a held-out world's 12-step loop at 256 px as images with a transforms.json (scripts/make_example_sequence.py)
EXAMPLE_SEQUENCE = Path(str(importlib.resources.files("mirage_viz") / "assets" / "sequences" / "room_loop" / "transforms.json"))
ACCEPTED = ("accepted: a nerfstudio transforms.json with each frame's file_path, a COLMAP text model with its images "
            "folder (images/ beside the model or one or two folders up), or a RealEstate10K file clip.txt with its "
            "frames in clip/<timestamp>.png")


@dataclass(frozen=True)
class ImageSequence:
    """Real frames at their cameras, ready to be a rollout's world (``RolloutEngine(sequence=...)``)."""

    name: str  # the camera file's name (a COLMAP model: its folder's)
    format: CameraFormat
    trajectory: Trajectory  # the file's poses (subsampled), OpenCV camera-to-world, its intrinsics at its image size
    frames: torch.Tensor  # (N + 1, 3, size, size) uint8: frame k seen from pose k, cut as the first frame was
    frame_names: tuple[str, ...]  # each frame's image, as the file names it
    first_photo: Photo  # frame 0, the first frame
    anchor_points: torch.Tensor  # (M, 3) world points the first image sees (COLMAP's sparse points; M may be 0)
    depth_scale: float | None = None  # the median metres given to the first frame's estimated depth (None: the rule)

    @property
    def steps(self) -> int:
        return self.trajectory.steps

    @property
    def source(self) -> str:
        """What a setup records: ``"transforms.json (nerfstudio, 13 frames)"``."""
        return f"{self.name} ({self.format}, {len(self.frame_names)} frames)"

    def truth(self, step: int) -> torch.Tensor:
        """The real frame of ``step`` (3, size, size) float in [0, 1]."""
        return self.frames[step].float() / 255.0

    def depth_factor(self, first_depth: torch.Tensor, first_camera: Camera) -> tuple[float, str]:
        """The factor on estimated depth that puts it in the poses' units, and the rule that gave it, from the first
        frame's estimated depth ``first_depth`` (H, W) seen by ``first_camera``."""
        if len(self.anchor_points) >= MIN_ANCHOR_POINTS:
            uv, z = project_points(self.anchor_points.float(), first_camera)  # [M, 2] pixels, [M] depth
            k = first_camera.intrinsics
            col, row = uv[:, 0].round().long(), uv[:, 1].round().long()
            inside = (z > 0) & (col >= 0) & (col < k.width) & (row >= 0) & (row < k.height)
            estimated = first_depth[row[inside], col[inside]]  # [m]
            ratios = z[inside] / estimated
            ratios = ratios[torch.isfinite(ratios) & (ratios > 0)]
            if len(ratios) >= MIN_ANCHOR_POINTS:
                return float(ratios.median()), (f"COLMAP's sparse points: the median ratio of {len(ratios)} points' depth "
                                                "to the first frame's estimated depth")
        if self.depth_scale is not None:
            median = float(first_depth[torch.isfinite(first_depth)].median())
            return self.depth_scale / median, (f"given: the first frame's estimated depth set to a median of "
                                               f"{self.depth_scale:g} m (--depth-scale)")
        why = "no --depth-scale" if self.format != "colmap" else f"fewer than {MIN_ANCHOR_POINTS} sparse points seen, no --depth-scale"
        return 1.0, f"the depth estimator's own, unscaled ({why})"


def _inside(folder: Path, name: str, where: str) -> Path:
    """``folder / name``, refused when it leads out of ``folder`` (an absolute path, ``..``, a link out)."""
    path = (folder / name)
    try:
        escapes = Path(name).is_absolute() or not path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        escapes = True
    if escapes:
        raise ValueError(f"{where}: the image {name[:200]!r} lies outside the folder {folder}; accepted: images inside "
                         "the sequence's folder, named relative to it")
    return path


def _image_paths(path: Path, format: CameraFormat) -> tuple[list[Path], list[str], list[int] | None]:
    """Each frame's image path and name, in the file's pose order, and COLMAP's image ids (None for the others)."""
    if format == "nerfstudio":
        names = nerfstudio_file_paths(path)
        return [_inside(path.parent, name, f"nerfstudio file {path}") for name in names], names, None
    if format == "colmap":
        model = path if path.is_dir() else path.parent
        names, ids = map(list, zip(*colmap_image_names(model)))
        folders = [model / "images", model.parent / "images", model.parent.parent / "images"]
        found = next((folder for folder in folders if (folder / names[0]).is_file()), None)
        if found is None:
            raise ValueError(f"the COLMAP model {model} names images ({names[0]}, ...) that are in none of "
                             f"{', '.join(str(f) for f in folders)}; {ACCEPTED}")
        return [_inside(found, name, f"COLMAP model {model}") for name in names], names, ids
    stamps = realestate10k_timestamps(path)
    folder = path.with_suffix("")
    if not folder.is_dir():
        raise ValueError(f"the RealEstate10K file {path} has no folder of frames {folder}; {ACCEPTED}")
    paths = []
    for stamp in stamps:
        found = [folder / f"{stamp}{suffix}" for suffix in IMAGE_SUFFIXES if (folder / f"{stamp}{suffix}").is_file()]
        paths.append(found[0] if found else folder / f"{stamp}.png")
    return paths, [p.name for p in paths], None


def load_sequence(path: str | Path, size: int = 256, steps: int | None = None, format: CameraFormat | None = None,
                  depth_scale: float | None = None) -> ImageSequence:
    """Read a posed image sequence: its cameras, then its images (``steps`` picked evenly along the poses as
    :meth:`Trajectory.subsample` does; every pose when ``None`` or at least the file's), each cut and resized to
    ``size`` as a photo is.

    Raises ``ValueError`` naming what is wrong: a format that names no images, missing or unreadable frames, frames
    of another shape than the file's intrinsics describe, too many frames for a rollout.
    """
    path = Path(path)
    format = format or detect_camera_format(path)
    if format not in SEQUENCE_FORMATS:
        raise ValueError(f"{path} is a {format} camera file, which names no images; {ACCEPTED} (a camera path without "
                         "images runs with --trajectory-file)")
    if depth_scale is not None:
        depth_scale = check_depth_scale(depth_scale)  # the same range as a relative depth model's median
    paths, names, image_ids = _image_paths(path, format)
    missing = [name for p, name in zip(paths, names) if not p.is_file()]
    if missing:
        raise ValueError(f"{len(missing)} of the {len(names)} frames of {path} are missing ({', '.join(missing[:5])}"
                         f"{', ...' if len(missing) > 5 else ''}); accepted: every frame the file names, beside it")
    image_size = None
    if format == "realestate10k":  # the file keeps no image size: the frames' own
        try:
            with Image.open(paths[0]) as image:
                image_size = image.size
        except Exception as error:  # noqa: BLE001 - Pillow raises many kinds for a broken file
            raise ValueError(f"the frame {paths[0]} could not be read ({type(error).__name__}); is it an image?") from None
    trajectory = read_cameras(path, format, image_size=image_size)
    index = list(range(trajectory.steps + 1))
    if steps is not None and steps < trajectory.steps:
        trajectory = trajectory.subsample(steps)
        index = torch.linspace(0, len(index) - 1, steps + 1, dtype=torch.float64).round().long().tolist()
    if trajectory.steps > MAX_STEPS:
        raise ValueError(f"{path} has {trajectory.steps:,} steps; a rollout runs at most {MAX_STEPS:,}: subsample it "
                         "(--steps N)")
    photos = []
    for k, i in zip(trajectory.intrinsics, index):
        photo = load_photo(paths[i], size)
        if photos and photo.original_size != photos[0].original_size:
            raise ValueError(f"the frame {names[i]} is {photo.original_size[0]} x {photo.original_size[1]} pixels but "
                             f"{names[index[0]]} is {photos[0].original_size[0]} x {photos[0].original_size[1]}; accepted: "
                             "frames of one size")
        photo.intrinsics_from(k, f"{path}'s camera of {names[i]}")  # the same shape as its intrinsics
        photos.append(photo)
    frames = torch.stack([torch.from_numpy(to_uint8_image(p.image)).permute(2, 0, 1) for p in photos])  # [N+1, 3, s, s]
    first = replace(photos[0], image=frames[0].float() / 255.0)  # the first frame is the truth of step 0, to the bit
    anchors = torch.zeros(0, 3) if image_ids is None else read_colmap_points(path, image_ids[index[0]])
    return ImageSequence(name=path.name, format=format, trajectory=trajectory, frames=frames,
                         frame_names=tuple(names[i] for i in index), first_photo=first,
                         anchor_points=anchors.double(), depth_scale=None if depth_scale is None else float(depth_scale))


MAX_ZIP_MEMBERS = MAX_STEPS + 100  # every frame a rollout may run, the camera files and a few more
MAX_ZIP_BYTES = 512 * 2**20  # uncompressed: a zip bomb stops here
ZIP_SUFFIXES = (".json", ".txt", *IMAGE_SUFFIXES)  # what is taken out of a zip; anything else stays in it


def extract_sequence_zip(path: str | Path, folder: str | Path) -> Path:
    """Take a posed image sequence out of the zip ``path`` into the existing, empty ``folder`` and return its camera
    file (a ``transforms.json``, a COLMAP model's folder, or a RealEstate10K ``.txt`` with its frames' folder), for
    :func:`load_sequence`. Only camera files and images come out; links, paths that lead out of ``folder``, more than
    ``MAX_ZIP_MEMBERS`` entries or ``MAX_ZIP_BYTES`` unpacked are refused, and so is a zip holding no sequence or
    more than one."""
    import shutil
    import zipfile

    folder = Path(folder)
    name = Path(path).name
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{name} is not a zip file ({type(error).__name__}); accepted: a .zip of a posed image "
                         f"sequence; {ACCEPTED}") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and Path(m.filename).suffix.lower() in ZIP_SUFFIXES]
        if len(archive.infolist()) > MAX_ZIP_MEMBERS:
            raise ValueError(f"{name} holds {len(archive.infolist()):,} entries; accepted: at most {MAX_ZIP_MEMBERS:,}")
        if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
            raise ValueError(f"{name} unpacks to over {MAX_ZIP_BYTES // 2**20} MB; accepted: at most that")
        for member in members:
            parts = Path(member.filename.replace("\\", "/")).parts
            link = (member.external_attr >> 16) & 0o170000 == 0o120000
            if link or member.filename.startswith("/") or ".." in parts or ":" in member.filename or not parts:
                raise ValueError(f"{name}: the entry {member.filename[:200]!r} is a link or leads out of the zip's "
                                 "folder; accepted: files inside it")
            target = folder.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, 2**20)
                if out.tell() > member.file_size:  # a header that lied about its size
                    raise ValueError(f"{name}: the entry {member.filename[:200]!r} is larger than its header says")
    found = sorted({p.parent if p.name in ("cameras.txt", "images.txt") else p for p in folder.rglob("*")
                    if p.name in ("transforms.json", "cameras.txt", "images.txt")
                    or (p.suffix == ".txt" and p.with_suffix("").is_dir())}, key=lambda p: (len(p.parts), str(p)))
    if len(found) != 1:
        listed = ", ".join(str(p.relative_to(folder)) for p in found[:5]) or "none"
        raise ValueError(f"{name} holds {len(found)} sequences ({listed}); accepted: a zip of one sequence; {ACCEPTED}")
    return found[0]


def write_sequence(frames: torch.Tensor, cameras: list[Camera], path: str | Path, format: CameraFormat,
                   name: str = "sequence") -> list[Path]:
    """Write frames (N + 1, 3, H, W) in [0, 1] seen from ``cameras`` as a posed image sequence that
    :func:`load_sequence` reads back: the camera file in ``format`` and each frame as PNG where that format looks for
    it (nerfstudio: ``images/frame_00000.png`` beside the file; COLMAP: ``images/`` in the model's folder;
    RealEstate10K: ``<stem>/<timestamp>.png``). The images' folder must be new."""
    path = Path(path)
    if format not in SEQUENCE_FORMATS:
        raise ValueError(f"format {format!r} names no images; accepted: {', '.join(SEQUENCE_FORMATS)}")
    if len(frames) != len(cameras):
        raise ValueError(f"{len(frames)} frames for {len(cameras)} cameras; accepted: one frame per camera")
    folder = {"nerfstudio": path.parent / "images", "colmap": path / "images", "realestate10k": path.with_suffix("")}[format]
    if folder.exists():
        raise ValueError(f"{folder} exists; accepted: a sequence written where its images' folder is new")
    written = write_cameras(cameras, path, format, name=name)
    folder.mkdir()
    for index, frame in enumerate(frames):
        stem = str(round(index * 1e6 / FRAMES_PER_SECOND)) if format == "realestate10k" else f"frame_{index:05d}"
        written.append(folder / f"{stem}.png")
        Image.fromarray(to_uint8_image(frame)).save(written[-1])
    return written
