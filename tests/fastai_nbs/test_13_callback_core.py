"""fastai's nbs/13_callback.core.ipynb test cells, as fastai wrote them."""
from __future__ import annotations

import pytest
from fastai_nbs.nbcells import Cell, cases, run_cell

IMPORTS = "from fastai.callback.core import *\n"

CELLS = [
    Cell("event_names", """
test_eq(event.before_step, 'before_step')
"""),
    Cell("subclass_call", """
class _T(Callback):
    def call_me(self): return "maybe"
test_eq(_T()("call_me"), "maybe")
"""),
    Cell("function_in_constructor", """
def cb(self): return "maybe"
_t = Callback(before_fit=cb)
test_eq(_t(event.before_fit), "maybe")
"""),
    Cell("reads_forwarded_to_learner", """
mk_class('TstLearner', 'a')

class TstCallback(Callback):
    def batch_begin(self): print(self.a)

learn,cb = TstLearner(1),TstCallback()
cb.learn = learn
test_stdout(lambda: cb('batch_begin'), "1")
"""),
    Cell("writes_stay_on_the_callback", """
mk_class('TstLearner', 'a')
class TstCallback(Callback):
    def batch_begin(self): self.a += 1

learn,cb = TstLearner(1),TstCallback()
cb.learn = learn
cb('batch_begin')
test_eq(cb.a, 2)
test_eq(cb.learn.a, 1)
"""),
    Cell("write_through_self_learn", """
mk_class('TstLearner', 'a')
class TstCallback(Callback):
    def batch_begin(self): self.learn.a = self.a + 1

learn,cb = TstLearner(1),TstCallback()
cb.learn = learn
cb('batch_begin')
test_eq(cb.learn.a, 2)
"""),
    Cell("error_names_callback_and_event", """
mk_class('TstLearner', 'a')
class TstCallback(Callback):
    def batch_begin(self): self.learn.a = 1 + "a"
learn,cb = TstLearner(1),TstCallback()
cb.learn = learn
with ExceptionExpected(TypeError, regex=" in `TstCallback` when calling event `batch_begin`"):
    cb('batch_begin')
"""),
    Cell("names", """
class TstCallback(Callback): pass
test_eq(TstCallback().name, 'tst')
class ComplicatedNameCallback(Callback): pass
test_eq(ComplicatedNameCallback().name, 'complicated_name')
"""),
]


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell):
    run_cell(lib, IMPORTS, cell)
