import torch

from minifastai import load_learner
from minifastai.persist import with_checksum
from minifastai.vision import (
    ImageDataLoaders,
    Normalize,
    Resize,
    aug_transforms,
    imagenet_stats,
    mobilenet_v2,
    vision_learner,
)

dls = ImageDataLoaders.from_folder(path, item_tfms=Resize(28, method="pad"),
                                   batch_tfms=[*aug_transforms(size=24), Normalize.from_stats(*imagenet_stats)], bs=8)
learn = vision_learner(dls, mobilenet_v2)
fname = learn.export("digits.pkl")  # learn.path (the data folder) / "digits.pkl"
state = torch.load(fname, weights_only=True)  # plain data: no code is unpickled
print(state["dls"]["item_tfms"])
print([t["name"] for t in state["dls"]["batch_tfms"]], state["dls"]["normalize"])
new = load_learner(fname)
print(new.dls.pipeline.item_tfms, new.predict(dls.valid.items[0])[0])

state.pop("checksum")  # a crafted file: a transform that is not allow-listed, and a checksum to match
state["dls"]["batch_tfms"].insert(0, {"name": "v2.Lambda", "args": {}})
torch.save(with_checksum(state), "tampered.pkl")
try:
    load_learner("tampered.pkl")
except ValueError as e:
    print("ValueError:", e)
