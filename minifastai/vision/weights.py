"""What every pretrained-weights error says when the weights cannot be fetched: one hint, for torch hub's cache
and for timm's Hugging Face cache alike."""
from __future__ import annotations


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be downloaded (no network) or read from the torch hub cache."""


def offline_hint(fetch: str, arch: str, fname: str, tail: str = "") -> str:
    """The hint after a failed download: how to `fetch` the file elsewhere, or pass it as `weights=`; `tail` adds
    what is specific (cached alternatives, a switch to fail fast)."""
    return (f"Offline? {fetch}, or pass the file: vision_learner(dls, {arch}, weights='/path/to/{fname}'). "
            f"weights= also takes a state dict; pretrained=False starts from random weights instead.{tail}")
