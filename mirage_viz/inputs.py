"""Reading files a user hands us: regular files only, bounded in size and in nesting, never a hang.

A FIFO, a device or a folder given as an input file is refused before anything is read (opening a FIFO
for reading would wait for a writer forever); a file over its size bound is refused before it is read;
JSON nested deeper than any mirage_viz format is refused with a message, not a ``RecursionError``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["MAX_JSON_BYTES", "MAX_JSON_DEPTH", "open_input_file", "read_json_file"]

MAX_JSON_BYTES = 16 * 2**20  # a 10,000-pose trajectory is about 4 MB
MAX_JSON_DEPTH = 32  # mirage_viz's formats nest at most 6 deep


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def open_input_file(path: str | Path, what: str, max_bytes: int) -> BinaryIO:
    """Open ``path`` for reading in binary, or raise ``ValueError`` saying why it cannot be an input.

    The file is opened without blocking and checked on its open descriptor, so a FIFO never hangs and a
    file swapped after the check is still the one checked. ``what`` names the input in messages ("photo").
    """
    if str(path).strip() == "":
        raise ValueError(f"no {what} file given; accepted: the path of a regular file")
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ValueError(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{what} file {path} is a folder; accepted: a regular file") from None
    except OSError as error:
        raise ValueError(f"{what} file {path} cannot be opened: {error.strerror or error}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{what} file {path} is {_kind(info.st_mode)}; accepted: a regular file")
        if info.st_size > max_bytes:
            raise ValueError(f"{what} file {path} is {_megabytes(info.st_size)}; accepted: at most {_megabytes(max_bytes)}")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _depth(text: str) -> int:
    """Deepest nesting of brackets outside strings (vectorised; ``json`` itself would recurse)."""
    codes = np.frombuffer(_STRING.sub("", text).encode("utf-8", "replace"), dtype=np.uint8)
    steps = np.zeros(codes.shape, dtype=np.int32)
    steps[(codes == ord("[")) | (codes == ord("{"))] = 1
    steps[(codes == ord("]")) | (codes == ord("}"))] = -1
    return int(np.cumsum(steps).max(initial=0))


def read_json_file(path: str | Path, what: str, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> object:
    """Parse a JSON input file, or raise ``ValueError`` saying what is wrong with it."""
    with open_input_file(path, what, max_bytes) as handle:
        raw = handle.read(max_bytes + 1)
    if len(raw) > max_bytes:  # grew after the check
        raise ValueError(f"{what} file {path} is over {_megabytes(max_bytes)}; accepted: at most {_megabytes(max_bytes)}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{what} file {path} is not text (not UTF-8); accepted: a JSON file") from None
    if _depth(text) > max_depth:
        raise ValueError(f"{what} file {path} nests deeper than {max_depth} levels; accepted: a mirage_viz {what} JSON")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{what} file {path} is not valid JSON: {error}") from None
    except ValueError:  # Python's own bound on the digits of an integer it reads
        digits = sys.get_int_max_str_digits()
        raise ValueError(f"{what} file {path} holds an integer of more than {digits:,} digits; accepted: numbers of at "
                         f"most {digits:,} digits (a large value with an exponent, such as 1e30)") from None
