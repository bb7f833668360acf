import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # tests run on 2 xdist workers on a 2-core machine


@pytest.fixture(autouse=True)
def _seed_and_tmp_cwd(tmp_path, monkeypatch):
    """Every test starts from the same seeds and writes into its own folder."""
    import random

    import numpy as np

    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    monkeypatch.chdir(tmp_path)
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
