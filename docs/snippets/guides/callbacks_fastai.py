from minifastai import Callback, ProgressCallback


class LossSpikes(Callback):
    """Written as a fastai callback: the loop's state reads through `self`."""

    run_valid = False  # batch events of the validation phase are skipped

    def before_fit(self):
        self.spikes = []

    def after_loss(self):
        if self.iter > 0 and self.epoch == 0:
            self.spikes.append(self.loss.detach())  # no .item(): stays on the device

    def after_fit(self):
        print(f"{len(self.spikes)} training batches seen after the first; model {type(self.model).__name__}, "
              f"{self.n_epoch} epochs, last pct_train {self.pct_train:.2f}")


class Tamper(Callback):
    def before_fit(self):
        self.model = None  # a fastai habit that would silently shadow the learner's model


learn = make_learner()
learn.remove_cb(ProgressCallback)  # by class, as in fastai
learn.fit(2, 1e-3, cbs=LossSpikes())
try:
    learn.fit(1, cbs=Tamper())
except AttributeError as e:
    print(e)
with learn.no_logging():
    print(learn.validate())
