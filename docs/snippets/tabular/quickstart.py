dls = TabularDataLoaders.from_df(df, cat_names=cat_names, cont_names=cont_names, y_names="species",
                                 valid_pct=0.2, seed=42, bs=32)
print(dls)
learn = tabular_learner(dls, metrics=accuracy)
print(learn.summary())
learn.fit_one_cycle(8, 1e-2)
lrs = learn.recorder.lrs
print(f"recorded lr: shape {lrs.shape} (batches, layer groups), start {lrs[0, 0]:.1e}, "
      f"peak {lrs.max():.1e} at batch {lrs[:, 0].argmax()}, last batch {lrs[-1, 0]:.1e}")
fig = learn.recorder.plot_sched()
