learn = make_learner()
with learn.dry_run() as runs:  # nothing trains, no batch is loaded, nothing changes
    learn.fine_tune(2, base_lr=1e-2)
print(runs)
runs[0].plot_sched(log=True)  # the first fit: only the head trains (frozen groups are marked)
runs[1].plot_sched(log=True)  # the second fit: unfrozen, discriminative LRs

learn.fine_tune(2, base_lr=1e-2)  # the real run records exactly what was planned
print("real run == plan:", np.allclose(learn.recorder.lrs, runs[1].lrs), np.allclose(learn.recorder.moms, runs[1].moms))
