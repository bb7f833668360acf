"""Text metrics: corpus BLEU over the validation set (fastai's `CorpusBLEUMetric`)."""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .core import Metric

if TYPE_CHECKING:
    from ..learner import Learner


def _ngrams(tokens: Sequence[int], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


class CorpusBLEUMetric(Metric):
    """BLEU (up to 4-grams) of the arg-max predictions against the targets over the validation corpus, with
    SacreBLEU's smoothing ("method 3" of Chen & Cherry 2014: a sentence's zero count for an n-gram order counts
    1/2, 1/4, ... instead) and the brevity penalty. `vocab_sz` is kept for fastai's signature."""

    def __init__(self, vocab_sz: int = 5000, axis: int = -1) -> None:
        self.vocab_sz, self.axis = vocab_sz, axis
        self.name = "CorpusBLEU"
        self.reset()

    def reset(self) -> None:
        """Zero the lengths and the n-gram counts."""
        self.pred_len, self.targ_len = 0, 0
        self.corrects: list[float] = [0.0] * 4
        self.counts: list[int] = [0] * 4

    def accumulate(self, learn: Learner) -> None:
        """Count each sentence's matching n-grams (validation batches only)."""
        if learn.training:
            return
        preds = learn.pred.argmax(dim=self.axis).cpu().tolist()
        targs = learn.y.cpu().tolist()
        for pred, targ in zip(preds, targs):
            self.pred_len += len(pred)
            self.targ_len += len(targ)
            smooth = 1
            for i in range(4):
                p, t = _ngrams(pred, i + 1), _ngrams(targ, i + 1)
                correct: float = sum(min(c, t[g]) for g, c in p.items())
                if correct == 0:
                    smooth *= 2
                    correct = 1 / smooth
                self.corrects[i] += correct
                self.counts[i] += sum(p.values())

    @property
    def value(self) -> float | None:
        """The corpus BLEU score (None before any sentence, 0 without any match)."""
        if not any(self.counts):
            return None
        if max(self.corrects) == 0:
            return 0.0
        precs = [c / t for c, t in zip(self.corrects, self.counts)]
        penalty = math.exp(1 - self.targ_len / self.pred_len) if self.pred_len < self.targ_len else 1.0
        return penalty * math.prod(precs) ** 0.25
