"""Data: `DataLoaders` and `TfmdDL` (`core`), fastai's `DataBlock` (`block`), its target blocks (`blocks`) and
its splitters and labellers (`transforms`)."""
from .core import DataLoaders, TfmdDL, check_loader, default_device, n_batches, shapes_of, to_device

__all__ = ["DataLoaders", "TfmdDL", "check_loader", "default_device", "n_batches", "shapes_of", "to_device"]
