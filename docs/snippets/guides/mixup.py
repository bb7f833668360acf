from minifastai import MixUp

learn = make_learner(cbs=MixUp(alpha=0.4))   # fastai's: each training item blended with another of its batch
learn.fit_one_cycle(3, 1e-2)
print(type(learn.loss_func).__name__)        # the loss the learner had: MixUp blends it only while training
