import matplotlib.pyplot as plt

inputs = [("1e-3", 1e-3), ("slice(1e-3)", slice(1e-3)), ("slice(1e-5, 1e-3)", slice(1e-5, 1e-3)),
          ("[1e-4, 5e-4, 1e-3]", [1e-4, 5e-4, 1e-3])]
fig, axs = plt.subplots(1, 4, figsize=(16, 3.6), sharey=True)
for ax, (text, lr) in zip(axs, inputs):
    learn = make_learner()
    learn.fit_one_cycle(1, lr)  # a real run; the recorder keeps every group's LR at every batch
    lrs = learn.recorder.lrs     # shape (iterations, layer groups)
    print(f"{text:<19} recorded peaks: " + ", ".join(f"{n} {p:.0e}" for n, p in zip(learn.group_names, lrs.max(0))))
    for g, name in enumerate(learn.group_names):
        ax.plot(lrs[:, g], label=name, lw=2, ls=["-", "--", ":"][g])
    ax.set(yscale="log", title=f"fit_one_cycle(1, {text})", xlabel="training batch")
axs[0].set_ylabel("learning rate (log scale)")
axs[0].legend()
fig.tight_layout()
