"""Issue 10, class 3: an export cannot choose what `load_learner` imports or runs.

`load_learner` calls only the builders of `minifastai.persist.registry` (exact names); each probe names
something else in `builder['module']` (a planted module on `sys.path` that records being imported, the package
itself, other minifastai modules, prefix tricks, stdlib modules, non-strings) and checks the error names the file
and the entry, and that nothing was imported.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from helpers import make_learner

from minifastai import load_learner
from minifastai.persist import known_rebuilders, with_checksum
from minifastai.persist.registry import declare, find_rebuilder, register_rebuilder


@pytest.fixture
def planted(tmp_path, monkeypatch) -> Path:
    """A module on sys.path that leaves a file behind when imported."""
    flag = tmp_path / "imported.flag"
    (tmp_path / "mfa_planted_probe.py").write_text(
        f"open({str(flag)!r}, 'w').write('ran')\ndef rebuild_learner(state, device='cpu'):\n    raise SystemExit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return flag


def _export_naming(module) -> Path:
    learn = make_learner()
    path = learn.export("crafted.pkl")
    st = torch.load(path, weights_only=True)
    st.pop("checksum")
    st["builder"] = {"module": module, "arch": "resnet18", "n_out": 2}
    torch.save(with_checksum(st), path)
    return path


@pytest.mark.parametrize("module", ["mfa_planted_probe", "minifastai", "minifastai.persist", "minifastai.learner",
                                    "minifastai.visionx", "minifastai.vision.evil", "minifastai.tabular ",
                                    "os", "builtins", "", None, 3, ["minifastai.vision"]])
def test_only_allow_listed_builders_run(module, planted):
    path = _export_naming(module)
    before = set(sys.modules)
    with pytest.raises(ValueError, match=rf"{path}: entry builder\['module'\] = .* is not one of minifastai's "
                                         r"exporters \(minifastai\.vision, minifastai\.tabular\); load_learner runs "
                                         r"no other code"):
        load_learner(path)
    assert not planted.exists()
    assert "mfa_planted_probe" not in sys.modules
    assert {m for m in set(sys.modules) - before if m.startswith("minifastai")} == set()


def test_the_allow_list_is_exactly_the_built_in_learners():
    assert known_rebuilders() == ["minifastai.vision", "minifastai.tabular"]
    import minifastai.tabular
    import minifastai.vision

    assert find_rebuilder("minifastai.tabular", Path("x")).rebuild is minifastai.tabular.rebuild_learner
    assert find_rebuilder("minifastai.vision", Path("x")).rebuild is minifastai.vision.rebuild_learner


def test_a_declared_application_that_cannot_be_imported_names_its_extra(monkeypatch):
    from minifastai.persist import registry

    monkeypatch.setattr(registry, "_DECLARED", {**registry._DECLARED, "mfa.app": ("mfa_not_installed", "mfa")})
    with pytest.raises(ImportError, match=r"x.pkl was exported by mfa.app, which cannot be imported here .*"
                                          r"pip install 'minifastai\[mfa\]'"):
        find_rebuilder("mfa.app", Path("x.pkl"))
    assert "mfa.app" not in registry._REBUILDERS


def test_registering_needs_a_name_and_callables(monkeypatch):
    from minifastai.persist import registry

    monkeypatch.setattr(registry, "_REBUILDERS", dict(registry._REBUILDERS))
    monkeypatch.setattr(registry, "_DECLARED", dict(registry._DECLARED))
    with pytest.raises(TypeError, match="non-empty string"):
        register_rebuilder("", lambda *a, **k: None)
    with pytest.raises(TypeError, match="needs a callable rebuild"):
        register_rebuilder("mfa.app", "not callable")  # type: ignore[arg-type]
    register_rebuilder("mfa.app", lambda *a, **k: "built")
    declare("mfa.other", "mfa_not_installed")
    assert find_rebuilder("mfa.app", Path("x")).rebuild() == "built"


def test_a_custom_model_passed_in_ignores_the_builder_entry(planted):
    from helpers import three_group_model

    path = _export_naming("mfa_planted_probe")
    learn = load_learner(path, model=three_group_model())  # the caller chose the code: the entry is not used
    assert not planted.exists() and learn.model[0].weight.shape == (16, 8)
