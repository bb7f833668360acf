"""fastai's mid-level data pipeline, small: `Transform` (`encodes` / `decodes`), `Pipeline` (transforms in order,
decoded in reverse) and `Datasets` (one pipeline per element of an item: inputs, then targets).

fastai dispatches `encodes` on the type of its argument (fasttransform); here a transform has one `encodes` and
one `decodes`, applied to each element of a tuple, as fastai applies a transform to a tuple. That is what the
common idioms need (`Datasets(items, tfms=[[...], [...]])`, a loss's or a label's `decodes` in `predict`)."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from torch.utils.data import Dataset

__all__ = ["Transform", "Pipeline", "Datasets"]


class Transform:
    """fastai's `Transform`: calling it runs `encodes(x)`, `decode(x)` runs `decodes(x)` (both the identity
    unless a subclass or `Transform(enc, dec)` gives them); a tuple is transformed element by element. `order`
    sorts the transforms of a `Pipeline`."""

    order: int = 0

    def __init__(self, enc: Callable[[Any], Any] | None = None, dec: Callable[[Any], Any] | None = None) -> None:
        for name, f in (("enc", enc), ("dec", dec)):
            if f is not None and not callable(f):
                raise TypeError(f"Transform({name}=...) must be a function, got {type(f).__name__}")
        self._enc, self._dec = enc, dec

    def encodes(self, x: Any) -> Any:
        """The forward transform of one element (the identity here)."""
        return self._enc(x) if self._enc is not None else x

    def decodes(self, x: Any) -> Any:
        """The inverse of `encodes` for display and `predict` (the identity here)."""
        return self._dec(x) if self._dec is not None else x

    def __call__(self, x: Any) -> Any:
        return tuple(self.encodes(v) for v in x) if type(x) is tuple else self.encodes(x)

    def decode(self, x: Any) -> Any:
        """`decodes` of `x` (of each element of a tuple)."""
        return tuple(self.decodes(v) for v in x) if type(x) is tuple else self.decodes(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _as_transform(f: Any) -> Transform:
    if isinstance(f, Transform):
        return f
    if isinstance(f, type) and issubclass(f, Transform):
        return f()
    if callable(f):
        return Transform(f)
    raise TypeError(f"a transform is a Transform or a function, got {type(f).__name__} {f!r:.60}")


class Pipeline:
    """Transforms (or plain functions) applied in `order`; `decode` undoes them in reverse order."""

    def __init__(self, funcs: Any = None) -> None:
        items = [] if funcs is None else [funcs] if callable(funcs) or isinstance(funcs, Transform) else list(funcs)
        self.fs = sorted((_as_transform(f) for f in items), key=lambda t: t.order)

    def __call__(self, x: Any) -> Any:
        for f in self.fs:
            x = f(x)
        return x

    def decode(self, x: Any) -> Any:
        """`x` decoded through every transform, last first."""
        for f in reversed(self.fs):
            x = f.decode(x)
        return x

    def __len__(self) -> int:
        return len(self.fs)

    def __repr__(self) -> str:
        return f"Pipeline({' -> '.join(type(f).__name__ for f in self.fs)})"


class Datasets(Dataset):
    """fastai's `Datasets`: `items` and one pipeline per element of an item (`tfms=[x_tfms, y_tfms]`); item `i`
    is `(x_pipeline(items[i]), y_pipeline(items[i]), ...)`. The first `n_inp` elements are inputs (default: all
    but the last, at least one)."""

    def __init__(self, items: Sequence | Iterable, tfms: Any = None, n_inp: int | None = None) -> None:
        self.items: Any = items if hasattr(items, "__getitem__") and hasattr(items, "__len__") else list(items)
        lists = [None] if tfms is None else list(tfms) if isinstance(tfms, (list, tuple)) or _is_listy(tfms) \
            else [tfms]
        self.tfms = [Pipeline(t) for t in lists]
        n = max(1, len(self.tfms) - 1) if n_inp is None else n_inp
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(self.tfms):
            raise ValueError(f"Datasets: n_inp must be an int from 1 to {len(self.tfms)} (the number of pipelines), "
                             f"got {n_inp!r}")
        self.n_inp = n

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple:
        item = self.items.iloc[i] if hasattr(self.items, "iloc") else self.items[i]
        return tuple(p(item) for p in self.tfms)

    def decode(self, o: Sequence) -> tuple:
        """One item (a tuple, as `__getitem__` gives, or its first elements) decoded through its pipelines."""
        return tuple(p.decode(x) for p, x in zip(self.tfms, o))

    def test_set(self, items: Sequence | Iterable) -> Datasets:
        """New items through the input pipelines only (what `test_dl` loads)."""
        ds = Datasets(items, n_inp=1)
        ds.tfms, ds.n_inp = self.tfms[: self.n_inp], self.n_inp
        return ds

    def __repr__(self) -> str:
        return f"Datasets({len(self)} items, {len(self.tfms)} pipelines, n_inp={self.n_inp})"


def _is_listy(x: Any) -> bool:
    return type(x).__name__ == "L" and hasattr(x, "items")
