"""--overwrite never removes what mirage_viz did not write; a stopped run leaves nothing behind."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mirage_viz.cli import main
from mirage_viz.outputs.folder import MARKER, SENTINEL, atomic_output_dir, check_output_dir

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


@pytest.mark.slow
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


def dead_pid() -> int:
    """The PID of a process that has ended (spawned and waited for)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_name_whose_staging_name_is_too_long_is_refused_before_anything_runs(tree, capsys, monkeypatch):
    import mirage_viz.cli as cli

    limit = os.pathconf(".", "PC_NAME_MAX")
    monkeypatch.setattr(cli, "_backbone", lambda *a, **k: pytest.fail("a model loaded before the name was checked"))
    name = "r" * (limit - 5)  # fits itself, but not as .NAME.staging-PID-TOKEN
    assert main([*ROLLOUT, "--out", name]) == 2
    err = capsys.readouterr().err
    assert f"limit of {limit} bytes per name" in err and f"at most {limit - 27} bytes" in err and "Traceback" not in err
    assert main([*ROLLOUT, "--out", f"{'p' * (limit + 1)}/run"]) == 2
    assert f"over this filesystem's limit of {limit} bytes per name" in capsys.readouterr().err
    assert sorted(os.listdir(".")) == ["sentinel.txt"]
    check_output_dir("r" * (limit - 27))  # the longest name accepted


def test_the_longest_accepted_name_is_written_and_replaced(tmp_path):
    out = tmp_path / ("r" * (os.pathconf(tmp_path, "PC_NAME_MAX") - 27))
    for text in ("first", "second"):
        with atomic_output_dir(out, overwrite=True) as staging:
            (staging / "a.txt").write_text(text)
    assert (out / "a.txt").read_text() == "second" and leftovers(tmp_path) == []


def test_overwrite_refuses_an_empty_folder_the_user_added(tmp_path):
    out = tmp_path / "run"
    with atomic_output_dir(out) as staging:
        (staging / "frames").mkdir()
        (staging / "frames" / "a.png").write_bytes(b"png")
    check_output_dir(out, overwrite=True)  # a folder holding a listed file is fine
    (out / "frames" / "mine").mkdir()
    (out / "notes").mkdir()
    (out / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"did not write \(frames/mine/, notes/\)"):
        check_output_dir(out, overwrite=True)
    with pytest.raises(ValueError, match="did not write"):
        with atomic_output_dir(out, overwrite=True) as staging:
            (staging / "b.txt").write_text("new")
    assert (out / "frames" / "mine").is_dir() and (out / "notes" / "todo.txt").read_text() == "mine"
    assert leftovers(tmp_path) == []


def test_a_killed_runs_staging_and_aside_are_removed_by_the_next_run_and_nothing_else(tmp_path):
    out, pid = tmp_path / "run", dead_pid()
    with atomic_output_dir(out) as staging:
        (staging / "a.txt").write_text("first")
    staging = tmp_path / f".run.staging-{pid}-0123abcd"  # as a run killed mid-write leaves it
    (staging / "frames").mkdir(parents=True)
    (staging / SENTINEL).write_text("")
    (staging / "frames" / "a.png").write_bytes(b"png")
    aside = tmp_path / f".run.replaced-{pid}-89abcdef"  # a replaced folder, with its marker
    aside.mkdir()
    (aside / MARKER).write_text((out / MARKER).read_text())
    (aside / "a.txt").write_text("older")
    kept = {  # a user's folders that look alike: no sentinel, a live process, another name, not a marker
        f".run.staging-{pid}-00000000": None, f".run.staging-{os.getpid()}-11111111": SENTINEL,
        f".other.staging-{pid}-22222222": SENTINEL, f".run.staging-{pid}-33333333-mine": SENTINEL,
        f".run.replaced-{pid}-55555555": MARKER}
    for name, inside in kept.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / (inside or "notes.txt")).write_text("mine")
    (tmp_path / f".run.staging-{pid}-44444444").symlink_to(staging.parent / f".run.staging-{pid}-00000000")
    added = tmp_path / f".run.replaced-{pid}-66666666"  # a marker, but a file it does not list
    shutil.copytree(aside, added)
    (added / "notes.txt").write_text("mine")
    with atomic_output_dir(out, overwrite=True) as staging_now:
        (staging_now / "a.txt").write_text("second")
    assert (out / "a.txt").read_text() == "second"
    assert leftovers(tmp_path) == sorted([*kept, f".run.staging-{pid}-44444444", added.name])
    assert (added / "notes.txt").read_text() == "mine"
    assert all((tmp_path / name / (inside or "notes.txt")).read_text() == "mine" for name, inside in kept.items())


@pytest.mark.slow
def test_a_sigkilled_rollout_leaves_a_staging_folder_that_the_next_run_removes(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "mirage_viz.cli", *ROLLOUT[:4], "4", "--size", "128",
                                "--out", "run"], stderr=subprocess.DEVNULL, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(f".run.staging-*/{SENTINEL}")) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()  # while it writes its output: no handler runs
    process.wait()
    (staging,) = leftovers(tmp_path)
    assert staging.startswith(f".run.staging-{process.pid}-") and (tmp_path / staging / SENTINEL).is_file()
    with atomic_output_dir(tmp_path / "run") as staging_now:
        (staging_now / "a.txt").write_text("new")
    assert leftovers(tmp_path) == [] and os.listdir(tmp_path) == ["run"]
