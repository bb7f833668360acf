from functools import partial

from minifastai import Optimizer, RAdam, ranger
from minifastai.optimizer import average_grad, momentum_step, weight_decay

# fastai's stepper optimizers as opt_func: a torch.optim.Optimizer subclass running fastai's steppers
for name, opt_func in [("RAdam", partial(RAdam, wd=0.01)), ("ranger", ranger)]:
    learn = make_learner(opt_func=opt_func)
    with learn.no_logging():
        learn.fit_one_cycle(2, 1e-2)
    print(f"{name:7s} {type(learn.opt).__name__}: valid_loss {learn.recorder.values[-1][1]:.2f}, "
          f"accuracy {learn.recorder.values[-1][2]:.2f}")


# your own optimizer from steppers, as fastbook chapter 16 builds them: SGD with momentum and weight decay
def sgd_mom(params, lr, mom=0.9, wd=0.0):
    return Optimizer(params, [weight_decay, average_grad, momentum_step], lr=lr, mom=mom, wd=wd)


learn = make_learner(opt_func=sgd_mom)
with learn.no_logging():
    learn.fit_one_cycle(2, 5e-2)
hypers = {k: (f"{v:.2g}" if isinstance(v, float) else v) for k, v in learn.opt.hypers[-1].items()}
print("sgd_mom", hypers, "| state keys:", sorted(next(iter(learn.opt.state.values()))))
