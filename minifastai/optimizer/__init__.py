"""Optimizers under fastai's names: `SGD`, `Adam`, `RMSProp` and `OptimWrapper` build torch's own optimizers
(`torch_optimizers`); `Optimizer` and the steppers (`steppers`) are fastai's stepper optimizer, as a
`torch.optim.Optimizer` subclass, with `RAdam`, `QHAdam`, `Larc`, `Lamb`, `Lookahead` and `ranger`."""
from .steppers import (
    HyperView,
    Lamb,
    Larc,
    Lookahead,
    Optimizer,
    QHAdam,
    RAdam,
    adam_step,
    average_grad,
    average_sqr_grad,
    debias,
    detuplify_pg,
    l2_reg,
    lamb_step,
    larc_layer_lr,
    larc_step,
    momentum_step,
    pytorch_hp_map,
    qhadam_step,
    radam_step,
    ranger,
    rms_prop_step,
    set_item_pg,
    sgd_step,
    step_stat,
    weight_decay,
)
from .torch_optimizers import SGD, Adam, OptimWrapper, Params, RMSProp

__all__ = ["SGD", "Adam", "RMSProp", "OptimWrapper", "Params", "Optimizer", "HyperView", "RAdam", "QHAdam", "Larc",
           "Lamb", "Lookahead", "ranger", "sgd_step", "weight_decay", "l2_reg", "average_grad", "average_sqr_grad",
           "momentum_step", "rms_prop_step", "step_stat", "debias", "adam_step", "radam_step", "qhadam_step",
           "larc_layer_lr", "larc_step", "lamb_step", "pytorch_hp_map", "detuplify_pg", "set_item_pg"]
