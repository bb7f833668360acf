"""fastai's module name for mixed precision (`from fastai.callback.fp16 import *`): the names of
`minifastai.callback.mixed_precision` (`AMPMode`, `MixedPrecision`, `to_fp16`, `to_bf16`, `to_fp32`) and fastai's
overflow checks `test_overflow` / `grad_overflow`."""
from .mixed_precision import AMPMode, MixedPrecision, grad_overflow, test_overflow, to_bf16, to_fp16, to_fp32

__all__ = ["AMPMode", "MixedPrecision", "to_fp16", "to_bf16", "to_fp32", "test_overflow", "grad_overflow"]
