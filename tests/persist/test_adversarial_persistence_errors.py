"""Issue 10, class 14 (persistence): malformed exports and checkpoints, damaged pickled parts, a full disk and a
file-size limit all give clear errors that name the file, and the previous file is kept.
"""
from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import ROOT, TESTS, make_learner, same_state, state_copy, three_group_model

from minifastai import SaveModelCallback, load_learner
from minifastai.persist import DamagedFileError, get_rng_state, safe_load, set_rng_state, with_checksum


def _tabular_export() -> Path:
    from minifastai.tabular import TabularDataLoaders, tabular_learner

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"c": rng.choice(["x", "y"], 40), "v": rng.normal(size=40), "t": rng.choice(["A", "B"], 40)})
    dls = TabularDataLoaders.from_df(df, cat_names=["c"], cont_names=["v"], y_names="t", valid_pct=0.25, seed=0, bs=8,
                                     device="cpu")
    return tabular_learner(dls, layers=(8,)).export("tab.pkl")


def _edited(path: Path, edit, name: str) -> Path:
    st = torch.load(path, weights_only=True)
    st.pop("checksum", None)
    res = edit(st)
    st = res if isinstance(res, torch.Tensor) else st  # an edit may replace the whole file
    out = path.with_name(name)
    torch.save(with_checksum(st) if isinstance(st, dict) else st, out)
    return out


def _drop(key):
    return lambda st: st.pop(key)


MALFORMED_EXPORTS = [
    (_drop("model"), r"is not a minifastai checkpoint or export: no 'model' entry"),
    (lambda st: st.update(model=[1, 2]), r"is not a minifastai checkpoint or export: its 'model' entry is a list"),
    (lambda st: torch.zeros(3), r"is not a minifastai checkpoint or export: it holds a Tensor, not a dict"),
    (_drop("dls"), r"is malformed: entry 'dls' is missing \(was this file written by learn\.save\? use learn\.load\)"),
    (lambda st: st.update(dls="tabular"), r"is malformed: entry 'dls' is a str, expected dict"),
    (lambda st: st.update(activation="exp"), r"is malformed: entry 'activation' is 'exp', not one of"),
    (lambda st: st.update(group_names=[1, 2]), r"is malformed: entry 'group_names' is not a list of strings"),
    (lambda st: st["dls"].update(vocab=5), r"is malformed: entry 'dls'\['vocab'\] is a int, not a list of classes"),
    (lambda st: st["dls"].update(n_inp=0), r"is malformed: entry 'dls'\['n_inp'\] is 0"),
    (lambda st: st.update(builder="minifastai.tabular"), r"is malformed: entry 'builder' is a str, expected dict"),
    (lambda st: st["builder"].pop("model"), r": builder\['model'\] is not a dict of TabularModel arguments"),
    (lambda st: st["builder"]["model"].update(n_layers=3), r": builder\['model'\] has entries \[.*'n_layers'.*\]; "
                                                           r"expected \["),
    (lambda st: st["dls"].pop("tabular"), r"is malformed: the entries for minifastai\.tabular cannot be read "
                                          r"\(KeyError: 'tabular'\)"),
    (lambda st: st.update(manifest={"torch": 2}), r"is malformed: entry 'manifest' is not a dict of library name"),
]


@pytest.mark.parametrize("edit, message", MALFORMED_EXPORTS, ids=[m[1][:40] for m in MALFORMED_EXPORTS])
def test_malformed_exports_name_the_file_and_the_entry(edit, message):
    bad = _edited(_tabular_export(), edit, "bad.pkl")
    with pytest.raises((DamagedFileError, ValueError), match=re.escape(str(bad)) + ".*" + message):
        load_learner(bad)


def test_a_checkpoint_given_to_load_learner_says_what_it_is():
    path = make_learner().save("ck")
    with pytest.raises(DamagedFileError, match=r"models/ck\.pth is malformed: entry 'dls' is missing \(was this file "
                                               r"written by learn\.save\? use learn\.load\)"):
        load_learner(path, model=three_group_model())


