learn = make_learner()
learn.recorder.train_metrics = True   # fastai's switch: the metrics on the training set too
learn.fit_one_cycle(2, 1e-2)
print(learn.recorder.metric_names)
print({k: round(v, 4) for k, v in learn.results.columns().items()})  # the last row by name
