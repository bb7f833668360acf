learn = make_learner()
learn.recorder.train_metrics = True   # fastai's switch: each metric on the training set too, on its own copy
learn.fit_one_cycle(2, 1e-2)
print(learn.recorder.metric_names)
print({k: round(v, 4) for k, v in learn.results.columns().items()})   # the last row, by column name
