"""`TabularModel`: embeddings for categories, batch norm for continuous columns, then linear layers."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..layers import BatchNorm, SigmoidRange, sigmoid_range
from .dataloaders import TabularDataLoaders, TabularPandas

__all__ = ["emb_sz_rule", "get_emb_sz", "TabularModel", "sigmoid_range", "SigmoidRange", "tabular_config"]


def emb_sz_rule(n_cat: int) -> int:
    """fastai's rule of thumb for an embedding's width: `min(600, round(1.6 * n_cat ** 0.56))`."""
    return min(600, round(1.6 * n_cat**0.56))


def get_emb_sz(dls: TabularDataLoaders | TabularPandas,
               sz_dict: Mapping[str, int] | None = None) -> list[tuple[int, int]]:
    """(vocab size, width) for every categorical column; `sz_dict` overrides widths by column name."""
    sz_dict = dict(sz_dict or {})
    unknown = [c for c in sz_dict if c not in dls.cat_names]
    if unknown:
        raise ValueError(f"emb_szs names {unknown}, which are not categorical inputs {dls.cat_names}")
    sizes = [len(dls.classes[c]) for c in dls.cat_names]
    return [(n, int(sz_dict.get(c, emb_sz_rule(n)))) for c, n in zip(dls.cat_names, sizes)]


class TabularModel(nn.Module):
    """fastai's tabular model: an embedding per categorical column (dropout `embed_p`), BatchNorm on the
    continuous columns, then per hidden size `Linear -> ReLU -> BatchNorm -> Dropout(p)`, a final `Linear`,
    and `SigmoidRange(*y_range)` when `y_range` is given."""

    def __init__(self, emb_szs: Sequence[tuple[int, int]], n_cont: int, out_sz: int, layers: Sequence[int],
                 ps: float | Sequence[float] | None = None, embed_p: float = 0.0,
                 y_range: tuple[float, float] | None = None, use_bn: bool = True, bn_final: bool = False,
                 bn_cont: bool = True) -> None:
        super().__init__()
        layers = list(layers)
        if ps is None or isinstance(ps, (int, float)):
            ps = [float(ps or 0.0)] * len(layers)
        ps = list(ps)
        if len(ps) != len(layers):
            raise ValueError(f"ps has {len(ps)} dropout values for {len(layers)} hidden layers")
        embeds = [nn.Embedding(n, d) for n, d in emb_szs]
        for e in embeds:
            nn.init.trunc_normal_(e.weight, std=0.01, a=-0.02, b=0.02)
        self.embeds = nn.ModuleList(embeds)
        self.emb_drop = nn.Dropout(embed_p)
        self.bn_cont = BatchNorm(n_cont, ndim=1) if bn_cont and n_cont else None
        self.n_emb, self.n_cont = sum(d for _, d in emb_szs), n_cont
        sizes = [self.n_emb + n_cont, *layers, out_sz]
        mods: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            bn = use_bn and (not last or bn_final)
            mods.append(nn.Linear(n_in, n_out, bias=not bn))
            if not last:
                mods.append(nn.ReLU(inplace=True))
            if bn:
                mods.append(BatchNorm(n_out, ndim=1))
            p = 0.0 if last else ps[i]
            if p:
                mods.append(nn.Dropout(p))
        if y_range is not None:
            mods.append(SigmoidRange(*y_range))
        self.layers = nn.Sequential(*mods)

    def forward(self, x_cat: torch.Tensor, x_cont: torch.Tensor | None = None) -> torch.Tensor:
        """Embed the codes, join the (normalized) continuous values, and run the layers."""
        xs = []
        if self.n_emb:
            xs.append(self.emb_drop(torch.cat([e(x_cat[:, i]) for i, e in enumerate(self.embeds)], 1)))
        if self.n_cont and x_cont is not None:
            xs.append(self.bn_cont(x_cont) if self.bn_cont is not None else x_cont)
        return self.layers(xs[0] if len(xs) == 1 else torch.cat(xs, 1))


def tabular_config(**kwargs: Any) -> dict[str, Any]:
    """fastai's `tabular_config`: `TabularModel`'s keyword arguments as a dict (`tabular_learner(dls,
    config=tabular_config(ps=[0.1, 0.1]))`); a name `TabularModel` does not take is an error naming it."""
    import inspect

    known = set(inspect.signature(TabularModel.__init__).parameters) - {"self", "emb_szs", "n_cont", "out_sz",
                                                                        "layers"}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(f"tabular_config: TabularModel takes no {unknown}; it takes {sorted(known)}")
    return dict(kwargs)
