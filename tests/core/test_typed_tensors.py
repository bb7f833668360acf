"""fastai's typed tensors (`TensorBase`, `TensorImage`, `TensorMask`, `cast`) as plain torch subclasses."""
from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch

from minifastai.metrics import foreground_acc
from minifastai.torch_core import TensorBase, TensorImage, TensorImageBW, TensorMask, cast


def test_cast_shares_storage_and_the_type_survives_operations():
    x = torch.randn(2, 3, 4, 4)
    img = cast(x, TensorImage)
    assert type(img) is TensorImage and img.data_ptr() == x.data_ptr()
    assert type(img * 2 + 1) is TensorImage and type(img.argmax(1)) is TensorImage
    torch.testing.assert_close((img * 2).as_subclass(torch.Tensor), x * 2)
    assert type(TensorImageBW(np.zeros((1, 2, 2)))) is TensorImageBW and isinstance(TensorImageBW([0.0]), TensorImage)


def test_two_types_mix_and_give_fastais_metric_values():
    torch.manual_seed(0)
    x = cast(torch.randn(4, 5, 3, 3), TensorImage)
    y = cast(x, TensorMask).argmax(dim=1)[:, None]
    assert float(foreground_acc(x, y)) == 1.0
    y[0] = 0  # background pixels are ignored
    assert float(foreground_acc(x, y)) == 1.0
    targ = cast(torch.randint(0, 5, (4, 1, 3, 3)), TensorMask)
    pred, t = x.as_subclass(torch.Tensor).argmax(1).numpy(), targ.as_subclass(torch.Tensor)[:, 0].numpy()
    fg = t != 0
    assert float(foreground_acc(x, targ)) == pytest.approx(float((pred[fg] == t[fg]).mean()))

def test_typed_tensors_pickle_and_save_with_their_type():
    m = TensorMask([[1, 0], [0, 1]])
    assert type(pickle.loads(pickle.dumps(m))) is TensorMask
    buf = io.BytesIO()
    torch.save(m, buf)
    buf.seek(0)
    back = torch.load(buf, weights_only=False)
    assert type(back) is TensorMask and torch.equal(back.as_subclass(torch.Tensor), m.as_subclass(torch.Tensor))


def test_cast_to_a_non_tensor_type_is_a_clear_error_and_leaves_x_alone():
    x = torch.ones(3)
    with pytest.raises(TypeError):
        cast(x, int)
    assert type(x) is torch.Tensor and isinstance(TensorBase([1]), torch.Tensor)
