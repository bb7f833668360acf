import torch

from minifastai.basics import CategoryBlock, DataBlock, GrandparentSplitter, parent_label
from minifastai.vision import ImageBlock, ImageDataLoaders, Resize, get_image_files

digits = DataBlock(blocks=(ImageBlock, CategoryBlock),     # input, then target
                   get_items=get_image_files,              # source -> items (file paths)
                   splitter=GrandparentSplitter(),         # train/<class>/..., valid/<class>/...
                   get_y=parent_label,                     # item -> label: its folder's name
                   item_tfms=Resize(32))
dls = digits.dataloaders(path, bs=8)
print(type(dls).__name__, dls.vocab, "c =", dls.c, dls.loss_func)
print("train/valid items:", len(dls.train_ds), len(dls.valid_ds), "batch:", tuple(dls.one_batch()[0].shape))

# the loaders ImageDataLoaders builds from the same folder: the same classes, files and pixels
ref = ImageDataLoaders.from_folder(path, item_tfms=Resize(32), bs=8)
same = all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(dls.valid, ref.valid))
print("same vocab, items and validation pixels as from_folder:",
      dls.vocab == ref.vocab and dls.train_ds.items == ref.train_ds.items and same)
dls.show_batch(max_n=6, nrows=1, figsize=(9, 1.8))
