"""Pretrained weights, shared by torchvision and timm models: `WeightsUnavailableError`, the offline hint its
messages end with (`_offline_hint`, for torchvision weights enums and timm names alike), torch hub's cache
(`hub_checkpoint_path`), torchvision downloads with a timeout (`torchvision_state_dict`) and state dicts read from
files (`load_weights`).
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision

__all__ = ["WeightsUnavailableError", "hub_checkpoint_path", "torchvision_state_dict", "load_weights",
           "DOWNLOAD_TIMEOUT"]

DOWNLOAD_TIMEOUT = 15.0  # seconds without an answer before a weights download gives up (torch's has none)


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be downloaded (no network) or read from the torch hub cache."""


def hub_checkpoint_path(weights: torchvision.models.WeightsEnum) -> Path:
    """Where torch hub keeps a torchvision weights file: `$TORCH_HOME/hub/checkpoints/<file name>`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def _offline_hint(weights: torchvision.models.WeightsEnum | str, cfg: dict | None = None) -> str:
    """What to do offline, for the error a failed weights download raises: for a torchvision weights enum, where
    torch hub's cache wants the file (and which other weights of that architecture the cache already has); for
    a timm architecture name (and its `pretrained_cfg`), how to fill the Hugging Face cache or pass a file."""
    if isinstance(weights, str):
        name, repo = weights, (cfg or {}).get("hf_hub_id") or (cfg or {}).get("url") or "timm's hub"
        return (f"Offline? On a machine with network, run timm.create_model({name!r}, pretrained=True) (it fills "
                f"the Hugging Face cache from {repo}; copy that cache here, and vision_learner finds it), or save the "
                f"weights and pass the file: vision_learner(dls, {name!r}, weights='/path/to/model.safetensors'). "
                "pretrained=False starts from random weights instead. Set HF_HUB_OFFLINE=1 to fail fast without "
                "network.")
    cache = hub_checkpoint_path(weights)
    fname = cache.name
    others = [w for w in type(weights) if w is not weights and hub_checkpoint_path(w).exists()]
    found = "".join(f" The cache has {hub_checkpoint_path(w).name} ({w!r}): pass weights={w.name!r} to use it."
                    for w in others)
    return (f"Offline? Download {fname} on a machine with network, then either copy it to {cache} "
            "(torch hub's cache, used automatically) or pass the file: "
            f"vision_learner(dls, arch, weights='/path/to/{fname}'). "
            f"weights= also takes a state dict; pretrained=False starts from random weights instead.{found}")


def torchvision_state_dict(weights: torchvision.models.WeightsEnum, timeout: float | None = None) -> dict:
    """A torchvision weights enum's state dict: from torch hub's cache, else downloaded (with a timeout)."""
    cache = hub_checkpoint_path(weights)
    if cache.exists():
        return load_weights(cache)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT if timeout is None else timeout)
    try:
        return torch.hub.load_state_dict_from_url(weights.url, map_location="cpu", progress=True, check_hash=True,
                                                  weights_only=True)
    except Exception as e:  # URLError, timeouts, HTTP errors, hash mismatch: all mean "could not get them"
        raise WeightsUnavailableError(f"could not download {weights!r} from {weights.url} ({type(e).__name__}: "
                                      f"{e}). " + _offline_hint(weights)) from e
    finally:
        socket.setdefaulttimeout(old)


def load_weights(path: str | os.PathLike) -> dict:
    """A state dict from a file (`torch.load(weights_only=True)`), with errors that name the file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"weights file {path} does not exist; pass the path of a state dict saved "
                                "with torch.save(model.state_dict(), path) (as torchvision's .pth files are)")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"could not read weights file {path}: it is damaged or not a PyTorch state dict "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    if isinstance(sd, dict) and isinstance(sd.get("model"), dict):  # minifastai checkpoint or export
        sd = sd["model"]
    elif isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"weights file {path} does not hold a state dict (a dict of parameter name -> "
                         "tensor)")
    return sd
