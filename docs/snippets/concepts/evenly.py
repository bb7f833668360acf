from minifastai.groups import group_hypers

learn = make_learner()
learn.fit(1, lr=1e-3)  # a float: the same LR for every layer group, and for every layer in it
for pg in learn.opt.param_groups:  # torch param groups: each layer group is split by weight decay
    print(f"layer group {pg['layer_group']} ({learn.group_names[pg['layer_group']]:<6}) "
          f"{len(pg['params'])} tensors, wd {pg['weight_decay']:<4}  lr {pg['lr']:.0e}")
learn.fit(1, lr=slice(1e-5, 1e-3))  # a slice: one LR per layer group (not per layer)
print(dict(zip(learn.group_names, (f"{x:.0e}" for x in group_hypers(learn.opt, "lr", learn.n_groups)))))
