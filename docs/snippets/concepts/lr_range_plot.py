import matplotlib.pyplot as plt

inputs = [("1e-3", 1e-3), ("slice(1e-3)", slice(1e-3)), ("slice(1e-5, 1e-3)", slice(1e-5, 1e-3)),
          ("[1e-4, 5e-4, 1e-3]", [1e-4, 5e-4, 1e-3])]
fig, axs = plt.subplots(2, 2, figsize=(9, 6.4), sharey=True, sharex=True)  # 2x2: readable at the page's width
for ax, (text, lr) in zip(axs.flat, inputs):
    learn = make_learner()
    learn.fit_one_cycle(1, lr)  # a real run; the recorder keeps every group's LR at every batch
    lrs = learn.recorder.lrs     # shape (iterations, layer groups)
    print(f"{text:<19} recorded peaks: " + ", ".join(f"{n} {p:.0e}" for n, p in zip(learn.group_names, lrs.max(0))))
    for g, name in enumerate(learn.group_names):
        ax.plot(lrs[:, g], label=name, lw=2, ls=["-", "--", ":"][g])
    ax.set(yscale="log", title=f"fit_one_cycle(1, {text})")
for ax in axs[1]:
    ax.set_xlabel("training batch")
for ax in axs[:, 0]:
    ax.set_ylabel("learning rate (log scale)")
axs[0, 0].legend()
fig.tight_layout()
