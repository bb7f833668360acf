import numpy as np
import pandas as pd
from PIL import Image
from torch import nn

from minifastai import Learner
from minifastai.basics import ColReader, DataBlock, RandomSplitter, RegressionBlock
from minifastai.vision import ImageBlock, Resize, get_image_files, mobilenet_v2, vision_learner

# a regression target the pixels show: each digit written again at a random brightness b in [0.2, 1]
rng, rows = np.random.default_rng(0), []
for i, f in enumerate(get_image_files(path)):
    b = float(rng.uniform(0.2, 1.0))
    Image.fromarray((np.asarray(Image.open(f)) * b).astype("uint8")).save(f"{i}.png")
    rows.append((f"{i}.png", b))
df = pd.DataFrame(rows, columns=["fname", "brightness"])

reg = DataBlock(blocks=(ImageBlock, RegressionBlock), get_x=ColReader("fname"), get_y=ColReader("brightness"),
                splitter=RandomSplitter(0.2, seed=0), item_tfms=Resize(32))
dls = reg.dataloaders(df, bs=8)
print("c =", dls.c, dls.loss_func, "targets:", [round(v, 3) for v in dls.one_batch()[1][:4].tolist()])
model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 1))
learn = Learner(dls, model, loss_func=dls.loss_func)         # MSELossFlat, from the RegressionBlock
learn.fit_one_cycle(8, 1e-2)
preds, targs = learn.get_preds()
print(f"mean absolute error: {(preds[:, 0] - targs).abs().mean():.3f} (always predicting the training mean: "
      f"{(targs - dls.train_ds.labels.mean()).abs().mean():.3f})")

cnn = vision_learner(dls, mobilenet_v2, y_range=(0, 1.05))    # a pretrained CNN: n_out is dls.c,
print(cnn.model[1][-2:])                                      # and y_range ends the head in a SigmoidRange
