import numpy as np

from minifastai import ParamScheduler, SchedCos, SchedLin, combine_scheds

learn = make_learner()  # three layer groups: body, middle, head
peaks = np.array(learn.lr_range(slice(1e-4, 1e-2)))  # one peak per layer group: [1e-4, 1e-3, 1e-2]
lr = combine_scheds([0.3, 0.7], [SchedLin(peaks / 10, peaks), SchedCos(peaks, peaks / 1e3)])
mom = combine_scheds([0.3, 0.7], [SchedLin(0.95, 0.85), SchedCos(0.85, 0.95)])
learn.fit(2, cbs=ParamScheduler({"lr": lr, "mom": mom}))
print(lr)
print("lr at batches 0, 14 and 45 (rows), per group (columns):")
print(learn.recorder.lrs[[0, 14, 45]])
learn.recorder.plot_sched(log=True)
