plain = Learner(dls, make_model(), nn.CrossEntropyLoss())  # no splitter: one layer group
print("groups:", plain.n_groups, "| slice(1e-5, 1e-3) gives", plain.lr_range(slice(1e-5, 1e-3)))
plain.fit_one_cycle(1, slice(1e-5, 1e-3))
print("recorded peak per group:", plain.recorder.lrs.max(0))

grouped = make_learner()  # three groups, but a float LR (the default, learn.lr = 1e-3)
grouped.fit_one_cycle(1)
print("recorded peak per group:", grouped.recorder.lrs.max(0))
