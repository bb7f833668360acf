learn = make_learner()
print(learn.n_groups, learn.group_names)
print([sum(p.numel() for p in g) for g in learn.layer_groups])  # parameters per layer group
print(learn.summary())
