learn = make_learner()
learn.fit_one_cycle(3, slice(1e-5, 1e-3))
fig = learn.recorder.plot_sched(log=True)  # one labelled line per layer group, for lr and mom

lrs = learn.recorder.lrs
ratio = lrs / lrs[:, -1:]  # each group's LR divided by the head's, at every batch
for g, name in enumerate(learn.group_names):
    print(f"{name:<6} LR / head LR: min {ratio[:, g].min():.4f}  max {ratio[:, g].max():.4f}")
