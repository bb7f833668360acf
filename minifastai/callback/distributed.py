"""Distributed data parallel training under `torchrun`: process group, DDP, sharded data, reductions.

On the error path no collective runs: a rank whose fit raises skips every collective of minifastai (buffer
broadcast, barriers), prints its error with its rank at once, and leaves, so the other ranks fail fast (their
next collective sees the closed connection, or times out after `distrib_ctx(timeout=...)`) instead of
waiting for a collective that never comes.
"""
from __future__ import annotations

import contextlib
import datetime
import sys
import traceback
from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import TYPE_CHECKING, Any, TypeGuard, cast

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import (
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

from ..ranks import (  # noqa: F401 (re-exported: the distributed API)
    _env_int,
    _error_in_flight,
    _RankState,
    barrier,
    in_distributed,
    is_main_process,
    local_rank,
    rank,
    world_size,
)
from .core import Callback
from .recorder import Recorder

if TYPE_CHECKING:
    from ..learner import Learner

DEFAULT_TIMEOUT = 600.0
"""Seconds a collective waits for the other ranks before it fails (`distrib_ctx(timeout=...)`); torch's own
defaults are 10 minutes for NCCL and 30 for gloo."""


# ---- sharding ----------------------------------------------------------------------------------
class ShardSampler(Sampler[int]):
    """Indices `rank, rank + world_size, ...` of a dataset of `n` items: a partition, no padding."""

    def __init__(self, n: int, rank: int, world_size: int) -> None:
        self.n, self.rank, self.world_size = n, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world_size))


class ShardedLoader:
    """Every `world_size`-th batch of any iterable of batches, starting at `rank`.

    With `even=True` (training) every rank gets `len(dl) // world_size` batches, so they step together (the
    last `len(dl) % world_size` batches are dropped); with `even=False` (validation) the shards partition the
    batches exactly. The batch order must be the same in every process (seed every rank the same).
    """

    def __init__(self, dl: Iterable, rank: int, world_size: int, even: bool = True) -> None:
        self.dl, self.rank, self.world_size, self.even = dl, rank, world_size, even

    def __len__(self) -> int:
        n = len(self.dl)  # type: ignore[arg-type]
        return n // self.world_size if self.even else len(range(self.rank, n, self.world_size))

    def __iter__(self) -> Iterator:
        limit = len(self) if hasattr(self.dl, "__len__") else None
        taken = 0
        for i, b in enumerate(self.dl):
            if limit is not None and taken >= limit:
                return
            if i % self.world_size == self.rank:
                taken += 1
                yield b


def _is_map_loader(dl: Any) -> TypeGuard[DataLoader]:
    return (isinstance(dl, DataLoader) and dl.batch_size is not None
            and not isinstance(dl.dataset, IterableDataset)
            and type(dl.sampler) in (RandomSampler, SequentialSampler))


def _rebuild_loader(dl: DataLoader, sampler: Sampler) -> DataLoader:
    """The same DataLoader (dataset, batch size, collate, workers) drawing indices from `sampler`."""
    kw: dict[str, Any] = dict(batch_size=dl.batch_size, sampler=sampler, num_workers=dl.num_workers,
                              collate_fn=dl.collate_fn, pin_memory=dl.pin_memory, drop_last=dl.drop_last,
                              timeout=dl.timeout, worker_init_fn=dl.worker_init_fn, generator=dl.generator)
    if dl.num_workers > 0:
        kw.update(prefetch_factor=dl.prefetch_factor, persistent_workers=dl.persistent_workers,
                  multiprocessing_context=dl.multiprocessing_context)
    return DataLoader(dl.dataset, **kw)


def shard_train(dl: Iterable, rank: int, world_size: int, seed: int = 0) -> Iterable:
    """A torch DataLoader re-created with a `DistributedSampler` (same shuffling choice, padded to equal
    shards); a wrapper that offers `map_loader(f)` (e.g. vision's loaders) around its sharded DataLoader;
    any other iterable through `ShardedLoader(even=True)`."""
    if hasattr(dl, "map_loader"):
        return dl.map_loader(lambda inner: shard_train(inner, rank, world_size, seed))
    if _is_map_loader(dl):
        sampler: DistributedSampler = DistributedSampler(
            dl.dataset, num_replicas=world_size, rank=rank, shuffle=isinstance(dl.sampler, RandomSampler), seed=seed)
        return _rebuild_loader(dl, sampler)
    if not hasattr(dl, "__len__"):
        raise TypeError(f"cannot shard an unsized training loader ({type(dl).__name__}) so that every "
                        "process gets the same number of batches; give it a __len__ or use a DataLoader")
    return ShardedLoader(dl, rank, world_size, even=True)


def shard_valid(dl: Iterable, rank: int, world_size: int) -> Iterable:
    """A partition of the validation data with no padding, so reduced sums cover every item exactly once."""
    if hasattr(dl, "map_loader"):
        return dl.map_loader(lambda inner: shard_valid(inner, rank, world_size))
    if _is_map_loader(dl):
        return _rebuild_loader(dl, ShardSampler(len(cast(Sized, dl.dataset)), rank, world_size))
    return ShardedLoader(dl, rank, world_size, even=False)


