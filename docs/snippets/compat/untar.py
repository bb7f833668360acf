import io
import tarfile
from pathlib import Path

from minifastai.basics import URLs, untar_data

print(URLs.PETS)
url = "http://127.0.0.1:9/sample/tiny.tgz"   # nothing listens there: this machine is offline
try:
    untar_data(url, base="home")              # default base: $FASTAI_HOME or ~/.fastai, as fastai
except ConnectionError as e:
    print(e)

# put the archive where the message says (here: a tiny one made on the spot), and call again
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w:gz") as t:
    for name in ("tiny/train/3/a.png", "tiny/valid/7/b.png"):
        t.addfile(tarfile.TarInfo(name))
Path("home/archive").mkdir(parents=True, exist_ok=True)
Path("home/archive/tiny.tgz").write_bytes(buf.getvalue())
path = untar_data(url, base="home")
print(path, sorted(str(p.relative_to(path)) for p in path.rglob("*.png")))
