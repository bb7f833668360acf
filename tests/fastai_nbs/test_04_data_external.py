"""fastai's nbs/04_data.external.ipynb test cells, as fastai wrote them.

The notebook's import cell (`fastai.torch_basics` and its own module, `fastai.data.external`) becomes fastai's
`fastai.basics`, which holds both (minifastai has no `data.external` module: its `URLs` and `untar_data` live in
`minifastai.external`, brought by `minifastai.basics`). The notebook's second test cell continues the first one's
`url`; here it starts with the line of the first cell that makes it. Its cell `untar_data(URLs.MNIST_SAMPLE)`
downloads; here the same archive layout (scikit-learn's 8x8 digits 3 and 7 as 28x28 PNGs in `train/` and `valid/`
folders, in `mnist_sample/`) is served by a local HTTP server on 127.0.0.1 and the cell reads
`_local(URLs.MNIST_SAMPLE)`, the same archive name at that server. Every cell runs with `$FASTAI_HOME` in a
temporary folder (fastai's `fastai_cfg` cache cleared around it), so nothing is written to `~/.fastai`.
The cells that only display a value (`cfg.data,cfg.path('data')`, `fastai_path('archive')`) check nothing and are
left out.
"""
from __future__ import annotations

import io
import tarfile

import pytest
from fastai_nbs.nbcells import Cell, cases, run_cell
from helpers import Server

IMPORTS = """\
from fastai.basics import *
"""

SETUP = '''
def _local(url):
    "The archive `url` names, at the test's local HTTP server instead of fastai's S3"
    return f"{_SERVER}/{url.rsplit('/', 1)[-1]}"
'''

CELLS = [
    Cell("urls_path_archive", """
url = URLs.PETS
local_path = URLs.path(url)
test_eq(local_path.parent, fastai_path('archive'))
local_path
"""),
    Cell("urls_path_model", """
url = URLs.PETS
local_path = URLs.path(url, c_key='model')
test_eq(local_path.parent, fastai_path('model'))
local_path
"""),
    Cell("untar_data", """
untar_data(_local(URLs.MNIST_SAMPLE))
"""),
]


def _mnist_sample_tgz() -> bytes:
    "mnist_sample.tgz offline: digits 3 and 7 of scikit-learn's digits, 28x28 grey PNGs in train/ and valid/"
    from PIL import Image
    from sklearn.datasets import load_digits

    d, buf = load_digits(), io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for label in (3, 7):
            imgs = d.images[d.target == label]
            for split, part in (("train", imgs[:12]), ("valid", imgs[12:18])):
                for i, a in enumerate(part):
                    png = io.BytesIO()
                    Image.fromarray((a * 255 / 16).astype("uint8")).resize((28, 28)).save(png, format="PNG")
                    info = tarfile.TarInfo(f"mnist_sample/{split}/{label}/{i}.png")
                    info.size = len(png.getvalue())
                    t.addfile(info, io.BytesIO(png.getvalue()))
    return buf.getvalue()


@pytest.fixture(scope="module")
def server():
    "A local HTTP server on 127.0.0.1 serving `/mnist_sample.tgz`; its base URL"
    pytest.importorskip("sklearn")
    routes = {"/mnist_sample.tgz": _mnist_sample_tgz()}

    srv = Server()
    srv.routes.update(routes)
    yield srv.url("")
    srv.close()


@pytest.fixture
def fastai_home(tmp_path, monkeypatch):
    "`$FASTAI_HOME` in a temporary folder, with fastai's cached config (`fastai_cfg`, an lru_cache) cleared"
    def clear():
        try:
            from fastai.data.external import fastai_cfg
        except ImportError:
            return
        fastai_cfg.cache_clear()

    monkeypatch.setenv("FASTAI_HOME", str(tmp_path / "fastai_home"))
    clear()
    yield tmp_path / "fastai_home"
    clear()


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell, server, fastai_home):
    run_cell(lib, IMPORTS, cell, setup=f"_SERVER = {server!r}\n" + SETUP)
