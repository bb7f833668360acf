from minifastai import Callback


class WarmupThenConstant(Callback):
    """Linear warm-up of every layer group's LR over the first 10 batches, then its own peak."""

    order, run_dry = 10, True  # a schedule: runs inside dry_run too

    def before_fit(self):
        self.peaks = [pg["lr"] for pg in self.learn.opt.param_groups]

    def before_batch(self):
        if self.learn.training:
            scale = min(1.0, (self.learn.train_iter + 1) / 10)
            for pg, peak in zip(self.learn.opt.param_groups, self.peaks):
                pg["lr"] = peak * scale


learn = make_learner()
with learn.dry_run() as runs:
    learn.fit(1, slice(1e-4, 1e-2), cbs=WarmupThenConstant())
print(runs[0].lrs[[0, 4, 9, 20]])
