"""Issue 10, class 1: writes never follow a planted symlink.

Every probe plants a symlink where a save writes (the old predictable temporary names, the exact next
temporary name, the target itself, the latest-checkpoint pointer) pointing at a victim file, saves, and checks
that the victim is unchanged and that the checkpoint is a regular file holding the right weights.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from helpers import make_learner, same_state, state_copy, three_group_model

import minifastai.persist.atomic as ck
from minifastai import SaveModelCallback, load_learner
from minifastai.persist import atomic_save, checkpoint_files, safe_load, with_checksum

VICTIM = b"precious data, not a checkpoint\n"


@pytest.fixture
def victim(tmp_path) -> Path:
    p = tmp_path / "outside" / "victim.txt"
    p.parent.mkdir()
    p.write_bytes(VICTIM)
    return p


def _plant(link: Path, target: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return link


def _same_weights_on_disk(path: Path, learn) -> bool:
    return same_state(safe_load(path)["model"], state_copy(learn.model))


def test_links_at_the_old_predictable_temporary_names_are_left_alone(victim):
    learn = make_learner()
    pid = os.getpid()
    links = [_plant(Path(f"models/.ck.pth.tmp{pid}"), victim),
             _plant(Path(f"models/.latest_checkpoint.txt.tmp{pid}"), victim)]
    path = learn.save("ck")
    assert victim.read_bytes() == VICTIM
    assert not path.is_symlink() and _same_weights_on_disk(path, learn)
    assert all(p.is_symlink() and p.resolve() == victim.resolve() for p in links)  # not ours: untouched


def test_a_link_at_the_exact_next_temporary_name_is_not_opened(victim, monkeypatch):
    tokens = iter(["deadbeef", "0badf00d"] + [f"{i:08x}" for i in range(10)])
    monkeypatch.setattr(ck.secrets, "token_hex", lambda n: next(tokens))
    link = _plant(Path(f"models/.ck.pth.{ck._HOST}.{os.getpid()}.deadbeef.tmp"), victim)
    dangling = _plant(Path(f"models/.ck.pth.{ck._HOST}.{os.getpid()}.0badf00d.tmp"), victim.with_name("new.txt"))
    learn = make_learner()
    path = learn.save("ck")  # the first two names exist: O_EXCL refuses them, a third one is used
    assert victim.read_bytes() == VICTIM and not victim.with_name("new.txt").exists()
    assert link.is_symlink() and dangling.is_symlink()
    assert not path.is_symlink() and _same_weights_on_disk(path, learn)


def test_a_link_at_the_target_is_replaced_not_followed(victim):
    learn = make_learner()
    target = _plant(Path("models/ck.pth"), victim)
    pointer = _plant(Path("models/latest_checkpoint.txt"), victim)
    learn.save("ck")
    assert victim.read_bytes() == VICTIM
    assert not target.is_symlink() and _same_weights_on_disk(target, learn)
    assert not pointer.is_symlink() and pointer.read_text() == "ck.pth\n"


def test_every_epoch_checkpoints_and_exports_with_planted_links(victim):
    learn = make_learner()
    pid = os.getpid()
    for e in range(2):
        _plant(Path(f"models/.model_{e}.pth.tmp{pid}"), victim)
        _plant(Path(f"models/model_{e}.pth"), victim)
    _plant(Path("export.pkl"), victim)
    learn.fit(2, 1e-2, cbs=SaveModelCallback(every_epoch=True))
    exported = learn.export("export.pkl")
    assert victim.read_bytes() == VICTIM
    assert not Path("models/model_1.pth").is_symlink() and _same_weights_on_disk(Path("models/model_1.pth"), learn)
    assert not exported.is_symlink()
    loaded = load_learner(exported, model=three_group_model())
    assert same_state(state_copy(loaded.model), state_copy(learn.model))


def test_a_pointer_linked_to_an_endless_device_is_not_read_through(victim):
    learn = make_learner()
    learn.save("a")
    atomic_save(with_checksum(torch.load("models/a.pth", weights_only=True)), "models/b.pth")
    os.utime("models/a.pth", (1e9, 1e9))  # b is the newest by time
    Path("models/latest_checkpoint.txt").unlink()
    _plant(Path("models/latest_checkpoint.txt"), Path("/dev/zero"))
    assert [p.name for p in checkpoint_files(learn)] == ["a.pth", "b.pth"]  # returns at once, by time
