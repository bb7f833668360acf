learn = make_learner()
learn.fit_one_cycle(1, 1e-2)
before = {k: v.clone() for k, v in learn.model.state_dict().items()}
values, n_batches = learn.recorder.values, len(learn.recorder.losses)

res = learn.lr_find(show_plot=False)
print("weights unchanged: ", all(torch.equal(v, learn.model.state_dict()[k]) for k, v in before.items()))
print("recorder unchanged:", learn.recorder.values == values, len(learn.recorder.losses) == n_batches)
sweep = learn.recorder.lr_sweep  # the sweep itself
print(sweep.stop_reason)
print("points:", len(sweep.losses), "| suggestions read points", sweep.trim, "| LRs shape", sweep.lrs.shape)
