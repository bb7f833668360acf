"""Small synthetic data and a 3-group model with BatchNorm, shared by the core tests."""
from __future__ import annotations

import http.server
import importlib.util
import io
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from minifastai import Callback, DataLoaders, Learner, accuracy


def synth_dls(n_train: int = 256, n_valid: int = 64, bs: int = 32, n_feat: int = 8, shuffle: bool = True,
              seed: int = 0) -> DataLoaders:
    """A linearly separable 2-class problem."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_valid, n_feat, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    train = DataLoader(TensorDataset(x[:n_train], y[:n_train]), bs, shuffle=shuffle)
    valid = DataLoader(TensorDataset(x[n_train:], y[n_train:]), bs)
    return DataLoaders(train, valid, device="cpu")


def three_group_model(n_feat: int = 8) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_feat, 16), nn.BatchNorm1d(16), nn.ReLU(),
                         nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))


def three_group_splitter(m: nn.Sequential) -> list[list[nn.Parameter]]:
    return [[*m[0].parameters(), *m[1].parameters()], list(m[3].parameters()), list(m[5].parameters())]


def make_learner(**kwargs) -> Learner:
    kwargs.setdefault("metrics", accuracy)
    dls = kwargs.pop("dls", None) or synth_dls()
    return Learner(dls, three_group_model(), nn.CrossEntropyLoss(), splitter=three_group_splitter, **kwargs)


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class NoSync(Callback):
    """Makes every synchronising CUDA call an error during the training batches (the epoch's end, where the
    Recorder reads the losses once, is outside)."""

    order = 0  # between TrainEvalCallback and the Recorder (whose epoch-end read is a sync)

    def before_train(self) -> None:
        torch.cuda.set_sync_debug_mode("error")

    def after_train(self) -> None:
        torch.cuda.set_sync_debug_mode(0)

    def after_fit(self) -> None:
        torch.cuda.set_sync_debug_mode(0)


def start_script(script: Path, out: Path, mode: str) -> subprocess.Popen:
    """Run `python SCRIPT OUT MODE` in a new process that can import the repository's minifastai."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(script.parent.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(script), str(out), mode], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_for_file(proc: subprocess.Popen, path: Path, timeout: float = 120) -> None:
    """Wait until `proc` has written `path`; fail if it dies first or takes more than `timeout` seconds."""
    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, f"training script died early:\n{proc.stdout.read() if proc.stdout else ''}"
        assert time.monotonic() - t0 < timeout, "training script never reached the kill point"
        time.sleep(0.05)


def sigkill(proc: subprocess.Popen) -> None:
    """Kill `proc` with SIGKILL (no clean-up runs in it) and check that this is how it ended."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def count_host_reads(monkeypatch: Any) -> dict[str, int]:
    """Count every read of a tensor's value on the host (`item`, `float()`, `bool()`, `tolist`, ...: on a GPU,
    each is a sync) in `counts["n"]` of the returned dict, for the rest of the test."""
    counts = {"n": 0}
    for name in ("item", "__float__", "__bool__", "__int__", "tolist", "numpy", "__format__"):
        orig = getattr(torch.Tensor, name)

        def wrapped(self: torch.Tensor, *a: Any, _orig: Any = orig, **k: Any) -> Any:
            counts["n"] += 1
            return _orig(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, wrapped)
    return counts


ROOT = Path(__file__).resolve().parents[1]  # the repository
TESTS = ROOT / "tests"  # this folder: the scripts that tests run in subprocesses live here


def load_script(relpath: str) -> ModuleType:
    """A script of the repository (`examples/pretrain_digits.py`, `bench/...`, `docs/...`) imported as a module
    named by its file, once per process."""
    path = ROOT / relpath
    if path.stem in sys.modules:
        return sys.modules[path.stem]
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None, path
    mod = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = mod
    spec.loader.exec_module(mod)
    return mod


def fastai_random_split(items: Any, valid_pct: float, seed: int) -> tuple[list, list]:
    """fastai's RandomSplitter on these items (its own code; it reseeds torch's global RNG, so restore it)."""
    from fastai.data.transforms import RandomSplitter

    state = torch.get_rng_state()
    try:
        t, v = RandomSplitter(valid_pct, seed=seed)(items)
    finally:
        torch.set_rng_state(state)
    return list(t), list(v)


def make_tgz(files: dict[str, bytes]) -> bytes:
    """A .tgz archive (bytes) holding `files` (name -> content)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Server:
    """Serves `routes[path] = bytes`; `cut[path] = n` sends only n bytes of a longer Content-Length."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.hits: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                outer.hits.append(self.path)
                body = outer.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: outer.cut.get(self.path, len(body))])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
