import matplotlib.pyplot as plt

specs = {"1e-3 (float)": 1e-3, "slice(1e-3)": slice(1e-3), "slice(1e-5, 1e-3)": slice(1e-5, 1e-3),
         "layer_decay(1e-3, 0.6)": layer_decay(1e-3, 0.6), "layer_decay(1e-3, 0.9)": layer_decay(1e-3, 0.9)}
fig, ax = plt.subplots(figsize=(8, 4))
for i, (label, spec) in enumerate(specs.items()):
    ax.plot(range(learn.n_groups), learn.lr_range(spec), marker="os^Dv"[i], label=label)
ax.set(yscale="log", xlabel="layer group", ylabel="peak learning rate",
       title=f"{learn.n_groups} layer groups of MobileNetV2 (splitter='stages')")
ax.set_xticks(range(learn.n_groups), learn.group_names, rotation=30, ha="right", fontsize=8)
ax.legend(fontsize=8)
fig.tight_layout()
print({label: f"{learn.lr_range(spec)[0]:.2g}" for label, spec in specs.items()})  # the first group's LR
