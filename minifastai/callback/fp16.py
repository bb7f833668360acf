"""fastai's module name for mixed precision (`from fastai.callback.fp16 import *`): the names of
`minifastai.callback.mixed_precision`."""
from .mixed_precision import MixedPrecision, to_bf16, to_fp16, to_fp32

__all__ = ["MixedPrecision", "to_fp16", "to_bf16", "to_fp32"]
