"""atomic_path: a build replaces its target whole or not at all, for files and folders."""

from __future__ import annotations

import subprocess
import sys

import pytest

from autointerp_dagster.core.atomic import atomic_path


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


def test_file_and_folder_replace_the_old_target(tmp_path):
    file_target = tmp_path / "model.gguf"
    file_target.write_text("old")
    with atomic_path(file_target) as tmp:
        assert not tmp.exists() and tmp.name.endswith(".tmp")
        tmp.write_text("new")
        assert file_target.read_text() == "old"  # nothing visible before success
    assert file_target.read_text() == "new"

    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "stale.txt").write_text("old")
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "tokens.txt").write_text("new")
    assert sorted(p.name for p in folder.iterdir()) == ["tokens.txt"]
    assert _siblings(folder) == ["corpus", "model.gguf"]


@pytest.mark.parametrize("as_folder", [False, True])
def test_an_error_keeps_the_old_target_and_leaves_no_temporary(tmp_path, as_folder):
    target = tmp_path / "cache"
    if as_folder:
        target.mkdir()
    (target / "old.txt" if as_folder else target).write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        if as_folder:
            tmp.mkdir()
            (tmp / "half.txt").write_text("partial")
        else:
            tmp.write_text("partial")
        raise RuntimeError("killed mid-build")
    assert (target / "old.txt" if as_folder else target).read_text() == "old"
    assert _siblings(target) == ["cache"]


def test_concurrent_builds_use_distinct_temporaries_and_the_last_wins(tmp_path):
    target = tmp_path / "run"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second
        for tmp, text in ((first, "first"), (second, "second")):
            tmp.mkdir()
            (tmp / "who").write_text(text)
    assert (target / "who").read_text() == "first"  # the outer build finished last
    assert _siblings(target) == ["run"]


def test_leftovers_of_dead_builders_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    target = tmp_path / "cache"
    killed = tmp_path / f"cache.{dead.stdout.strip()}-0123abcd.tmp"
    killed.mkdir()
    with atomic_path(target) as live:
        live.mkdir()
        with atomic_path(target) as other:  # a second builder starting meanwhile
            assert not killed.exists() and live.exists()
            other.mkdir()
        assert target.is_dir() and not (target / "who").exists()
        (live / "who").write_text("live")
    assert (target / "who").read_text() == "live" and _siblings(target) == ["cache"]
