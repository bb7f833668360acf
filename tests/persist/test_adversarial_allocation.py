"""Issue 10, class 2: a small crafted export cannot make `load_learner` allocate gigabytes.

Each probe edits a real export the way an attacker would (declared sizes far beyond the stored tensors, the
checksum recomputed so the file looks intact) and checks that `load_learner` refuses it with an error naming the
file, having allocated almost nothing: a counting torch-function mode sees every tensor the build creates.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.overrides import TorchFunctionMode

from minifastai import load_learner
from minifastai.persist import DamagedFileError, safe_load, with_checksum

MB = 2**20


class CountAllocations(TorchFunctionMode):
    """Adds up the bytes of the storages (views counted once) of the non-meta tensors that torch functions
    return inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes, self.seen = 0, set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.device.type != "meta" and out.layout == torch.strided:
            storage = out.untyped_storage()
            if storage.data_ptr() not in self.seen:
                self.seen.add(storage.data_ptr())
                self.bytes += storage.nbytes()
        return out


def _stored(path: Path) -> int:
    """Bytes of the tensors stored in the file (the storages a load touches, seen here through views)."""
    return sum(v.numel() * v.element_size() for v in torch.load(path, weights_only=True)["model"].values())


def _rewrite(path: Path, edit) -> Path:
    st = torch.load(path, weights_only=True)
    st.pop("checksum", None)
    edit(st)
    torch.save(with_checksum(st), path)  # a crafted file carries a valid checksum
    return path


def _tabular_export(tmp: Path) -> Path:
    from minifastai.tabular import TabularDataLoaders, tabular_learner

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"c": rng.choice(["x", "y"], 40), "v": rng.normal(size=40), "t": rng.choice(["A", "B"], 40)})
    dls = TabularDataLoaders.from_df(df, cat_names=["c"], cont_names=["v"], y_names="t", valid_pct=0.25, seed=0, bs=8,
                                     device="cpu")
    return tabular_learner(dls, layers=(8, 4)).export(tmp / "tab.pkl")


def _vision_export(tmp: Path, arch: str = "resnet10") -> Path:
    from minifastai.vision import ImageDataLoaders, vision_learner

    rng = np.random.default_rng(0)
    for split in ("train", "valid"):
        for c in ("a", "b"):
            folder = tmp / "imgs" / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    dls = ImageDataLoaders.from_folder(tmp / "imgs", bs=2, device="cpu")
    return vision_learner(dls, arch, pretrained=False).export(tmp / "vis.pkl")


def test_tabular_layers_far_beyond_the_stored_weights(tmp_path):
    path = _tabular_export(tmp_path)
    assert path.stat().st_size < 50_000
    _rewrite(path, lambda st: st["builder"]["model"].update(layers=[16384, 16384]))  # 1 GiB of float32
    with CountAllocations() as count, pytest.raises(ValueError, match=rf"{path}.*does not fit the weights stored in "
                                                                     r"it.*size mismatch.*16384"):
        load_learner(path)
    assert count.bytes < _stored(path) + 1 * MB
    _rewrite(path, lambda st: st["builder"]["model"].update(layers=[8, 4]))  # the honest file loads
    shapes = {k: v.shape for k, v in torch.load(path, weights_only=True)["model"].items()}
    assert {k: v.shape for k, v in load_learner(path).model.state_dict().items()} == shapes


def test_vision_n_out_of_two_million(tmp_path):
    path = _vision_export(tmp_path)
    _rewrite(path, lambda st: st["builder"].update(n_out=2_000_000))  # a 3.9 GB head
    with CountAllocations() as count, pytest.raises(ValueError, match=rf"{path}: the head it declares \(n_out=2000000"
                                                                     r".* does not match its stored weights"):
        load_learner(path)
    assert count.bytes < _stored(path) + 1 * MB  # the stored 20 MB, nothing for the 3.9 GB head


def test_a_stride_zero_tensor_claiming_a_gigabyte_is_refused_before_it_is_touched(tmp_path):
    path = _tabular_export(tmp_path)
    st = torch.load(path, weights_only=True)
    st.pop("checksum")
    key = next(k for k, v in st["model"].items() if v.dim() == 2)
    st["model"][key] = torch.zeros(1).expand(16384, 16384)  # torch.save keeps the view: 4 bytes on disk
    torch.save(st, path)
    assert path.stat().st_size < 50_000
    with CountAllocations() as count, pytest.raises(DamagedFileError, match=rf"{path} is malformed: tensor "
                                                    rf"file\['model'\]\['{key}'\] declares shape \(16384, 16384\)"):
        safe_load(path)
    assert count.bytes < 1 * MB


def test_a_builder_that_cannot_run_on_meta_is_built_under_an_allocation_cap(tmp_path):
    from minifastai.vision import register_arch, resnet10

    greedy = [False]

    def meta_shy_resnet(*, weights=None, **kwargs):
        torch.ones(1).item()  # fails on the meta device, as some builders do
        if greedy[0]:
            torch.empty(2**31)  # an 8 GB buffer that no field check could foresee
        return resnet10(**kwargs)

    register_arch("meta_shy_resnet", meta_shy_resnet)
    path = _vision_export(tmp_path, "meta_shy_resnet")
    good = load_learner(path)  # an honest file still loads (no meta check possible: the cap applies)
    assert good.model[1][-1].weight.shape == (2, 512)
    greedy[0] = True
    with CountAllocations() as count, pytest.raises(ValueError, match=rf"{path} would allocate more than \d+ MiB "
                                                                     r"while building the model"):
        load_learner(path)
    assert count.bytes < 3 * _stored(path) + 256 * MB
