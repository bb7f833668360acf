from minifastai import Callback, Recorder


class BestSoFar(Callback):
    """Reads each epoch's results from learn.results, once the Recorder has written them."""

    run_after = Recorder  # by class, as in fastai

    def before_fit(self):
        self.best = None

    def after_epoch(self):
        res = self.learn.results
        if res.validated and (self.best is None or res.value("valid_loss") < self.best):
            self.best = res.value("valid_loss")
        cols = {k: round(v, 3) for k, v in res.columns().items()}
        print(f"epoch {self.epoch}: {cols}, validated={res.validated}, best valid_loss {self.best:.3f}")


class Early(Callback):
    order = -100  # a low order alone would run it first ...
    run_after = "Recorder"  # ... the claim moves it just after the Recorder (a class name works too)


learn = make_learner()
learn.add_cbs([BestSoFar(), Early()])
print([f"{type(c).__name__}({c.order})" for c in learn.cbs])
with learn.no_logging():
    learn.fit(2, 1e-3)
print(learn.results.metric_names, len(learn.results.values), "rows")


class A(Callback):
    run_after = "B"


class B(Callback):
    run_after = A


try:
    learn.add_cbs([A(), B()])
except ValueError as e:
    print(e)
print(len(learn.cbs), "callbacks: nothing was added")
