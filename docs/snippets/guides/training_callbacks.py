from minifastai import CSVLogger, EarlyStoppingCallback, GradientAccumulation, GradientClip

learn = make_learner()
acc = GradientAccumulation(256)  # one optimizer step per 256 samples (4 batches of 64)
cbs = [acc,
       GradientClip(max_norm=1.0),  # clips the accumulated gradient, once per step
       EarlyStoppingCallback(monitor="valid_loss", patience=1),
       CSVLogger("history.csv")]  # written to learn.path / "history.csv"
learn.fit_one_cycle(10, 3e-2, cbs=cbs)

rec = learn.recorder
print(f"{len(rec.values)} of 10 epochs, {len(rec.lrs)} training batches, {acc.n_steps} optimizer steps")
print(f"last LR of the head: {rec.lrs[-1, -1]:.2e} (a full cycle ends at {3e-2 / 1e5:.1e})")
print((learn.path / "history.csv").read_text())
rec.plot_sched()
