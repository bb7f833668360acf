"""Recorder numbers, metrics, progress output, validate / get_preds / predict, save / load."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import ROOT, TESTS, make_learner, same_state, state_copy, synth_dls
from torch import nn

from minifastai import Learner, ProgressCallback, accuracy, error_rate, mae, rmse
from minifastai.data import DataLoaders


def test_recorder_rows_and_names_match_fastai():
    learn = make_learner(metrics=[accuracy, error_rate])
    learn.fit_one_cycle(2, 1e-2)
    rec = learn.recorder
    assert rec.metric_names == ["epoch", "train_loss", "valid_loss", "accuracy", "error_rate", "time"]
    assert len(rec.values) == 2 and all(len(r) == 4 and all(isinstance(v, float) for v in r) for r in rec.values)
    assert rec.values[-1][2] + rec.values[-1][3] == pytest.approx(1.0)  # [train_loss, valid_loss, acc, err]
    assert rec.values[-1][0] == pytest.approx(float(rec.losses[-1]))  # train_loss is the last smoothed loss
    assert learn.final_record == rec.values[-1] and learn.recorder.final_record is rec.values[-1]
    assert rec.values[-1][-1] == pytest.approx(1 - rec.values[-1][-2])  # fastai's idiom: a number, not a time
    assert rec.log[0] == 1 and rec.log[1:-1] == rec.values[-1] and isinstance(rec.log[-1], str)
    assert rec.losses.shape == (16,) and rec.raw_losses.shape == (16,) and rec.hps["wd"].shape == (16, 3)
    # fastai's `losses` is a list of 0-d tensors: ours is one CPU tensor, whose items are 0-d tensors
    assert isinstance(rec.losses, torch.Tensor) and rec.losses.dtype == torch.float32
    assert rec.losses.device.type == "cpu"
    assert all(isinstance(v, torch.Tensor) and v.ndim == 0 for v in rec.losses)
    assert rec.iters == [8, 16]


def test_smoothed_loss_is_debiased_ema():
    learn = make_learner()
    learn.fit(2, 1e-3)
    raw, sm = learn.recorder.raw_losses, learn.recorder.losses
    s, exp = 0.0, []
    for i, v in enumerate(raw.tolist(), 1):
        s = 0.98 * s + 0.02 * v
        exp.append(s / (1 - 0.98 ** i))
    np.testing.assert_allclose(sm, exp, rtol=1e-5)


def test_valid_loss_and_metrics_cover_whole_set_weighted_by_batch():
    dls = synth_dls(n_valid=70, bs=32)  # valid batches of 32, 32, 6
    learn = make_learner(dls=dls, metrics=[accuracy])
    learn.fit(1, 1e-3)
    x, y = dls.valid.dataset.tensors
    learn.model.eval()
    with torch.no_grad():
        out = learn.model(x)
    assert learn.recorder.values[-1][1] == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-5)
    assert learn.recorder.values[-1][2] == pytest.approx((out.argmax(1) == y).float().mean().item())
    expected = [F.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item()]
    assert learn.validate() == pytest.approx(expected, rel=1e-5)


def test_regression_metrics():
    x = torch.randn(100, 3)
    y = x.sum(1, keepdim=True)
    dls = DataLoaders.from_dsets(torch.utils.data.TensorDataset(x[:60], y[:60]),
                                 torch.utils.data.TensorDataset(x[60:], y[60:]), bs=16, device="cpu")
    learn = Learner(dls, nn.Linear(3, 1), nn.MSELoss(), metrics=[rmse, mae])
    learn.fit(1, 1e-2)
    with torch.no_grad():
        p = learn.model(x[60:])
    vl, r, a = learn.validate()
    assert r == pytest.approx(((p - y[60:]) ** 2).mean().sqrt().item(), rel=1e-5)
    assert a == pytest.approx((p - y[60:]).abs().mean().item(), rel=1e-5)
    assert vl == pytest.approx(r**2, rel=1e-4)
    assert rmse(p, y[60:]).item() == pytest.approx(r, rel=1e-5)
    assert learn.metrics[0] is not rmse  # learners get their own copy


def test_plain_progress_prints_one_line_per_epoch(capsys):
    learn = make_learner()
    learn.fit_one_cycle(3, 1e-3)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "accuracy", "time", "throughput", "data_wait"]
    assert [ln.split()[0] for ln in lines[1:]] == ["0", "1", "2"]
    assert float(lines[-1].split()[2]) == pytest.approx(learn.recorder.values[-1][1], abs=1e-6)


def test_terminal_progress_uses_fastprogress_bar(capsys):
    learn = make_learner()
    learn.remove_cb(learn.progress)
    learn.add_cb(ProgressCallback(mode="terminal"))
    learn.fit(2, 1e-3)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "|" in out and "\r" in out
    assert "epoch     train_loss" in out
    with pytest.raises(ValueError, match="mode must be"):
        ProgressCallback(mode="html")


def test_get_preds_and_predict():
    learn = make_learner()
    learn.fit(1, 1e-2)
    preds, targs = learn.get_preds()
    x, y = learn.dls.valid.dataset.tensors
    assert preds.shape == (64, 2) and torch.equal(targs, y)
    assert torch.allclose(preds.sum(1), torch.ones(64))  # softmax applied for CrossEntropyLoss
    with torch.no_grad():
        learn.model.eval()
        assert torch.allclose(preds, learn.model(x).softmax(-1), atol=1e-6)
    dec, idx, probs = learn.predict(x[3])
    assert torch.allclose(probs, preds[3], atol=1e-6)
    assert torch.equal(dec, probs)  # no vocab: decoded is the output
    learn.dls.vocab = ["neg", "pos"]
    dec, idx, probs = learn.predict(x[3])
    assert dec == ["neg", "pos"][int(preds[3].argmax())] and idx == int(preds[3].argmax())
    assert isinstance(idx, torch.Tensor) and idx.ndim == 0 and idx.item() == int(preds[3].argmax())  # fastai's
    inp, p2, _ = learn.get_preds(with_input=True)
    assert torch.equal(inp, x)


def test_save_load_roundtrip_with_optimizer(tmp_path):
    learn = make_learner(path=tmp_path)
    learn.fit(1, 1e-2)
    p = learn.save("stage1")
    assert p == tmp_path / "models" / "stage1.pth" and p.exists()
    assert not list((tmp_path / "models").glob(".*tmp*"))
    w = state_copy(learn.model)
    st = learn.opt.state_dict()
    other = make_learner(path=tmp_path)
    other.load("stage1")
    assert same_state(w, state_copy(other.model))
    assert torch.equal(other.opt.state_dict()["state"][0]["exp_avg"], st["state"][0]["exp_avg"])


def test_load_damaged_or_mismatched_names_the_file(tmp_path):
    learn = make_learner(path=tmp_path)
    p = learn.save("good")
    bad = p.with_name("bad.pth")
    bad.write_bytes(p.read_bytes()[:100])
    with pytest.raises(RuntimeError, match="bad.pth"):
        learn.load("bad")
    other = Learner(synth_dls(), nn.Sequential(nn.Linear(8, 2)), nn.CrossEntropyLoss(), path=tmp_path)
    with pytest.raises(ValueError, match=r"good.pth does not fit this model"):
        other.load("good")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        learn.load("missing")


def test_summary_shows_groups_state_and_hypers():
    learn = make_learner()
    learn.freeze()
    s = learn.summary()
    assert "3 layer group(s)" in s
    lines = s.splitlines()
    assert "frozen (norm layers train)" in lines[2] and " frozen " in lines[3] + " " and "trains" in lines[4]
    assert "group 2 (head)" in lines[4] and "0.001" in lines[4]
    assert "slice(1e-5, 1e-3) would give peaks [1e-05, 1e-04, 1e-03]" in s
    assert learn.opt is None  # summary does not create the optimizer
    learn.fit_one_cycle(1, slice(1e-4, 1e-2))
    assert "current optimizer values" in learn.summary()


def test_from_dsets_takes_vocab_from_dataset_classes():
    ds = torch.utils.data.TensorDataset(torch.randn(10, 8), torch.randint(0, 2, (10,)))
    ds.classes = ["cat", "dog"]
    dls = DataLoaders.from_dsets(ds, ds, bs=4, device="cpu")
    assert dls.vocab == ["cat", "dog"] and len(dls.train) == 2 and dls.valid.batch_size == 4  # as fastai's
    assert DataLoaders.from_dsets(ds, ds, vocab=["a", "b"]).vocab == ["a", "b"]



def test_notebook_progress_shows_the_table_and_no_object_reprs(tmp_path):
    """Runs a fit in a real Jupyter kernel: the saved output is fastprogress's HTML table, one per fit."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    root = ROOT
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"import sys; sys.path[:0] = [{str(root)!r}, {str(TESTS)!r}]\n"
                                          "from helpers import make_learner\n"
                                          "learn = make_learner()\nlearn.fit_one_cycle(2, 1e-3)\nlearn.fit(1)")]
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outs = nb.cells[0].outputs
    html = [o["data"]["text/html"] for o in outs if "text/html" in o.get("data", {})]
    assert not any("object at 0x" in str(o) for o in outs)
    tables = [h for h in html if "<th>train_loss</th>" in h]
    def rows(h: str) -> int:  # body rows, whatever fastprogress's HTML spacing
        return h.split("<tbody>", 1)[-1].count("<tr")
    assert len(tables) == 2 and rows(tables[0]) == 2 and rows(tables[1]) == 1
