import torch

from minifastai import load_learner
from minifastai.persist import with_checksum

learn = make_learner()
learn.fit(1, 1e-2)
path = learn.save("epoch_1")

# 1. a damaged copy: one weight changed on disk, so the checksum no longer matches
state = torch.load(path, weights_only=True)
state["model"]["0.weight"][0, 0] += 1e-3
torch.save(state, "models/damaged.pth")
try:
    learn.load("damaged")
except RuntimeError as e:
    print(f"{type(e).__name__}: {str(e).split(' (')[0]}")

# 2. a checkpoint of another head: everything is checked before anything is loaded
before = {k: v.clone() for k, v in learn.model.state_dict().items()}
other = make_learner()
other.model[5] = nn.Linear(64, 3)
other.save("three_classes")
try:
    learn.load("three_classes")
except ValueError as e:
    print(f"ValueError: {e}")
print("weights unchanged:", all(torch.equal(v, before[k]) for k, v in learn.model.state_dict().items()))

# 3. an export that names code of its own choosing (with a valid checksum, as a crafted file would have)
state = torch.load(learn.export("model.pkl"), weights_only=True)
state["builder"] = {"module": "os"}
torch.save(with_checksum(state), "crafted.pkl")
try:
    load_learner("crafted.pkl")
except ValueError as e:
    print(f"ValueError: {e}")