# ---- reductions --------------------------------------------------------------------------------
def all_reduce_sum(values: Sequence[Any], device: torch.device) -> list[Any]:
    """Sum numbers and tensors across processes in one call; each result keeps its input's kind and shape."""
    flat = [torch.as_tensor(v, dtype=torch.float64, device=device).reshape(-1) for v in values]
    buf = torch.cat(flat) if flat else torch.zeros(0, dtype=torch.float64, device=device)
    dist.all_reduce(buf)
    out: list[Any] = []
    i = 0
    for v, f in zip(values, flat):
        chunk = buf[i : i + f.numel()]
        i += f.numel()
        if isinstance(v, torch.Tensor):
            t = chunk.reshape(v.shape)
            out.append(t if v.is_floating_point() else t.round().to(v.dtype))
        elif isinstance(v, int) and not isinstance(v, bool):
            out.append(int(round(float(chunk))))
        else:
            out.append(float(chunk))
    return out


class DistributedTrainer(Callback):
    """Inside `distrib_ctx`: wraps the model in DDP for each fit, sets the sampler's epoch, averages the
    training loss over processes (so every rank takes the same decisions), and sums validation loss and metric
    accumulators over processes before the Recorder reads them."""

    order = -5
    run_before = Recorder  # its after_validate sums what the Recorder's after_validate reads

    def __init__(self, device: torch.device, train_dl: Iterable | None, valid_dl: Iterable | None,
                 ddp_kwargs: dict[str, Any]) -> None:
        self.device, self.train_dl, self.valid_dl, self.ddp_kwargs = device, train_dl, valid_dl, ddp_kwargs
        self._outer: BaseException | None = None

    def before_fit(self) -> None:
        """Wrap the model (frozen parameters are left out by DDP, so wrapping per fit follows `freeze`)."""
        learn = self.learn
        _RankState.failing = False
        self._outer = sys.exc_info()[1]  # an exception the caller is handling is not this fit's error
        self._wrapped = not isinstance(learn.model, DDP)
        if not self._wrapped:
            return
        dev_ids = [self.device.index] if self.device.type == "cuda" else None
        learn.model = DDP(learn.model, device_ids=dev_ids, **self.ddp_kwargs)

    def before_epoch(self) -> None:
        """Reshuffle the shards for this epoch (the same permutation on every rank)."""
        sampler = getattr(self.train_dl, "sampler", None)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(self.learn.epoch)

    def after_batch(self) -> None:
        """Average the training loss over processes (after backward, so gradients are untouched)."""
        learn = self.learn
        if learn.training and isinstance(learn.loss, torch.Tensor):
            loss = learn.loss.detach().float().clone()
            dist.all_reduce(loss)
            learn.loss = loss / dist.get_world_size()

    def _on_valid(self) -> bool:
        return self.valid_dl is not None and self.learn.dl is self.valid_dl

    def before_validate(self) -> None:
        """Evaluate rank 0's buffers (e.g. BatchNorm statistics) everywhere."""
        if self._on_valid():
            _broadcast_buffers(self.learn.model)

    def after_validate(self) -> None:
        """Sum the running validation loss and item count (`learn.results`) and the metric accumulators of every
        shard, before the Recorder turns them into this epoch's `valid_loss` and metrics."""
        if not self._on_valid():
            return
        res = self.learn.results
        summed = [m for m in self.learn.metrics if hasattr(m, "total") and hasattr(m, "count")]  # others reduce
        vals: list[Any] = [res.valid_loss_sum, res.valid_count]  # themselves (torchmetrics) or see their shard
        for m in summed:
            vals += [m.total, m.count]
        red = all_reduce_sum(vals, self.device)
        res.valid_loss_sum, res.valid_count = red[0], red[1]
        for m, (t, c) in zip(summed, zip(red[2::2], red[3::2])):
            m.total, m.count = t, c

    def after_fit(self) -> None:
        """Leave every rank with rank 0's buffers, and unwrap the model if this callback wrapped it.

        When the fit is ending with an error on this rank, the other ranks are somewhere else (in a backward
        pass, a reduction): no collective runs, here or in later callbacks' `after_fit` (barriers are skipped).
        """
        learn = self.learn
        if _error_in_flight(self._outer):
            _RankState.failing = True
        else:
            _broadcast_buffers(learn.model)
        if getattr(self, "_wrapped", False) and isinstance(learn.model, DDP):
            learn.model = learn.model.module
        self._wrapped = False


def _broadcast_buffers(model: nn.Module) -> None:
    if _RankState.failing:
        return
    for b in model.buffers():
        dist.broadcast(b.data, src=0)