@pytest.mark.parametrize("position, message", [
    ("epoch 3", r"holds no training position"),
    ({"next_epoch": "2"}, r"is malformed: entry 'position' has next_epoch='2', not an epoch number"),
    ({"next_epoch": 1, "n_iter": -4}, r"is malformed: entry 'position' has n_iter=-4, not a batch count"),
])
def test_malformed_training_positions_stop_a_resume_naming_the_file(position, message):
    learn = make_learner()
    learn.fit(1, 1e-2, cbs=SaveModelCallback(every_epoch=True))
    _edited(Path("models/model_0.pth"), lambda st: st.update(position=position), "model_0.pth")
    before = state_copy(learn.model)
    with pytest.raises(RuntimeError, match=r"cannot resume from the latest checkpoint models/model_0\.pth: "
                                           r"(models/model_0\.pth )?.*" + message):
        learn.fit(3, 1e-2, resume=True)
    assert same_state(before, state_copy(learn.model))


def test_a_damaged_rng_part_is_named_not_an_mt19937_error():
    learn = make_learner()
    learn.fit(1, 1e-2)
    path = learn.save("ck")
    _edited(path, lambda st: st["rng"].update(torch=torch.randint(0, 255, (5056,), dtype=torch.uint8)), "ck.pth")
    with pytest.raises(DamagedFileError, match=r"models/ck\.pth: entry 'rng' is damaged \(invalid RNG state "
                                               r"\(RuntimeError: Invalid mt19937 state\)\)"):
        learn.load("ck")
    state, draws = get_rng_state(), torch.get_rng_state()
    bad = {**state, "random": (3, (1, 2), None)}
    with pytest.raises(ValueError, match="invalid RNG state"):
        set_rng_state(bad)
    assert torch.equal(torch.get_rng_state(), draws)  # nothing was applied


FSIZE_SCRIPT = """
import resource, sys, torch
sys.path.insert(0, sys.argv[1])
from helpers import make_learner
learn = make_learner()
size = learn.save("ck").stat().st_size
torch.save({k: v.clone() for k, v in learn.model.state_dict().items()}, "before.pt")
with torch.no_grad():
    for p in learn.model.parameters():
        p.add_(1.0)
resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))  # smaller than the checkpoint and the export
for what, call in (("save", lambda: learn.save("ck")), ("export", lambda: learn.export("models/ck.pth"))):
    try:
        call()
        print(what, "wrote a file over the limit")
    except OSError as e:
        print(what, "OSError", e.errno, e)
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_file_size_limit_is_an_error_naming_the_file_and_the_old_file_stays():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", FSIZE_SCRIPT, str(TESTS)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2
    for what, line in zip(("save", "export"), lines):
        assert line.startswith(f"{what} OSError {errno.EFBIG} "), line
        assert "could not write models/ck.pth: File too large (disk full or file-size limit?); the previous file, " \
               "if any, is unchanged" in line
    assert same_state(safe_load("models/ck.pth")["model"], torch.load("before.pt", weights_only=True))
    assert sorted(os.listdir("models")) == ["ck.pth", "latest_checkpoint.txt"]


def test_a_full_disk_is_an_error_naming_the_file_and_the_old_file_stays(monkeypatch):
    learn = make_learner()
    learn.save("ck")
    old = state_copy(learn.model)
    learn.fit(1, 1e-2)

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"PK" + b"\0" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as m:
        m.setattr(torch, "save", full_disk)  # the writer only: everything else is the real code
        with pytest.raises(OSError, match=r"could not write models/ck\.pth: No space left on device") as info:
            learn.save("ck")
        assert info.value.errno == errno.ENOSPC
        with pytest.raises(OSError, match=r"could not write export\.pkl: No space left on device"):
            learn.export("export.pkl")
    assert same_state(safe_load("models/ck.pth")["model"], old)
    assert sorted(os.listdir("models")) == ["ck.pth", "latest_checkpoint.txt"] and not Path("export.pkl").exists()
    assert not [p for p in os.listdir(".") if p.startswith(".export.pkl")]
