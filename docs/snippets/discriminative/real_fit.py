import math

learn.unfreeze()
learn.fit_one_cycle(2, layer_decay(1e-3, 0.6))  # two real epochs (10 batches): every group's LR is recorded
peaks = learn.recorder.lrs.max(0)
for name, lr in zip(learn.group_names, peaks):
    print(f"{name:<16} peak {lr:.3e}  / head's {lr / peaks[-1]:.4f}  (0.6 ** {round(math.log(lr / peaks[-1], 0.6))})")
fig = learn.recorder.plot_sched(log=True)
