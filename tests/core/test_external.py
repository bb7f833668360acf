"""`untar_data` / `download_url` against a local HTTP server on 127.0.0.1 serving archives the tests build:
checked downloads, atomic extraction, refused members, the offline path."""
from __future__ import annotations

import hashlib
import io
import socket
import zipfile
from pathlib import Path

import pytest
from helpers import Server, make_tgz

import minifastai.external as ext
from minifastai.external import URLs, download_url, untar_data


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def known(monkeypatch):
    """Register a test archive's size and MD5, as fastai records them for its datasets."""
    def add(name: str, url: str, data: bytes) -> None:
        monkeypatch.setitem(ext.ARCHIVES, name, (url, len(data), hashlib.md5(data).hexdigest()))
    return add


def test_untar_data_downloads_checks_extracts_once_and_returns_the_folder(server, known, tmp_path):
    data = make_tgz({"tiny/train/a.txt": b"A", "tiny/valid/b.txt": b"BB"})
    server.routes["/sample/tiny.tgz"] = data
    url = server.url("/sample/tiny.tgz")
    known("TINY", url, data)
    assert URLs.TINY == url
    path = untar_data(url, base=tmp_path)
    assert path == tmp_path / "data" / "tiny"
    assert (path / "train" / "a.txt").read_bytes() == b"A" and (path / "valid" / "b.txt").read_bytes() == b"BB"
    assert (tmp_path / "archive" / "tiny.tgz").read_bytes() == data
    assert untar_data(url, base=tmp_path) == path and server.hits == ["/sample/tiny.tgz"]  # the second call: no fetch
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["tiny"]  # no temporary folder left
    untar_data(url, base=tmp_path, force_download=True)
    assert len(server.hits) == 2


def test_an_archive_without_a_top_folder_becomes_the_folder(server, tmp_path):
    server.routes["/flat.tgz"] = make_tgz({"x.csv": b"1,2\n"})
    path = untar_data(server.url("/flat.tgz"), base=tmp_path)
    assert (path / "x.csv").read_text() == "1,2\n" and path.name == "flat"


def test_zip_archives_extract_too(server, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ml/u.data", "1\t2\n")
    server.routes["/ml.zip"] = buf.getvalue()
    assert (untar_data(server.url("/ml.zip"), base=tmp_path) / "u.data").read_text() == "1\t2\n"


def test_a_wrong_checksum_is_an_error_and_nothing_is_extracted(server, monkeypatch, tmp_path):
    data = make_tgz({"bad/a.txt": b"A"})
    server.routes["/bad.tgz"] = data
    url = server.url("/bad.tgz")
    monkeypatch.setitem(ext.ARCHIVES, "BAD", (url, len(data), "0" * 32))
    with pytest.raises(ValueError, match="does not have the MD5 fastai records"):
        untar_data(url, base=tmp_path)
    assert not (tmp_path / "data" / "bad").exists()
    monkeypatch.setitem(ext.ARCHIVES, "BAD", (url, len(data) + 1, "0" * 32))
    with pytest.raises(ValueError, match="the download was cut or is another file"):
        untar_data(url, base=tmp_path)


def test_a_cut_download_leaves_no_file(server, tmp_path):
    server.routes["/cut.tgz"] = make_tgz({"cut/a.txt": b"A" * 5000})
    server.cut["/cut.tgz"] = 100
    with pytest.raises(ConnectionError, match="could not download"):
        download_url(server.url("/cut.tgz"), tmp_path / "cut.tgz", timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_members_outside_the_folder_are_refused_and_nothing_is_left(server, tmp_path):
    server.routes["/evil.tgz"] = make_tgz({"../evil.txt": b"x"})
    with pytest.raises(ValueError, match="refused"):
        untar_data(server.url("/evil.tgz"), base=tmp_path)
    assert not (tmp_path / "evil.txt").exists() and list((tmp_path / "data").iterdir()) == []


def test_offline_fails_fast_naming_where_to_put_the_archive_and_then_uses_it(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/sample/offline.tgz"
    with pytest.raises(ConnectionError, match=r"put the archive at .*archive/offline\.tgz"):
        untar_data(url, base=tmp_path)  # a refused connection is an error at once (no retries)
    assert not (tmp_path / "data" / "offline").exists()
    (tmp_path / "archive").mkdir(exist_ok=True)
    (tmp_path / "archive" / "offline.tgz").write_bytes(make_tgz({"offline/a.txt": b"A"}))  # placed by hand
    assert (untar_data(url, base=tmp_path) / "a.txt").read_bytes() == b"A"


def test_a_killed_extraction_leaves_no_folder_and_the_next_call_cleans_up(server, monkeypatch, tmp_path):
    server.routes["/kill.tgz"] = make_tgz({"kill/a.txt": b"A"})
    url = server.url("/kill.tgz")

    def dies(archive, into):
        Path(into).mkdir(parents=True)
        (Path(into) / "half").write_text("x")
        raise KeyboardInterrupt

    monkeypatch.setattr(ext, "_safe_extract", dies)
    with pytest.raises(KeyboardInterrupt):
        untar_data(url, base=tmp_path)
    assert list((tmp_path / "data").iterdir()) == []  # the temporary folder went, no `kill` folder
    (tmp_path / "data" / ".kill.extracting-1").mkdir()  # what a SIGKILL would leave
    monkeypatch.undo()
    assert (untar_data(url, base=tmp_path) / "a.txt").read_bytes() == b"A"
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["kill"]


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not name an archive"):
        untar_data("http://127.0.0.1/folder/", base=tmp_path)
    with pytest.raises(ValueError, match="c_key is 'data' or 'model'"):
        untar_data(URLs.MNIST_SAMPLE, c_key="other", base=tmp_path)
    with pytest.raises(AttributeError, match="URLs has no dataset 'NOPE'"):
        _ = URLs.NOPE
    assert list(tmp_path.iterdir()) == []


def test_fastais_urls_and_home(monkeypatch, tmp_path):
    assert URLs.PETS == "https://s3.amazonaws.com/fast-ai-imageclas/oxford-iiit-pet.tgz"
    assert URLs.MNIST_SAMPLE == "https://s3.amazonaws.com/fast-ai-sample/mnist_sample.tgz"
    monkeypatch.setenv("FASTAI_HOME", str(tmp_path))
    assert URLs.path(URLs.PETS) == tmp_path / "archive" / "oxford-iiit-pet.tgz"
    assert URLs.path(URLs.PETS, c_key="data") == tmp_path / "data" / "oxford-iiit-pet.tgz"  # fastai's: the file name
    assert URLs.path(URLs.PETS, c_key="model") == tmp_path / "models" / "oxford-iiit-pet.tgz"


def test_every_dataset_url_and_checksum_is_fastais():
    fext = pytest.importorskip("fastai.data.external")
    import ast

    recorded = ast.literal_eval(Path(fext.__file__).with_name("download_checks.py").read_text())
    for name, (url, size, md5) in ext.ARCHIVES.items():
        assert getattr(fext.URLs, name) == url and recorded[url] == (size, md5), name
