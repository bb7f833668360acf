"""Issue 10, class 5: damaged files never load silently.

Single-bit flips spread over a whole checkpoint and a whole export: each damaged copy either fails with an error
naming the file (and leaves the learner as it was) or, where the flip hit bytes nobody reads, loads exactly what
was saved. Truncations, a removed or renamed checksum, and files of older versions (no checksum) too.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from helpers import make_learner, same_state, state_copy, three_group_model

from minifastai import load_learner
from minifastai.persist import DamagedFileError, checksum, safe_load, with_checksum

N_FLIPS = 160


def _flips(path: Path, n: int = N_FLIPS) -> list[tuple[int, int]]:
    """(byte, bit) positions spread evenly over the file, bits varying."""
    size = path.stat().st_size
    return [(i * size // n, i % 8) for i in range(n)]


def _flipped(src: Path, dst: Path, pos: int, bit: int) -> Path:
    data = bytearray(src.read_bytes())
    data[pos] ^= 1 << bit
    dst.write_bytes(bytes(data))
    return dst


def _everything(learn) -> dict:
    return {"model": state_copy(learn.model), "opt": learn.opt.state_dict() if learn.opt is not None else None,
            "rng": torch.get_rng_state()}


def _same_opt(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None:
        return a is b
    return a["param_groups"] == b["param_groups"] and a["state"].keys() == b["state"].keys() and all(
        torch.equal(v, b["state"][i][k]) if torch.is_tensor(v) else v == b["state"][i][k]
        for i, s in a["state"].items() for k, v in s.items())


@pytest.mark.slow
def test_bit_flips_in_a_checkpoint_are_errors_naming_it_or_change_nothing():
    learn = make_learner()
    learn.fit(1, 1e-2)
    good = learn.save("good")
    saved = torch.load(good, weights_only=True)
    target = make_learner()
    target.fit(1, 1e-3)
    before = _everything(target)
    outcomes = {"error": 0, "identical": 0}
    for pos, bit in _flips(good):
        bad = _flipped(good, Path("models/bad.pth"), pos, bit)
        try:
            target.load("bad")
        except (RuntimeError, ValueError) as e:
            assert str(bad) in str(e), f"flip at byte {pos}: the error does not name the file: {e}"
            after = _everything(target)
            assert same_state(before["model"], after["model"]) and _same_opt(before["opt"], after["opt"])
            assert torch.equal(before["rng"], after["rng"]), f"flip at byte {pos}: a failed load changed the RNG"
            outcomes["error"] += 1
            continue
        state = torch.load(bad, weights_only=True)
        assert checksum({k: v for k, v in state.items() if k != "checksum"}) == saved["checksum"]["crc32"], (
            f"flip at byte {pos} bit {bit} loaded different contents without an error")
        assert same_state(state_copy(target.model), saved["model"])
        outcomes["identical"] += 1
        target.model.load_state_dict(before["model"])
        target.opt.load_state_dict(before["opt"])
        torch.set_rng_state(before["rng"])
    assert outcomes["error"] >= N_FLIPS * 3 // 4, outcomes


@pytest.mark.slow
def test_bit_flips_in_an_export_are_errors_naming_it():
    learn = make_learner()
    learn.fit(1, 1e-2)
    good = learn.export("good.pkl")
    n_errors = 0
    for pos, bit in _flips(good, 120):
        bad = _flipped(good, Path("bad.pkl"), pos, bit)
        try:
            loaded = load_learner(bad, model=three_group_model())
        except (RuntimeError, ValueError) as e:
            assert str(bad) in str(e), f"flip at byte {pos}: {e}"
            n_errors += 1
            continue
        # the flip hit bytes nobody reads (zip alignment padding, unused header fields): all is as exported
        assert same_state(state_copy(loaded.model), state_copy(learn.model)), f"flip at byte {pos} loaded other weights"
    assert n_errors >= 60


@pytest.mark.parametrize("keep", [0, 10, 100, 1000, -200, -22, -1])
def test_truncated_files_are_errors_naming_them(keep):
    learn = make_learner()
    good = learn.save("good")
    data = good.read_bytes()
    Path("models/cut.pth").write_bytes(data[:keep])
    before = state_copy(learn.model)
    with pytest.raises(DamagedFileError, match=re.escape("models/cut.pth")):
        learn.load("cut")
    assert same_state(before, state_copy(learn.model))


def test_a_removed_or_renamed_checksum_is_not_a_way_around_it():
    learn = make_learner()
    good = learn.save("good")
    st = torch.load(good, weights_only=True)
    st["model"]["0.weight"] = st["model"]["0.weight"] + 1
    torch.save(st, "models/edited.pth")  # edited, stale checksum
    with pytest.raises(DamagedFileError, match=r"models/edited\.pth is damaged: its contents do not match the "
                                               r"checksum stored in it"):
        learn.load("edited")
    st["chksum"] = st.pop("checksum")
    torch.save(st, "models/renamed.pth")
    with pytest.raises(DamagedFileError, match=r"models/renamed\.pth is damaged: it has no checksum and unknown "
                                               r"entries \['chksum'\]"):
        learn.load("renamed")
    st.pop("chksum")
    st["checksum"] = "not a checksum"
    torch.save(st, "models/garbled.pth")
    with pytest.raises(DamagedFileError, match=r"models/garbled\.pth is damaged: its checksum entry is unreadable"):
        learn.load("garbled")


def test_files_of_older_versions_without_a_checksum_warn_and_load():
    learn = make_learner()
    learn.fit(1, 1e-2)
    st = torch.load(learn.save("new"), weights_only=True)
    st.pop("checksum")
    torch.save(st, "models/old.pth")
    other = make_learner()
    with pytest.warns(UserWarning, match=r"models/old\.pth has no checksum \(written by minifastai 0\.1 or by hand\), "
                                         r"so damage to it cannot be detected; it is loaded as it is"):
        other.load("old")
    assert same_state(state_copy(other.model), state_copy(learn.model))


def test_what_is_written_carries_a_checksum_of_all_its_parts():
    learn = make_learner()
    learn.fit(1, 1e-2)
    for path in (learn.save("ck"), learn.export("ex.pkl")):
        st = torch.load(path, weights_only=True)
        assert list(st)[-1] == "checksum" and re.fullmatch(r"[0-9a-f]{8}", st["checksum"]["crc32"])
        assert st["checksum"]["crc32"] == checksum({k: v for k, v in st.items() if k != "checksum"})
        assert with_checksum(st)["checksum"] == st["checksum"]
        assert "checksum" not in safe_load(path)  # checked, then dropped
    # every part counts: a tensor's bytes, dtype and shape, a plain value, a key, the order of a list
    base = {"model": {"w": torch.arange(4.0)}, "position": {"epoch": 1}, "names": ["a", "b"]}
    variants = [{"model": {"w": torch.arange(4.0).half()}}, {"model": {"w": torch.arange(4.0).reshape(2, 2)}},
                {"model": {"w": torch.tensor([0.0, 1, 2, 3.5])}}, {"position": {"epoch": 2}},
                {"position": {"epoch": 1.0}}, {"position": {"epoch ": 1}}, {"names": ["b", "a"]}, {"names": ("a", "b")}]
    for algorithm in ("crc32", "sha256"):
        digests = {checksum({**base, **v}, algorithm) for v in variants} | {checksum(base, algorithm)}
        assert len(digests) == len(variants) + 1
    st = with_checksum(torch.load("models/ck.pth", weights_only=True), "sha256")  # files may name either
    torch.save(st, "models/sha.pth")
    assert same_state(learn.load("sha").model.state_dict(), st["model"])
    st["model"]["0.weight"][0, 0] += 1
    torch.save(st, "models/sha.pth")
    with pytest.raises(DamagedFileError, match=r"models/sha\.pth is damaged: .* \(sha256 [0-9a-f]{16} vs"):
        learn.load("sha")
