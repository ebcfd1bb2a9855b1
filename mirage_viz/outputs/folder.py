"""Output folders that never cost the user a file: checked up front, written all at once, marked as ours.

A folder mirage_viz writes (``mirage-viz rollout --out``, ``mirage-viz bench --out``, ``mirage-viz cameras
convert --to colmap``) is assembled in a staging folder beside it and moved into place at the end, so a failure,
Ctrl-C or SIGTERM leaves the target as it was. Each finished folder carries a marker file (``MARKER``) listing
every file written into it. ``overwrite`` replaces only such a folder, and only while it holds nothing its marker
does not list (a folder is fine only as the parent of a listed file); the current folder, its parents, the home
folder and the filesystem root are never replaced.

Beside the target ``out`` a run makes hidden folders named after its process: ``.out.staging-PID-TOKEN`` (holding
``SENTINEL`` from its creation) and, while replacing, ``.out.replaced-PID-TOKEN`` (the old folder, with its marker).
A run killed outright (SIGKILL, power loss) leaves them; the next run at ``out`` removes those whose name matches,
which hold the sentinel or a marker, and whose process is gone. Nothing else is ever removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

__all__ = ["MARKER", "SENTINEL", "atomic_output_dir", "check_output_dir"]

MARKER = ".mirage_viz.json"
SENTINEL = ".mirage_viz.staging"  # in a staging folder from its creation: proof that a leftover is ours
_MARKER_FORMAT = "mirage_viz.output/v1"
_ACCEPTED = "a new folder, an empty folder, or with --overwrite a folder mirage_viz wrote"
_PID_DIGITS = 7  # Linux PIDs have at most 7 digits (pid_max is at most 2^22)
_TOKEN_HEX = 8


def _sibling(target: Path, kind: str, pid: int, token: str) -> Path:
    """The hidden folder beside ``target`` a run stages into (``kind`` "staging") or moves the old one to ("replaced")."""
    return target.parent / f".{target.name}.{kind}-{pid}-{token}"


def _protected(target: Path) -> str | None:
    """Why ``target`` (resolved) may never be replaced, or None."""
    if target == Path(target.anchor):
        return "the filesystem root"
    cwd = Path.cwd().resolve()
    if target == cwd:
        return "the current folder"
    if target in cwd.parents:
        return "a parent of the current folder"
    home = Path.home().resolve()
    if target == home or target in home.parents:
        return "the home folder" if target == home else "a parent of the home folder"
    return None


def _check_name_lengths(given: Path, target: Path) -> None:
    """Refuse a ``target`` whose new names (its own, its staging and aside siblings', the parents to be made) exceed
    the filesystem's limit on one name (``PC_NAME_MAX``, in bytes: 255 on most), before anything runs."""
    existing = next((p for p in target.parents if os.path.isdir(p)), None)  # isdir is False for a too-long name
    if existing is None:
        return  # the filesystem root: refused as such
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    for part in target.relative_to(existing).parts:
        if len(os.fsencode(part)) > limit:
            raise ValueError(f"output folder {given}: the name {part[:40]}... is {len(os.fsencode(part))} bytes, over "
                             f"this filesystem's limit of {limit} bytes per name; accepted: names of at most {limit} bytes")
    longest = _sibling(target, "replaced", 10**_PID_DIGITS - 1, "0" * _TOKEN_HEX).name
    extra = len(os.fsencode(longest)) - len(os.fsencode(target.name))
    if len(os.fsencode(longest)) > limit:
        raise ValueError(f"output folder {given}: its name is {len(os.fsencode(target.name))} bytes, and mirage_viz "
                         f"stages it beside itself as .NAME.staging-PID-TOKEN ({extra} bytes more), over this "
                         f"filesystem's limit of {limit} bytes per name; accepted: a folder name of at most "
                         f"{limit - extra} bytes")


def _listed_files(folder: Path) -> set[str] | None:
    """The files the marker of ``folder`` lists (relative POSIX paths), or None when it has no valid marker."""
    marker = folder / MARKER
    try:
        if marker.is_symlink() or not marker.is_file() or marker.stat().st_size > 16 * 2**20:
            return None
        data = json.loads(marker.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("format") != _MARKER_FORMAT or not isinstance(data.get("files"), list):
        return None
    return {f for f in data["files"] if isinstance(f, str)}


def _unlisted(folder: Path, listed: set[str]) -> list[str]:
    """Every entry of ``folder`` its marker does not list: files, links, and folders that are no listed file's parent
    (an empty folder the user added included); folders end in ``/``."""
    parents = {parent.as_posix() for name in listed for parent in PurePosixPath(name).parents}
    extra = []
    for root, dirs, files in os.walk(folder):
        base = Path(root).relative_to(folder)
        for name in sorted(dirs):
            relative = (base / name).as_posix()
            if (Path(root) / name).is_symlink():  # a link is listed as a file; os.walk does not follow it
                files.append(name)
            elif relative not in parents:
                extra.append(relative + "/")
                dirs.remove(name)  # its content is the user's too: named once, by its folder
        extra += [(base / name).as_posix() for name in files
                  if (base / name).as_posix() not in listed and (base / name).as_posix() != MARKER]
    return sorted(extra)


def check_output_dir(out_dir: str | Path, overwrite: bool = False) -> Path:
    """Check that ``out_dir`` may be written, and return it resolved (symbolic links followed).

    Accepted: a path that does not exist yet (its parents are made), an empty folder, or with ``overwrite``
    a folder mirage_viz wrote that holds only the files it wrote; in every case with names that fit the
    filesystem, the hidden staging name beside it included. Anything else raises ``ValueError`` saying why.
    """
    if str(out_dir).strip() == "":
        raise ValueError(f"the output folder is empty; give a folder name such as mirage_out ({_ACCEPTED})")
    given = Path(out_dir)
    try:
        _check_name_lengths(given, Path(os.path.abspath(given)))  # as given: a too-long name cannot even be looked up
        if given.is_symlink() and not given.exists():
            raise ValueError(f"output folder {given} is a symbolic link to a missing path; give a folder ({_ACCEPTED})")
        target = Path(os.path.abspath(given)).resolve()
        why = _protected(target)
        if why is not None:
            raise ValueError(f"output folder {given} is {why}; mirage_viz writes a folder of its own there only when "
                             f"it is {_ACCEPTED}: give a new name such as {given / 'mirage_out'}")
        _check_name_lengths(given, target)  # and where a link leads
        for ancestor in [target, *target.parents]:
            if ancestor.exists():
                if not ancestor.is_dir():
                    what = "exists and is not a folder" if ancestor == target else f"is inside {ancestor}, which is a file"
                    raise ValueError(f"output folder {given} {what}; accepted: {_ACCEPTED}")
                if ancestor != target and not os.access(ancestor, os.W_OK | os.X_OK):
                    raise ValueError(f"output folder {given}: cannot write in {ancestor} (permission denied)")
                break
        if not target.exists() or not any(target.iterdir()):
            return target
        if not os.access(target.parent, os.W_OK | os.X_OK):
            raise ValueError(f"output folder {given}: cannot write in {target.parent} (permission denied)")
        if not overwrite:
            raise ValueError(f"output folder {given} exists and is not empty; choose a new one or pass --overwrite "
                             "(which replaces only a folder mirage_viz wrote)")
        listed = _listed_files(target)
        if listed is None:
            raise ValueError(f"output folder {given} was not written by mirage_viz (it has no {MARKER} marker), so "
                             "--overwrite leaves it alone; choose a new folder, or empty it yourself")
        extra = _unlisted(target, listed)
        if extra:
            shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
            raise ValueError(f"output folder {given} holds files or folders mirage_viz did not write ({shown}), so "
                             "--overwrite leaves it alone; move them out or choose a new folder")
    except OSError as error:
        raise ValueError(f"output folder {given} cannot be used: {error.strerror or error}") from None
    return target


def _write_marker(staging: Path, written_by: str) -> None:
    files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*")
                   if (p.is_file() or p.is_symlink()) and p != staging / SENTINEL)
    (staging / MARKER).write_text(json.dumps({"format": _MARKER_FORMAT, "written_by": written_by, "files": files}, indent=1))


def _process_gone(pid: int) -> bool:
    """Whether process ``pid`` is provably gone: not this one, and unknown to the kernel (another user's exists)."""
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists
        return False
    return False


def _remove_ours(folder: Path) -> None:
    """Remove a folder a run of mirage_viz made, its sentinel and marker last: cut short, it still proves ours."""
    proofs = (SENTINEL, MARKER)
    for entry in folder.iterdir():
        if entry.name not in proofs:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for name in proofs:
        (folder / name).unlink(missing_ok=True)
    folder.rmdir()


def _remove_stale_leftovers(target: Path) -> None:
    """Remove the staging and replaced folders that killed runs at ``target`` left: only a folder (not a link) whose
    name is ``.NAME.staging-PID-TOKEN`` or ``.NAME.replaced-PID-TOKEN``, holding the sentinel or a marker, whose
    process is gone; one holding a marker, only while it holds nothing the marker does not list."""
    pid, token = rf"(\d{{1,{_PID_DIGITS}}})", rf"[0-9a-f]{{{_TOKEN_HEX}}}"
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(?:staging|replaced)-{pid}-{token}")
    for entry in target.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir() or not _process_gone(int(match[1])):
            continue
        sentinel, listed = entry / SENTINEL, _listed_files(entry)
        if (sentinel.is_file() and not sentinel.is_symlink()) or (listed is not None and not _unlisted(entry, listed)):
            with contextlib.suppress(OSError):
                _remove_ours(entry)


def _make_staging(target: Path) -> Path:
    """A new hidden staging folder beside ``target``, named after this process, holding the sentinel."""
    staging = _sibling(target, "staging", os.getpid(), secrets.token_hex(_TOKEN_HEX // 2))
    staging.mkdir()
    try:
        (staging / SENTINEL).write_text("a mirage_viz staging folder: the next run at this output removes it once "
                                        "its process is gone\n")
    except BaseException:
        staging.rmdir()
        raise
    return staging


@contextmanager
def atomic_output_dir(out_dir: str | Path, overwrite: bool = False, written_by: str = "mirage_viz") -> Iterator[Path]:
    """Yield a staging folder beside ``out_dir``, moved into place (with its marker) only when the block succeeds.

    A failure, Ctrl-C or SIGTERM (once turned into an exception, as the CLI does) removes the staging folder
    and leaves ``out_dir`` as it was. A replaced folder is moved aside first and removed only once the new one
    is in place. What killed runs at ``out_dir`` left is removed first (see the module's docstring).
    """
    target = check_output_dir(out_dir, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_leftovers(target)
    staging = _make_staging(target)
    aside = None
    try:
        yield staging
        _write_marker(staging, written_by)
        (staging / SENTINEL).unlink()  # the marker now proves it ours
        check_output_dir(target, overwrite)  # still ours (nothing was added while we ran)
        if target.exists():
            aside = _sibling(target, "replaced", os.getpid(), secrets.token_hex(_TOKEN_HEX // 2))
            target.rename(aside)
        try:
            staging.rename(target)
        except BaseException:
            if aside is not None:
                aside.rename(target)
                aside = None
            raise
    except BaseException:
        with contextlib.suppress(OSError):
            _remove_ours(staging)
        raise
    if aside is not None:
        with contextlib.suppress(OSError):
            _remove_ours(aside)
