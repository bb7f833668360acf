from minifastai.vision import ImageDataLoaders, Resize, mobilenet_v2, vision_learner

learn = vision_learner(ImageDataLoaders.from_folder(path, item_tfms=Resize(32), bs=8), mobilenet_v2)
print(learn.summary())
with learn.dry_run() as runs:  # the plan of fine_tune: no batch is loaded, nothing changes
    learn.fine_tune(2, base_lr=1e-2)
print(runs)
runs[0].plot_sched(log=True, figsize=(9, 2.6))  # phase 1: frozen, slice(base_lr)
runs[1].plot_sched(log=True, figsize=(9, 2.6))  # phase 2: unfrozen, slice(base_lr/2/100, base_lr/2)
