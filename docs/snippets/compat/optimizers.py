from functools import partial

import torch

from minifastai import SGD, Adam, OptimWrapper

learn = make_learner(opt_func=partial(SGD, mom=0.9))  # fastai's SGD: a torch.optim.SGD underneath
learn.fit_one_cycle(1, 1e-2)
pg = learn.opt.param_groups[0]
print(isinstance(learn.opt, torch.optim.SGD), f"momentum {pg['momentum']:.3f}, weight_decay {pg['weight_decay']}")

learn = make_learner(opt_func=Adam)  # fastai's Adam: torch.optim.AdamW(betas=(0.9, 0.99), eps=1e-5, wd 0.01)
print(type(learn.create_opt()).__name__, learn.opt.defaults["betas"], learn.opt.defaults["weight_decay"])

learn = make_learner(opt_func=partial(OptimWrapper, opt=torch.optim.RAdam, decoupled_weight_decay=True))
learn.fit_one_cycle(1, 1e-2)
print(type(learn.opt).__name__, "mom per group at the last batch:", learn.recorder.moms[-1])