def _convert_sync_bn(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """Swap BatchNorm layers for SyncBatchNorm sharing their parameters and buffers; returns the undo list."""
    swaps: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _BatchNorm) and not isinstance(child, nn.SyncBatchNorm):
                setattr(parent, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
                swaps.append((parent, name, child))
    return swaps


def _seconds(timeout: float | datetime.timedelta) -> float:
    secs = timeout.total_seconds() if isinstance(timeout, datetime.timedelta) else float(timeout)
    if not secs > 0:
        raise ValueError(f"timeout must be a positive number of seconds (or a timedelta), got {timeout!r}")
    return secs


def report_failure(exc: BaseException) -> None:
    """Print one line to stderr at once (before any teardown that could wait on other ranks): this rank, the
    original error (the first of a chain of errors raised while handling it) and where it was raised. Python
    prints the full traceback when the process ends."""
    chain = [exc]
    while chain[-1].__context__ is not None and chain[-1].__context__ not in chain and len(chain) < 20:
        chain.append(chain[-1].__context__)
    first = chain[-1]
    tb = traceback.extract_tb(first.__traceback__)
    where = f" (raised at {tb[-1].filename}:{tb[-1].lineno} in {tb[-1].name})" if tb else ""
    then = f"; then, while handling it, {type(exc).__name__}: {exc}" if first is not exc else ""
    print(f"[rank {rank()}/{world_size()}] training failed on this rank with {type(first).__name__}: {first}{where}"
          f"{then}; this rank runs no more collectives, so the other ranks stop at their next one",
          file=sys.stderr, flush=True)


@contextlib.contextmanager
def distrib_ctx(learn: Learner, sync_bn: bool = True, backend: str | None = None, seed: int | None = None,
                timeout: float | datetime.timedelta = DEFAULT_TIMEOUT, **ddp_kwargs: Any) -> Iterator[Learner]:
    """Under `torchrun` (more than one process): set up the process group if needed (nccl on GPU, gloo on
    CPU), put this process on its GPU (`LOCAL_RANK`), shard train and validation data, train with
    DistributedDataParallel, reduce validation loss and metrics over all shards, and let only rank 0 show
    progress and write files. Everything is undone on exit. Outside `torchrun` it does nothing.

    `sync_bn` turns BatchNorm into SyncBatchNorm on GPU; `seed` fixes the shuffling of the shards (default:
    drawn from torch's RNG on rank 0); `timeout` (seconds or a timedelta, default 10 minutes) is how long a
    collective waits for the other ranks, for a process group this context creates; other keyword arguments
    go to `DistributedDataParallel`. An error on one rank is printed at once with its rank and re-raised; the
    rank runs no more collectives, so the others fail fast instead of hanging.
    """
    secs = _seconds(timeout)
    if not in_distributed():
        yield learn
        return
    on_gpu = learn.dls.device.type == "cuda" and torch.cuda.is_available()
    created = False
    if not dist.is_initialized():
        if on_gpu:
            torch.cuda.set_device(local_rank())
        dist.init_process_group(backend or ("nccl" if on_gpu else "gloo"), timeout=datetime.timedelta(seconds=secs))
        created = True
    r, ws = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", local_rank()) if on_gpu else learn.dls.device
    if on_gpu:
        torch.cuda.set_device(device)
    dls, old = learn.dls, (learn.dls.train, learn.dls.valid, learn.dls.device)
    if seed is None:
        s = torch.randint(0, 2**31 - 1, (1,), dtype=torch.int64)
        s = s.to(device) if on_gpu else s
        dist.broadcast(s, src=0)
        seed = int(s.item())
    swaps = _convert_sync_bn(learn.model) if sync_bn and on_gpu else []
    progress = [] if r == 0 else [c for c in learn.cbs if c.main_process_only]  # displays: rank 0 shows them
    old_logger = learn.logger
    try:
        if r:
            learn.logger = _no_row  # fastai's too: only rank 0 prints the epochs' rows
        dls.device = device
        learn.model.to(device)
        dls.train = shard_train(dls.train, r, ws, seed) if dls.train is not None else None
        dls.valid = shard_valid(dls.valid, r, ws) if dls.valid is not None else None
        cb = DistributedTrainer(device, dls.train, dls.valid, ddp_kwargs)
        for c in progress:
            learn.remove_cb(c)
        learn.add_cb(cb)
        try:
            yield learn
        except (Exception, KeyboardInterrupt) as e:
            _RankState.failing = True
            report_failure(e)
            raise
        finally:
            learn.remove_cb(cb)
    finally:
        failed, _RankState.failing = _RankState.failing, False
        if isinstance(learn.model, DDP):  # an error outside a fit's after_fit left it wrapped
            learn.model = learn.model.module
        for parent, name, child in swaps:
            setattr(parent, name, child)
        for c in progress:
            learn.add_cb(c)
        learn.logger = old_logger
        dls.train, dls.valid, dls.device = old
        if created:
            if not failed:  # every rank finishes its work on the group first: a peer destroying it under a
                barrier()   # rank still in gloo's threads aborts that rank ("terminate called ...")
            dist.destroy_process_group()


def _no_row(row: list) -> None:
    """`learn.logger` on ranks other than 0 inside `distrib_ctx`."""
