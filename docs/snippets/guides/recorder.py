learn = make_learner()
learn.fit_one_cycle(3, slice(1e-4, 1e-2))
rec = learn.recorder
print(rec.metric_names)
print(rec.values[-1])                   # one row per epoch: [train_loss, valid_loss, *metrics] (metric_names[1:-1])
print(rec.raw_losses[:3], rec.losses[:3])  # raw loss per batch, and the smoothed one (fastai's `losses`)
print({k: v.shape for k, v in rec.hps.items()}, rec.epoch_ends)
print("final train_loss == losses[-1]:", rec.values[-1][0] == float(rec.losses[-1]))
fig = rec.plot_loss()
