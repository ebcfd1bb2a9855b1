"""Output folders that never cost the user a file: checked up front, written all at once, marked as ours.

A folder mirage_viz writes (``mirage-viz rollout --out``, ``mirage-viz bench --out``) is assembled in a
staging folder beside it and moved into place at the end, so a failure, Ctrl-C or SIGTERM leaves the target
as it was. Each finished folder carries a marker file (``MARKER``) listing every file written into it.
``overwrite`` replaces only such a folder, and only while it holds nothing but the files its marker lists;
the current folder, its parents, the home folder and the filesystem root are never replaced.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["MARKER", "atomic_output_dir", "check_output_dir"]

MARKER = ".mirage_viz.json"
_MARKER_FORMAT = "mirage_viz.output/v1"
_ACCEPTED = "a new folder, an empty folder, or with --overwrite a folder mirage_viz wrote"


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
    """Everything in ``folder`` that its marker does not list (folders holding only listed files are fine)."""
    extra = []
    for root, dirs, files in os.walk(folder):
        base = Path(root).relative_to(folder)
        for name in files + [d for d in dirs if (Path(root) / d).is_symlink()]:
            relative = (base / name).as_posix()
            if relative != MARKER and relative not in listed:
                extra.append(relative)
    return sorted(extra)


def check_output_dir(out_dir: str | Path, overwrite: bool = False) -> Path:
    """Check that ``out_dir`` may be written, and return it resolved (symbolic links followed).

    Accepted: a path that does not exist yet (its parents are made), an empty folder, or with ``overwrite``
    a folder mirage_viz wrote that holds only the files it wrote. Anything else raises ``ValueError`` saying why.
    """
    if str(out_dir).strip() == "":
        raise ValueError(f"the output folder is empty; give a folder name such as mirage_out ({_ACCEPTED})")
    given = Path(out_dir)
    try:
        if given.is_symlink() and not given.exists():
            raise ValueError(f"output folder {given} is a symbolic link to a missing path; give a folder ({_ACCEPTED})")
        target = Path(os.path.abspath(given)).resolve()
        why = _protected(target)
        if why is not None:
            raise ValueError(f"output folder {given} is {why}; mirage_viz writes a folder of its own there only when "
                             f"it is {_ACCEPTED}: give a new name such as {given / 'mirage_out'}")
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
            raise ValueError(f"output folder {given} holds files mirage_viz did not write ({shown}), so --overwrite "
                             "leaves it alone; move them out or choose a new folder")
    except OSError as error:
        raise ValueError(f"output folder {given} cannot be used: {error.strerror or error}") from None
    return target


def _write_marker(staging: Path, written_by: str) -> None:
    files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file() or p.is_symlink())
    (staging / MARKER).write_text(json.dumps({"format": _MARKER_FORMAT, "written_by": written_by, "files": files}, indent=1))


@contextmanager
def atomic_output_dir(out_dir: str | Path, overwrite: bool = False, written_by: str = "mirage_viz") -> Iterator[Path]:
    """Yield a staging folder beside ``out_dir``, moved into place (with its marker) only when the block succeeds.

    A failure, Ctrl-C or SIGTERM (once turned into an exception, as the CLI does) removes the staging folder
    and leaves ``out_dir`` as it was. A replaced folder is moved aside first and removed only once the new one
    is in place.
    """
    target = check_output_dir(out_dir, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    aside = None
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
        yield staging
        _write_marker(staging, written_by)
        check_output_dir(target, overwrite)  # still ours (nothing was added while we ran)
        if target.exists():
            aside = target.parent / f".{target.name}.replaced-{secrets.token_hex(4)}"
            target.rename(aside)
        try:
            staging.rename(target)
        except BaseException:
            if aside is not None:
                aside.rename(target)
                aside = None
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
