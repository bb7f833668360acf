from minifastai import Callback, CancelFitException


class ShowEvents(Callback):
    """Print each event; stop the fit after 2 training batches."""

    def before_fit(self): print("before_fit")
    def before_epoch(self): print(" before_epoch", self.learn.epoch)
    def before_train(self): print("  before_train")
    def before_batch(self): print("   before_batch", "train" if self.learn.training else "valid", self.learn.iter)
    def after_loss(self): print("    after_loss", f"{self.learn.loss.item():.3f}")
    def after_step(self): print("    after_step")
    def before_validate(self): print("  before_validate")
    def after_batch(self):
        if self.learn.training and self.learn.train_iter == 2:
            raise CancelFitException()  # after_cancel_fit, then after_fit, run next
    def after_cancel_fit(self): print("after_cancel_fit")
    def after_fit(self): print("after_fit")


learn = make_learner(default_cbs=False)  # no Recorder or progress output, to keep this short
learn.fit(1, 1e-3, cbs=ShowEvents())
