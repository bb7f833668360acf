import torch

from minifastai import EMA

learn = make_learner(cbs=EMA(decay=0.98))  # an average over roughly the last 1 / (1 - 0.98) = 50 steps
learn.fit(4, 3e-2)  # a constant, rather high LR; each epoch's validation runs on the averaged weights
print(learn.ema, "|", type(learn.ema.ema_model).__name__)

on_average = learn.validate()  # validate, get_preds and predict use the average too
learn.ema.validate_on_ema = False
on_trained = learn.validate()  # the weights the optimizer left in learn.model
learn.ema.validate_on_ema = True
print(f"valid loss, accuracy: trained weights {on_trained[0]:.4f}, {on_trained[1]:.4f}; "
      f"averaged weights {on_average[0]:.4f}, {on_average[1]:.4f}")

exported = torch.load(learn.export(), weights_only=True)["model"]  # export writes the average
average = learn.ema.ema_model.module.state_dict()
print("exported weights are the average:", all(torch.equal(exported[k], average[k]) for k in average))
