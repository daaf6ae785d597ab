"""facerec.file_lock: one holder at a time, the lock file gone after a clean release, and a lock
file left by a killed process recognised as free."""

import os
import subprocess
import sys

import pytest

from facerec import file_lock
from facerec.errors import StoreError
from facerec.store.file import FileStore


def test_a_second_holder_is_refused_and_told_who_holds_it(tmp_path):
    path = tmp_path / "model.npz.lock"
    fh = file_lock.acquire(path)
    holder = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pathlib; from facerec import file_lock\n"
            "try:\n    file_lock.acquire(pathlib.Path(sys.argv[1]))\nexcept file_lock.LockHeld as e:\n    print(e.holder)",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert holder == f"pid {os.getpid()}"
    file_lock.release(fh, path)
    assert not path.exists()


def test_a_lock_file_left_by_a_killed_process_is_free(tmp_path):
    path = tmp_path / "model.npz.lock"
    killed = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib, time; from facerec import file_lock\n"
            "file_lock.acquire(pathlib.Path(sys.argv[1])); print('held', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert killed.stdout.readline().strip() == "held"
    killed.kill()
    killed.wait()
    assert path.exists()  # what the killed process left
    fh = file_lock.acquire(path)  # not obeyed: the kernel's lock went with the process
    file_lock.release(fh, path)
    assert not path.exists()


def test_a_writer_store_leaves_no_lock_file_and_the_next_writer_opens(tmp_path):
    model = tmp_path / "model.npz"
    first = FileStore(model, writer=True)
    assert (tmp_path / "model.npz.lock").exists()
    with pytest.raises(StoreError, match="open for writing by pid"):
        FileStore(model, writer=True)
    first.close()
    assert not (tmp_path / "model.npz.lock").exists()
    FileStore(model, writer=True).close()
    assert list(tmp_path.iterdir()) == []


def test_a_lock_removed_while_waited_on_is_not_shared(tmp_path):
    """The file removed by its holder after another opened it: the other must lock the new file,
    never the removed one (where a third process could not see it)."""
    path = tmp_path / "x.lock"
    first = file_lock.acquire(path)
    stale = open(path, "a+")  # opened before the release, as a waiting process would have
    file_lock.release(first, path)
    second = file_lock.acquire(path)  # a new file at the path
    assert not file_lock._still_named(stale, path)
    file_lock.release(second, path)
    stale.close()
