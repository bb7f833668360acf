import torch
import torchmetrics
from sklearn.metrics import balanced_accuracy_score

from minifastai import Learner, Metric, accuracy


class MacroRecallMetric(Metric):  # a Metric written as fastai's docs write one: whole-set macro recall
    def reset(self):
        self.hits = self.seen = 0

    def accumulate(self, learn):  # tensor arithmetic only: no host-device sync per batch
        pred, targ = learn.pred.argmax(dim=-1), learn.yb[0]
        onehot = torch.zeros_like(learn.pred).scatter_(1, targ[:, None], 1.0)
        self.hits = self.hits + (onehot * (pred == targ)[:, None]).sum(0)
        self.seen = self.seen + onehot.sum(0)

    @property
    def value(self):
        return (self.hits / self.seen).mean()


def balanced_acc(pred, targ):  # a function returning a numpy float
    return balanced_accuracy_score(targ.numpy(), pred.argmax(-1).numpy())


f1 = torchmetrics.classification.MulticlassF1Score(num_classes=10, average="macro")
learn = Learner(dls, make_model(), nn.CrossEntropyLoss(), splitter=splitter,
                metrics=[accuracy, MacroRecallMetric(), balanced_acc, f1])
learn.fit_one_cycle(2, 1e-2)
print("the torchmetrics object itself holds the last validation:", f"{f1.compute():.6f}")
