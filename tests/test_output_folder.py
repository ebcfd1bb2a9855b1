"""--overwrite never removes what mirage_viz did not write; a stopped run leaves nothing behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mirage_viz.cli import main
from mirage_viz.outputs.folder import MARKER, atomic_output_dir, check_output_dir

ROLLOUT = ["rollout", "--trajectory", "push_in", "--steps", "1", "--size", "64", "--memories", "latent", "--quiet"]


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """home/ (the home folder) and work/ (the current folder) side by side, each with a sentinel, one at the top."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    for folder in (tmp_path, home, work):
        (folder / "sentinel.txt").write_text("mine")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return tmp_path


def sentinels_survive(root: Path) -> bool:
    return all((folder / "sentinel.txt").read_text() == "mine" for folder in (root, root / "home", root / "work"))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize(
    "out, message",
    [
        (".", "is the current folder"),
        ("..", "is a parent of the current folder"),
        ("../..", "is a parent of the current folder"),
        ("../home", "is the home folder"),
        ("/", "is the filesystem root"),
        ("sentinel.txt", "exists and is not a folder"),
        ("sentinel.txt/sub", "which is a file"),
    ],
)
def test_overwrite_never_touches_folders_it_did_not_write(tree, capsys, out, message):
    assert main([*ROLLOUT, "--out", out, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert sentinels_survive(tree) and sorted(os.listdir(tree / "work")) == ["sentinel.txt"]


def test_empty_out_is_refused_by_the_parser(tree, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*ROLLOUT, "--out", ""])
    assert exit_info.value.code == 2 and "output folder is empty" in capsys.readouterr().err
    assert sentinels_survive(tree)


def test_overwrite_replaces_its_own_folder_but_refuses_one_with_foreign_files(tree, backbone, capsys):
    assert main([*ROLLOUT, "--out", "run"]) == 0
    marker = Path("run") / MARKER
    assert marker.is_file() and "summary.json" in marker.read_text()
    assert main([*ROLLOUT, "--out", "run"]) == 2  # not empty, no --overwrite
    assert main([*ROLLOUT, "--out", "run", "--overwrite"]) == 0  # ours: replaced
    (Path("run") / "frames" / "notes.txt").write_text("mine")
    assert main([*ROLLOUT, "--out", "run", "--overwrite"]) == 2
    assert "did not write (frames/notes.txt)" in capsys.readouterr().err
    assert (Path("run") / "frames" / "notes.txt").read_text() == "mine"
    mine = Path("mine")
    mine.mkdir()
    (mine / "data.csv").write_text("1,2")
    assert main([*ROLLOUT, "--out", "mine", "--overwrite"]) == 2
    assert f"no {MARKER} marker" in capsys.readouterr().err and (mine / "data.csv").read_text() == "1,2"
    assert sentinels_survive(tree) and leftovers(Path.cwd()) == []


def test_a_symlinked_out_is_followed_and_written_through(tree, backbone):
    target = tree / "elsewhere"
    target.mkdir()
    Path("link").symlink_to(target)
    assert main([*ROLLOUT, "--out", "link"]) == 0
    assert Path("link").is_symlink() and (target / "summary.json").is_file() and (target / MARKER).is_file()
    Path("dangling").symlink_to(tree / "missing")
    with pytest.raises(ValueError, match="symbolic link to a missing path"):
        check_output_dir("dangling")


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit, OSError])
def test_an_interrupted_write_leaves_the_old_folder_and_no_staging(tmp_path, error):
    out = tmp_path / "run"
    with atomic_output_dir(out) as staging:
        (staging / "a.txt").write_text("first")
    with pytest.raises(error):
        with atomic_output_dir(out, overwrite=True) as staging:
            (staging / "a.txt").write_text("second")
            raise error()
    assert (out / "a.txt").read_text() == "first" and leftovers(tmp_path) == []


def test_sigterm_mid_run_removes_the_staging_folder(tmp_path):
    """A real SIGTERM at several moments (imports, models, steps): exit 143, no traceback, nothing left."""
    for delay in (0.3, 2.0, 4.0):
        process = subprocess.Popen([sys.executable, "-m", "mirage_viz.cli", *ROLLOUT[:4], "40", "--size", "128",
                                    "--out", str(tmp_path / "run")], stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        time.sleep(delay)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 143, err
        assert "terminated; nothing was written" in err and "Traceback" not in err
        assert os.listdir(tmp_path) == []


def test_ctrl_c_during_imports_is_a_message_and_exit_130(tmp_path):
    for delay in (0.5, 1.0, 1.5):  # after the interpreter starts (before it, Python itself answers), during the imports
        process = subprocess.Popen([sys.executable, "-m", "mirage_viz.cli", *ROLLOUT, "--out", str(tmp_path / "run")],
                                   stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err  # a 1-step rollout takes seconds: the signal always lands first
        assert "Traceback" not in err and "interrupted; nothing was written" in err and os.listdir(tmp_path) == []
