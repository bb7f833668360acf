"""What the training loop calls, and in which order: `learn.ordered_cbs(event)` and `learn.show_training_loop()`
(fastai's names)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .callback.core import BATCH_EVENTS, Callback, hooks_of

if TYPE_CHECKING:
    from .learner import Learner

# the loop's structure: markers (no colon) and events, indented by nesting depth
LOOP: list[tuple[int, str]] = [
    (0, "Start Fit"), (1, "before_fit"), (1, "Start Epoch Loop"), (2, "before_epoch"), (2, "Start Train"),
    (3, "before_train"), (3, "Start Batch Loop"), (4, "before_batch"), (4, "after_pred"), (4, "after_loss"),
    (4, "before_backward"), (4, "after_backward"), (4, "before_step"), (4, "after_step"), (4, "after_cancel_batch"),
    (4, "after_batch"), (3, "End Batch Loop"), (3, "after_cancel_train"), (3, "after_train"), (2, "End Train"),
    (2, "Start Valid"), (3, "before_validate"), (3, "Start Batch Loop"), (4, "**the batch events, as in training**"),
    (3, "End Batch Loop"), (3, "after_cancel_validate"), (3, "after_validate"), (2, "End Valid"),
    (2, "after_cancel_epoch"), (2, "after_epoch"), (1, "End Epoch Loop"), (1, "after_cancel_fit"), (1, "after_fit"),
    (0, "End Fit"),
]


def ordered_cbs(learn: Learner, event: str) -> list[Callback]:
    """The callbacks that run at `event`, in the order they run (those with a hook for it)."""
    return [cb for cb in learn.cbs if event in hooks_of(cb)]


def show_training_loop(learn: Learner) -> None:
    """Print the loop's structure with, at each event, the callbacks that run there (in order); a batch event
    lists the callbacks that run in training (`run_train`)."""
    for depth, name in LOOP:
        pad = "  " * depth
        if not (name.startswith(("before_", "after_"))):
            print(f"{pad}{name}")
            continue
        cbs = [cb for cb in ordered_cbs(learn, name) if name not in BATCH_EVENTS or cb.run_train]
        if cbs:
            print(f"{pad} - {name:<22}: [{', '.join(type(c).__name__ for c in cbs)}]")
