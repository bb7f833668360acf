print(learn.n_groups, "layer groups:", learn.group_names)
specs = {"1e-3": 1e-3, "slice(1e-3)": slice(1e-3), "slice(1e-5, 1e-3)": slice(1e-5, 1e-3),
         "layer_decay(1e-3, 0.6)": layer_decay(1e-3, 0.6), "[...] (9 values)": [1e-5] * 4 + [1e-4] * 4 + [1e-3]}
print(f"{'group':<16}" + "".join(f"{label:>23}" for label in specs))
for i, name in enumerate(learn.group_names):
    print(f"{name:<16}" + "".join(f"{learn.lr_range(spec)[i]:>23.3g}" for spec in specs.values()))
