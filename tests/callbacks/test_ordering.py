"""Callbacks say whom they run after or before by class (fastai's `run_after` / `run_before`): every claim of
every callback in the package names a real callback class and holds in `learn.cbs`, whatever order the callbacks
were added in; claims that contradict each other are an error before anything changes."""
from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import random
from pathlib import Path

import pytest
import torch
from helpers import make_learner, same_state, state_copy

import minifastai
from minifastai import Callback, Recorder
from minifastai.callback.core import runs_before, sort_cbs

PACKAGE = Path(minifastai.__file__).parent


def package_callbacks() -> dict[str, type[Callback]]:
    """Every Callback subclass defined in the package's modules, by class name."""
    found: dict[str, type[Callback]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        mod = importlib.import_module(name)
        for obj in vars(mod).values():
            if inspect.isclass(obj) and issubclass(obj, Callback) and obj.__module__ == name:
                found[obj.__name__] = obj
    return found


def claims(cls: type[Callback]) -> list[type | str]:
    out = []
    for attr in ("run_after", "run_before"):
        c = getattr(cls, attr)
        out += list(c) if isinstance(c, (tuple, list)) else [c]
    return out


def instances() -> list[Callback]:
    """One instance of every package callback that declares a claim or is named by one."""
    from minifastai.callback.distributed import DistributedTrainer
    from minifastai.callback.lr_find import LRFinder
    from minifastai.callback.mixed_precision import MixedPrecision
    from minifastai.callback.plan import Plan, PlanRecorder
    from minifastai.callback.schedule import ParamScheduler
    from minifastai.persist.checkpoint import RestoreCallbackStates

    special = {DistributedTrainer: lambda: DistributedTrainer(torch.device("cpu"), None, None, {}),
               LRFinder: lambda: LRFinder([1e-5] * 3, [1.0] * 3),
               MixedPrecision: lambda: MixedPrecision(torch.bfloat16),
               RestoreCallbackStates: lambda: RestoreCallbackStates({}, Path(".")),
               ParamScheduler: lambda: ParamScheduler({"mom": lambda pos: 0.9}),
               PlanRecorder: lambda: PlanRecorder(Plan())}
    cbs = package_callbacks()
    named = {c if isinstance(c, str) else c.__name__ for cls in cbs.values() for c in claims(cls)}
    out = []
    for name, cls in sorted(cbs.items()):
        if not claims(cls) and name not in named:
            continue
        if cls in special:
            out.append(special[cls]())
        else:
            out.append(cls())  # every other claimant (and claimed) builds with its defaults
    return out


def test_every_claim_names_a_callback_class_of_the_package():
    cbs = package_callbacks()
    for name, cls in cbs.items():
        for c in claims(cls):
            target = c if isinstance(c, str) else c.__name__
            assert target in cbs, f"{name} claims to run after/before {target!r}, which is no callback class"
    assert sum(bool(claims(c)) for c in cbs.values()) >= 12  # the claims replace comments quoting orders


def test_every_claim_holds_in_learn_cbs_whatever_the_order_of_adding():
    pool = instances()
    assert len(pool) >= 14
    pairs = [(a, b) for a, b in itertools.permutations(pool, 2) if runs_before(a, b)]
    assert len(pairs) >= 20
    for seed in range(5):
        cbs = instances()
        random.Random(seed).shuffle(cbs)
        learn = make_learner(default_cbs=False)
        learn.add_cbs(cbs)
        pos = {type(c): i for i, c in enumerate(learn.cbs)}
        for a, b in pairs:
            assert pos[type(a)] < pos[type(b)], f"{type(a).__name__} must run before {type(b).__name__}"


def test_the_claims_agree_with_fastais_order_numbers():
    """No claim moves a package callback away from where its `order` puts it: the numbers keep fastai's meaning."""
    pool = instances()
    assert [type(c) for c in sort_cbs(pool)] == [type(c) for c in sorted(pool, key=lambda c: c.order)]


def test_a_claim_moves_a_callback_past_a_lower_order():
    class Early(Callback):
        order = -100
        run_after = Recorder

    class ByName(Callback):
        order = 1000
        run_before = "ProgressCallback"

    learn = make_learner()
    learn.add_cbs([Early(), ByName()])
    names = [type(c).__name__ for c in learn.cbs]
    assert names.index("Recorder") < names.index("Early")
    assert names.index("ByName") < names.index("ProgressCallback")
    assert names.index("Early") < names.index("ProgressCallback")  # moved no further than needed


def test_contradicting_claims_are_an_error_before_anything_changes(tmp_path):
    class A(Callback):
        run_after = "B"

    class B(Callback):
        run_after = A

    learn = make_learner(path=tmp_path)
    before_cbs, before_w = list(learn.cbs), state_copy(learn.model)
    with pytest.raises(ValueError, match="A before B; B before A"):
        learn.add_cbs([A(), B()])
    assert learn.cbs == before_cbs and not hasattr(learn, "a") and not hasattr(learn, "b")
    learn.add_cb(A())
    with pytest.raises(ValueError, match="contradict each other"):
        learn.fit_one_cycle(1, cbs=B())
    assert sorted(map(str, map(type, learn.cbs))) == sorted(map(str, [*map(type, before_cbs), A]))
    assert same_state(state_copy(learn.model), before_w) and learn.opt is None


def _other_callback_classes(tree: ast.AST, own: set[str], all_cbs: set[str]) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2:
            kinds = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
            for k in kinds:
                name = k.attr if isinstance(k, ast.Attribute) else getattr(k, "id", None)
                if name in all_cbs and name not in own:
                    found.append(name)
    return found


def test_no_module_decides_by_other_callbacks_classes_or_private_attributes():
    """Modules look at capability flags and `learn.results`, not at `isinstance(cb, OtherModulesCallback)`; no
    module reads another callback's private attribute through the learner (`learn.recorder._x`)."""
    cbs = package_callbacks()
    all_names = set(cbs) - {"Callback"}
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        own = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        bad += [f"{path.relative_to(PACKAGE)}: isinstance(..., {n})"
                for n in _other_callback_classes(tree, own, all_names)]
        snakes = {_snake(n) for n in all_names}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")):
                continue
            owner = node.value
            if isinstance(owner, ast.Attribute) and ast.unparse(owner.value).endswith("learn") and owner.attr in snakes:
                bad.append(f"{path.relative_to(PACKAGE)}: {ast.unparse(node)}")
    assert bad == []


def _snake(name: str) -> str:
    from minifastai.callback.core import camel2snake

    return camel2snake(name.removesuffix("Callback"))
