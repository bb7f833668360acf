"""`Learner.summary()`: the layer groups, what trains, and which hyper-parameters each group gets."""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import groups as G

if TYPE_CHECKING:
    from .learner import Learner


class Summary(str):
    """A string that notebooks display as-is."""

    def __repr__(self) -> str:
        return str(self)


def summary(learn: Learner) -> Summary:
    """A table with one row per layer group: parameters, trainable parameters, state, lr, mom, wd."""
    bn = G.norm_params(learn.model)
    if learn.opt is not None:
        hp = {h: G.group_hypers(learn.opt, h, learn.n_groups) for h in ("lr", "mom", "wd")}
        src = "current optimizer values"
    else:
        opt = learn.create_opt()
        hp = {h: G.group_hypers(opt, h, learn.n_groups) for h in ("lr", "mom", "wd")}
        learn.opt = None
        src = f"what fit() starts from (learn.lr = {learn.lr!r}); fit_one_cycle schedules them per batch"
    rows = [("group", "params", "trainable", "state", "lr", "mom", "wd")]
    total = trainable = 0
    for i, (name, g) in enumerate(zip(learn.group_names, learn.layer_groups)):
        n = sum(p.numel() for p in g)
        t = sum(p.numel() for p in g if p.requires_grad)
        total, trainable = total + n, trainable + t
        frozen_norm = any(p.requires_grad and id(p) in bn for p in g) and not all(
            p.requires_grad for p in g if id(p) not in bn)
        state = ("trains" if t == n else "frozen (norm layers train)" if frozen_norm
                 else "frozen" if t == 0 else "partly")
        rows.append((f"{i}: {name}", f"{n:,}", f"{t:,}", state, f"{hp['lr'][i]:.3g}", f"{hp['mom'][i]:.3g}",
                     f"{hp['wd'][i]:.3g}"))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = [f"{type(learn.model).__name__}: {learn.n_groups} layer group(s), {total:,} parameters "
             f"({trainable:,} trainable); loss {type(learn.loss_func).__name__}; "
             f"optimizer {getattr(learn.opt_func, 'func', learn.opt_func).__name__}"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append(f"lr/mom/wd: {src}. wd applies to weights, not to norm layers or biases"
                 + (" (wd_bn_bias=True: to all)" if learn.wd_bn_bias else "") + ".")
    peaks = learn.group_plan.peaks.get("lr")  # the last fit's plan, as its schedule published it
    if peaks:
        lines.append("peak lr of the last fit: " + ", ".join(f"{n} {p:.3g}" for n, p in
                                                            zip(learn.group_plan.group_names, peaks)) + ".")
    if learn.n_groups > 1:
        ex = ", ".join(f"{x:.0e}" for x in learn.lr_range(slice(1e-5, 1e-3)))
        ld = ", ".join(f"{x:.2g}" for x in learn.lr_range(G.layer_decay(1e-3, 0.7)))
        lines.append(f"slice(1e-5, 1e-3) would give peaks [{ex}]: one per group, first = input side; "
                     f"layer_decay(1e-3, 0.7) [{ld}].")
    else:
        lines.append("One layer group: a float LR is the natural choice; a slice gives this group its stop value.")
    return Summary("\n".join(lines))
