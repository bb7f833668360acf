import pandas as pd

from minifastai import accuracy_multi
from minifastai.basics import ColReader, ColSplitter, DataBlock, MultiCategoryBlock
from minifastai.vision import ImageBlock, Resize, get_image_files, mobilenet_v2, vision_learner

# fastai's PASCAL layout: a DataFrame with a file column, space-separated labels and an is_valid column
files = get_image_files(path)
names = {"five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
df = pd.DataFrame({"fname": [str(f.relative_to(path)) for f in files],
                   "labels": [f"{f.parent.name} {'odd' if names[f.parent.name] % 2 else 'even'}" for f in files],
                   "is_valid": [f.parent.parent.name == "valid" for f in files]})
print(df.head(3).to_string())
multi = DataBlock(blocks=(ImageBlock, MultiCategoryBlock), get_x=ColReader("fname", pref=path),
                  get_y=ColReader("labels", label_delim=" "), splitter=ColSplitter("is_valid"), item_tfms=Resize(32))
dls = multi.dataloaders(df, bs=8)
print(dls.vocab, "c =", dls.c, dls.loss_func, "target row:", dls.one_batch()[1][0].tolist())
learn = vision_learner(dls, mobilenet_v2, metrics=accuracy_multi)
learn.fine_tune(2, base_lr=1e-2)
labels, on, probs = learn.predict(path / df.fname[len(df) - 1])
print("predicted:", labels, "for", df.labels[len(df) - 1])
