from minifastai.groups import group_hypers

learn = make_learner()
learn.fit_one_cycle(2, slice(1e-4, 1e-2))

# 1. the optimizer, now (the end of the cycle): one value per layer group
print("learn.opt now:", [f"{x:.2e}" for x in group_hypers(learn.opt, "lr", learn.n_groups)])
# 2. the recorder: every training batch, every layer group
lrs = learn.recorder.lrs
print("recorder.lrs shape:", lrs.shape)
for g, name in enumerate(learn.group_names):
    print(f"  {name:<6} first {lrs[0, g]:.2e}  peak {lrs[:, g].max():.2e}  last {lrs[-1, g]:.2e}")
# 3. the summary table
print(learn.summary())
