with learn.dry_run() as runs:  # the plan of both phases, without a batch or a weight changed
    learn.fine_tune(2, base_lr=layer_decay(2e-3, 0.6))
frozen, unfrozen = runs
print("frozen phase, peak LR per group:  ", [f"{x:.2g}" for x in frozen.lrs.max(0)])
print("unfrozen phase, peak LR per group:", [f"{x:.2g}" for x in unfrozen.lrs.max(0)])
print("ratio of neighbours:", {f"{a:.3f}" for a in unfrozen.lrs.max(0)[:-1] / unfrozen.lrs.max(0)[1:]})
fig = unfrozen.plot_sched(log=True)
