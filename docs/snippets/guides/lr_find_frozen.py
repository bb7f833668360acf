learn = make_learner()
learn.freeze()
print(learn.lr_find(show_plot=False))     # frozen: only the head (and BatchNorm) learns in the sweep
learn.unfreeze()
print(learn.lr_find(show_plot=False))
print(learn.recorder.lr_sweep.lrs[40])     # every layer group got the same swept LR
