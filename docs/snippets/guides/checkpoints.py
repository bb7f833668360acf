from minifastai import Callback, CancelFitException, SaveModelCallback


class Crash(Callback):  # stands in for a crash (or `kill -9`) in the middle of epoch 2
    def after_batch(self):
        if self.learn.training and self.learn.epoch == 2 and self.learn.iter == 10:
            raise CancelFitException()


torch.manual_seed(0)
learn = make_learner()
learn.fit_one_cycle(4, 1e-2, cbs=[SaveModelCallback(every_epoch=True), Crash()])
print(sorted(p.name for p in (learn.path / learn.model_dir).iterdir()))

resumed = make_learner()  # a new learner, as in a new process
resumed.fit_one_cycle(4, 1e-2, cbs=SaveModelCallback(every_epoch=True), resume=True)

torch.manual_seed(0)
reference = make_learner()  # the same run, never interrupted
reference.fit_one_cycle(4, 1e-2)
diff = max((a - b).abs().max().item() for a, b in zip(resumed.model.state_dict().values(),
                                                      reference.model.state_dict().values()))
n = len(resumed.recorder.lrs)
print(f"largest weight difference to the uninterrupted run: {diff:.1e}")
print(f"the last {n} LRs are the uninterrupted run's last {n}:",
      np.array_equal(resumed.recorder.lrs, reference.recorder.lrs[-n:]))
