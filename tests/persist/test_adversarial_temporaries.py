"""Issue 10, class 6: concurrent saves in one process do not collide, and killed saves leave nothing behind
for long.

Threads save the same name at once (each file stays whole and loads); a save killed with SIGKILL halfway leaves
its temporary file, which the next save or resume removes, while temporary files that may still be written
(this process's, a live process's, another machine's recent ones) and unrelated files stay.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from helpers import ROOT, make_learner, same_state, state_copy

import minifastai.persist.atomic as ck
from minifastai import SaveModelCallback
from minifastai.persist import atomic_save, safe_load, stale_temporaries, with_checksum

KILLED_SAVE = """
import sys, time
from minifastai.persist import atomic_write
def write(f):
    f.write(b"x" * 1_000_000)
    f.flush()
    open(sys.argv[2], "w").write("halfway")
    time.sleep(60)
atomic_write(sys.argv[1], write)
"""


def _temporaries(folder: str | Path = "models") -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp") or ".tmp" in p.name)


def _killed_save(target: Path) -> tuple[Path, int]:
    """Start a save of `target` in another process, SIGKILL it halfway; returns its temporary file and pid."""
    ready = target.with_name("halfway.flag")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, str(target), str(ready)], env=env)
    t0 = time.monotonic()
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() - t0 < 60, "the writer did not start"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    ready.unlink()
    tmp = [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.")]
    assert len(tmp) == 1 and tmp[0].stat().st_size == 1_000_000
    return tmp[0], proc.pid


def test_threads_saving_one_name_at_once_never_collide():
    learn = make_learner()
    learn.fit(1, 1e-2)
    errors: list[BaseException] = []

    def save() -> None:
        try:
            for _ in range(5):
                learn.save("same")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=save) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _temporaries() == [] and sorted(os.listdir("models")) == ["latest_checkpoint.txt", "same.pth"]
    assert same_state(safe_load("models/same.pth")["model"], state_copy(learn.model))


def test_threads_writing_different_contents_leave_one_whole_file():
    objs = [with_checksum({"model": {"w": torch.full((50_000,), float(i))}}) for i in range(6)]
    threads = [threading.Thread(target=atomic_save, args=(o, "models/x.pth")) for o in objs for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w = safe_load("models/x.pth")["model"]["w"]  # checksum verified: one writer's file, whole
    assert w.unique().numel() == 1 and 0 <= w[0].item() < 6
    assert _temporaries() == []


@pytest.mark.slow
def test_a_killed_save_leaves_a_temporary_that_the_next_save_removes():
    learn = make_learner()
    learn.save("model_0")
    tmp, pid = _killed_save(Path("models/model_0.pth"))
    assert same_state(safe_load("models/model_0.pth")["model"], state_copy(learn.model))  # the old file is whole
    assert stale_temporaries("models") == [tmp]
    learn.fit(1, 1e-2, cbs=SaveModelCallback(every_epoch=True))
    assert _temporaries() == []


@pytest.mark.slow
def test_resume_removes_them_too():
    learn = make_learner()
    learn.fit(1, 1e-2, cbs=SaveModelCallback(every_epoch=True))
    _killed_save(Path("models/model_1.pth"))
    assert len(_temporaries()) == 1
    make_learner().fit(2, 1e-2, resume=True)
    assert _temporaries() == []


def test_temporaries_that_may_be_in_use_and_unrelated_files_stay(monkeypatch):
    learn = make_learner()
    learn.save("keep")
    folder = Path("models")
    now = time.time()
    live = [f".a.pth.{ck._HOST}.{os.getpid()}.0000abcd.tmp",          # this process (another thread's save)
            f".b.pth.{ck._HOST}.{os.getppid()}.0000abcd.tmp",         # a live process on this machine
            ".c.pth.othermachine.1.0000abcd.tmp",                     # another machine, recent
            f".d.pth.tmp{os.getpid()}"]                                # old naming, recent
    unrelated = [".hidden", ".e.pth.bak", "notes.tmp", ".f.pth.host.12.nothex.tmp", "f.pth.host.1.0000abcd.tmp",
                 ".other_program.tmp12", ".notes.txt.tmp12"]
    stale = [".g.pth.othermachine.1.0000abcd.tmp", ".h.pth.tmp99999999", ".latest_checkpoint.txt.tmp99999999"]
    for name in live + unrelated + stale:
        (folder / name).write_bytes(b"partial")
    for name in stale + unrelated:  # old, all of them: only minifastai's own names go
        os.utime(folder / name, (now - 2 * ck.STALE_AFTER, now - 2 * ck.STALE_AFTER))
    learn.save("keep")
    left = set(os.listdir(folder))
    assert set(live) <= left and set(unrelated) <= left
    assert not set(stale) & left
    assert same_state(safe_load("models/keep.pth")["model"], state_copy(learn.model))


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="pid checks are POSIX only")
def test_a_dead_writer_on_this_machine_is_recognised_at_once():
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(done.stdout)
    Path("models").mkdir()
    fresh = Path(f"models/.m.pth.{ck._HOST}.{dead}.0000abcd.tmp")
    fresh.write_bytes(b"partial")
    assert stale_temporaries("models") == [fresh]
