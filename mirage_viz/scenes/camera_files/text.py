"""What the camera-file readers and writers share: numbered text lines read from a bounded file, numbers and
matrices checked with the place they came from, poses checked and counted, and files written atomically.

Every reader error is a ``ValueError`` that names the file, the place in it (``line 7``, ``frames[3]``), what
was wrong and what is accepted.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch

from mirage_viz.geometry.cameras import Camera, Intrinsics, check_camera_to_world, invert_pose
from mirage_viz.inputs import open_input_file
from mirage_viz.scenes.trajectories import MAX_POSES, Trajectory

__all__ = [
    "FOCAL_RANGE", "MAX_IMAGE_SIDE", "MAX_LINE_BYTES", "MAX_TEXT_BYTES", "NumberedLines",
    "camera_to_world_from_world_to_camera", "check_cameras", "check_pose", "check_pose_count", "file_intrinsics",
    "json_numbers", "parse_numbers", "read_name", "trajectory_from_file", "write_atomically",
    "write_text_atomically"]

MAX_TEXT_BYTES = 64 * 2**20  # a 10,000-pose text file is about 2 MB
MAX_LINE_BYTES = 2**16  # a data line of any accepted format is far shorter; COLMAP's POINTS2D lines are skipped
MAX_NAME_CHARS = 200  # as a mirage_viz trajectory file accepts
MAX_IMAGE_SIDE = 100_000  # pixels; the largest sensors are about 20,000 px wide
FOCAL_RANGE = (0.01, 100.0)  # focal length over its image side: fields of view from about 178 down to 0.6 degrees


class NumberedLines:
    """A text file read one line at a time (never whole), each line with its number (1-based)."""

    def __init__(self, path: str | Path, what: str, max_bytes: int = MAX_TEXT_BYTES) -> None:
        self.path, self.what, self.max_bytes = path, what, max_bytes
        self.number, self._bytes = 0, 0
        self._handle = open_input_file(path, what, max_bytes)

    def __enter__(self) -> NumberedLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    @property
    def where(self) -> str:
        """The file and the line last read: ``"COLMAP images.txt file sparse/images.txt line 7"``."""
        return f"{self.what} file {self.path} line {self.number}"

    def error(self, message: str) -> ValueError:
        """A ``ValueError`` naming the file and the line last read."""
        return ValueError(f"{self.where}: {message}")

    def _read(self, limit: int) -> bytes:
        raw = self._handle.readline(limit)
        self._bytes += len(raw)
        if self._bytes > self.max_bytes:  # the file grew after it was checked
            raise ValueError(f"{self.what} file {self.path} is over {self.max_bytes / 2**20:,.0f} MB; accepted: at most that")
        return raw

    def read_line(self) -> str | None:
        """The next line, stripped; ``None`` at the end of the file."""
        raw = self._read(MAX_LINE_BYTES + 1)
        if not raw:
            return None
        self.number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise self.error(f"the line is longer than {MAX_LINE_BYTES:,} bytes; accepted: the lines of a {self.what} file")
        try:
            return raw.decode("utf-8-sig").strip()
        except UnicodeDecodeError:
            raise self.error(f"not UTF-8 text; accepted: a {self.what} text file") from None

    def skip_line(self) -> None:
        """Pass over the next line, however long, without keeping it (COLMAP's POINTS2D)."""
        raw = self._read(2**20)
        if raw:
            self.number += 1
        while raw and not raw.endswith(b"\n"):
            raw = self._read(2**20)

    def data_lines(self) -> Iterator[str]:
        """The lines that are neither blank nor ``#`` comments; ``self.number`` is the current one's number."""
        while (line := self.read_line()) is not None:
            if line and not line.startswith("#"):
                yield line


def parse_numbers(fields: Sequence[str], where: str, accepted: str) -> list[float]:
    """``fields`` as finite floats, or a ``ValueError`` naming ``where`` and the column (1-based)."""
    numbers = []
    for column, text in enumerate(fields, 1):
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{where}: column {column} is {text[:40]!r}, not a number; accepted: {accepted}") from None
        if not math.isfinite(value):
            raise ValueError(f"{where}: column {column} is {text[:40]!r}; accepted: finite numbers ({accepted})")
        numbers.append(value)
    return numbers


def _flatten(value: object, shape: tuple[int, ...]) -> list[float] | None:
    if not shape:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        try:
            number = float(value)  # an integer of hundreds of digits overflows
        except OverflowError:
            return None
        return [number] if math.isfinite(number) else None
    if not isinstance(value, list) or len(value) != shape[0]:
        return None
    flat: list[float] = []
    for item in value:
        if (numbers := _flatten(item, shape[1:])) is None:
            return None
        flat += numbers
    return flat


def json_numbers(value: object, shape: tuple[int, ...], where: str, accepted: str) -> torch.Tensor:
    """Nested JSON lists of finite numbers of ``shape`` as a float64 tensor of that shape, else a ``ValueError``."""
    flat = _flatten(value, shape)
    if flat is None:
        raise ValueError(f"{where} is {str(value)[:120]}; accepted: {accepted} (finite numbers)")
    return torch.tensor(flat, dtype=torch.float64).reshape(shape)


_INTRINSICS_ACCEPTED = (f"accepted: an image size of 1 to {MAX_IMAGE_SIDE:,} whole pixels a side, focal lengths > 0 of "
                        f"{FOCAL_RANGE[0]:g} to {FOCAL_RANGE[1]:g} times their image side and a principal point within "
                        "one image size of the image, all finite")


def file_intrinsics(fx: float, fy: float, cx: float, cy: float, width: float, height: float, where: str) -> Intrinsics:
    """mirage_viz ``Intrinsics`` (pixel centres at integers) from a file's values (pixels), or a ``ValueError`` naming
    ``where`` when one is not finite or out of a sane range (``MAX_IMAGE_SIDE``, ``FOCAL_RANGE``, the principal
    point at most one image size outside the image): every camera-file reader checks its intrinsics here."""
    for name, value in (("width", width), ("height", height)):
        if not (math.isfinite(value) and float(value).is_integer() and 1 <= value <= MAX_IMAGE_SIDE):
            raise ValueError(f"{where}: width and height must be whole pixels in [1, {MAX_IMAGE_SIDE:,}], got {name} "
                             f"{value:g}; {_INTRINSICS_ACCEPTED}")
    low, high = FOCAL_RANGE
    for name, value, side in (("fx", fx, width), ("fy", fy, height), ("cx", cx, width), ("cy", cy, height)):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {name} is {value}; {_INTRINSICS_ACCEPTED}")
        if name in ("fx", "fy") and value <= 0:
            raise ValueError(f"{where}: focal lengths must be > 0, got {name} = {value:g}; {_INTRINSICS_ACCEPTED}")
        if name in ("fx", "fy") and not low * side <= value <= high * side:
            raise ValueError(f"{where}: {name} = {value:g} is {value / side:.3g} times the image's {side:g} pixels; "
                             f"{_INTRINSICS_ACCEPTED}")
        if name in ("cx", "cy") and not -side <= value <= 2 * side:
            raise ValueError(f"{where}: {name} = {value:g} is outside the image of {side:g} pixels by more than its "
                             f"size; {_INTRINSICS_ACCEPTED}")
    return Intrinsics(fx=float(fx), fy=float(fy), cx=float(cx), cy=float(cy), width=int(width), height=int(height))


def check_pose(camera_to_world: torch.Tensor, where: str) -> torch.Tensor:
    """OpenCV ``camera_to_world`` (4, 4) checked by ``check_camera_to_world``, its message prefixed with ``where``."""
    try:
        return check_camera_to_world(camera_to_world)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def camera_to_world_from_world_to_camera(rotation: torch.Tensor, translation: Sequence[float] | torch.Tensor,
                                         where: str) -> torch.Tensor:
    """OpenCV world-to-camera ``X_cam = R X_world + t`` (R (3, 3), t (3,)) -> checked OpenCV ``camera_to_world`` (4, 4).

    A mirror or a scaled rotation stays one when inverted, so the check of the inverse refuses it.
    """
    world_to_camera = torch.eye(4, dtype=torch.float64)  # (4, 4)
    world_to_camera[:3, :3], world_to_camera[:3, 3] = rotation, torch.as_tensor(translation, dtype=torch.float64)
    return check_pose(invert_pose(world_to_camera), f"{where} (the inverse of its world-to-camera pose)")


def check_pose_count(count: int, where: str) -> None:
    """Refuse a file once it holds more than ``MAX_POSES`` poses, before reading the rest."""
    if count > MAX_POSES:
        raise ValueError(f"{where}: more than {MAX_POSES:,} poses; accepted: 2 to {MAX_POSES:,} poses "
                         "(subsample the path before writing the file)")


def read_name(value: object, path: str | Path) -> str:
    """The trajectory name a file gives (``value``) when it is one line of text, else the file's stem."""
    if isinstance(value, str) and value.strip() and len(value) <= MAX_NAME_CHARS and "\n" not in value:
        return value.strip()
    return Path(path).stem[:MAX_NAME_CHARS] or "custom"


def trajectory_from_file(path: str | Path, what: str, name: str, poses: list[torch.Tensor],
                         intrinsics: list[Intrinsics]) -> Trajectory:
    """A ``Trajectory`` of a file's OpenCV ``camera_to_world`` poses (each (4, 4)) and their intrinsics."""
    if len(poses) < 2:
        raise ValueError(f"{what} file {path} holds {len(poses)} pose(s); accepted: 2 to {MAX_POSES:,} poses "
                         "(the start and at least one step)")
    return Trajectory(name=name, camera_to_world=torch.stack(poses).float(), intrinsics=tuple(intrinsics))


def check_cameras(cameras: Sequence[Camera], name: str) -> list[Camera]:
    """The cameras a writer is given, checked: 2 to ``MAX_POSES`` ``Camera`` objects; and a one-line name."""
    cameras = list(cameras)
    if not 2 <= len(cameras) <= MAX_POSES or not all(isinstance(c, Camera) for c in cameras):
        raise ValueError(f"a camera file holds 2 to {MAX_POSES:,} Camera objects (a start and its steps), got "
                         f"{len(cameras):,} items of types {sorted({type(c).__name__ for c in cameras})}")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS or "\n" in name:
        raise ValueError(f"a camera file's name is one line of 1 to {MAX_NAME_CHARS} characters, got {str(name)[:80]!r}")
    return cameras


def write_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """``write(temporary)`` into a hidden sibling of ``path``, then move it onto ``path`` in one step: a failure
    leaves ``path`` as it was and no temporary behind. Refuses a missing parent folder and a ``path`` that is a folder
    or a link (what may be replaced is :func:`mirage_viz.scenes.camera_files.check_camera_output`'s to say)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: the folder {path.parent} does not exist; accepted: a path in an existing folder")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise ValueError(f"cannot write {path}: it is a folder, a link or not a regular file; accepted: a new path or a "
                         "file to replace")
    # short whatever the name's length, unique per process and call
    temporary = path.with_name(f".{path.name[:64]}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: str | Path, text: str) -> Path:
    """``text`` written to ``path`` by :func:`write_atomically`."""
    return write_atomically(path, lambda temporary: temporary.write_text(text))
