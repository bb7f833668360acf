"""Showing images: `show_images`, the grid `show_batch`, `show_results` and `plot_top_losses` draw (fastai's
`get_grid` layout, matplotlib)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

__all__ = ["show_images"]


def show_images(imgs: Tensor | Sequence[Tensor], titles: Sequence[str], colors: Sequence[str] | None = None,
                nrows: int | None = None, ncols: int | None = None, figsize: tuple[float, float] | None = None,
                suptitle: str | None = None) -> Any:
    """A grid of (3, H, W) (or grey (1, H, W)) images in [0, 1] with titles, laid out as fastai's `get_grid`;
    returns the figure."""
    import math

    import matplotlib.pyplot as plt

    n = len(imgs)
    if nrows is None and ncols is None:
        nrows = max(1, int(math.sqrt(n)))
    if nrows is None:
        nrows = max(1, math.ceil(n / (ncols or 1)))
    ncols = ncols or max(1, math.ceil(n / nrows))
    fig, axs = plt.subplots(nrows, ncols, figsize=figsize or (3 * ncols, 3 * nrows), squeeze=False)
    for i, ax in enumerate(axs.flat):
        ax.axis("off")
        if i < n:
            img = imgs[i].clamp(0, 1)
            if img.shape[0] == 1:
                ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(img.permute(1, 2, 0).numpy())
            ax.set_title(titles[i], color=colors[i] if colors else "black")
    if suptitle:
        fig.suptitle(suptitle, weight="bold", size=14)
    fig.tight_layout()
    return fig
