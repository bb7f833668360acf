# ruff: noqa: E402, F401, F403, F405, E501, E702, E703, I001, W291
# (fastai's code as the notebook has it: a star import, imports in later cells, long lines, semicolons, trailing spaces)
"""fastbook chapter 7, "Training a State-of-the-Art Model" (07_sizing_and_tta.ipynb): every code cell, in order,
as `# %%` cells (the chapter's mixup and label smoothing code sits in its prose, not in code cells).

fastai's code is unchanged except for the points below.

1. Imports: `from fastai.vision.all import *` -> `from minifastai.vision.all import *`. The setup cell
   (`! [ -e /content ] && pip install -Uqq fastbook`, `import fastbook`, `fastbook.setup_book()`) and
   `from fastbook import *` are dropped, each with a comment. In their place the script imports the offline data
   writer and fastbook's `get_image_files_sorted` helper (examples/fastbook_data.py; the mixup picture's cell
   calls it).
2. Data source: nothing is downloaded. `path = untar_data(URLs.IMAGENETTE)` ->
   `path = write_imagenette('imagenette2')`, a small Imagenette in the working folder: `train/<wnid>/` and
   `val/<wnid>/` for Imagenette's 10 classes, 6 + 2 synthetic 64x64 JPEGs a class whose colours and shape depend on
   the class (80 images; the chapter's DataBlocks split them at random, 64 for training).
3. Models: the chapter trains `xresnet50` from scratch, and so does the script (no pretrained weights).
4. Speed (each change is in a comment on its line): `Resize(460)` -> `Resize(64)` (the images are 64x64); the
   sizes 224 -> 32 and 128 -> 24 (progressive resizing still goes from small to large); the batch sizes 64 -> 16
   and 128 -> 32 (64 training images hold no full batch of 64, and the training DataLoader drops a partial one);
   the epochs are the chapter's.
5. Cells that only display: a bare last expression is printed (`print(...)`); figures are drawn (matplotlib's
   Agg backend: nothing is shown).
"""
# %%
#hide
# Dropped: `! [ -e /content ] && pip install -Uqq fastbook`, `import fastbook`, `fastbook.setup_book()` (shell
# command and fastbook's setup).

# %%
#hide
# Dropped: `from fastbook import *` (fastbook's helpers; the one the cells use, `get_image_files_sorted`, is
# imported below).
from fastbook_data import write_imagenette, get_image_files_sorted  # data source and fastbook's helper (examples/fastbook_data.py)

# %%
from minifastai.vision.all import *
path = write_imagenette('imagenette2')  # data source: was `path = untar_data(URLs.IMAGENETTE)` (no download)

# %%
dblock = DataBlock(blocks=(ImageBlock(), CategoryBlock()),
                   get_items=get_image_files,
                   get_y=parent_label,
                   item_tfms=Resize(64),  # speed: was Resize(460) (the synthetic images are 64x64)
                   batch_tfms=aug_transforms(size=32, min_scale=0.75))  # speed: was size=224
dls = dblock.dataloaders(path, bs=16)  # speed: was bs=64

# %%
model = xresnet50(n_out=dls.c)
learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), metrics=accuracy)
learn.fit_one_cycle(5, 3e-3)

# %%
x,y = dls.one_batch()
print((x.mean(dim=[0,2,3]),x.std(dim=[0,2,3])))

# %%
def get_dls(bs, size):
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock),
                   get_items=get_image_files,
                   get_y=parent_label,
                   item_tfms=Resize(64),  # speed: was Resize(460) (the synthetic images are 64x64)
                   batch_tfms=[*aug_transforms(size=size, min_scale=0.75),
                               Normalize.from_stats(*imagenet_stats)])
    return dblock.dataloaders(path, bs=bs)

# %%
dls = get_dls(16, 32)  # speed: was get_dls(64, 224)

# %%
x,y = dls.one_batch()
print((x.mean(dim=[0,2,3]),x.std(dim=[0,2,3])))

# %%
model = xresnet50(n_out=dls.c)
learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), metrics=accuracy)
learn.fit_one_cycle(5, 3e-3)

# %%
dls = get_dls(32, 24)  # speed: was get_dls(128, 128)
learn = Learner(dls, xresnet50(n_out=dls.c), loss_func=CrossEntropyLossFlat(), 
                metrics=accuracy)
learn.fit_one_cycle(4, 3e-3)

# %%
learn.dls = get_dls(16, 32)  # speed: was get_dls(64, 224)
learn.fine_tune(5, 1e-3)

# %%
preds,targs = learn.tta()
print(accuracy(preds, targs).item())

# %%
#hide_input
#id mixup_example
#caption Mixing a church and a gas station
#alt An image of a church, a gas station and the two mixed up.
church = PILImage.create(get_image_files_sorted(path/'train'/'n03028079')[0])
gas = PILImage.create(get_image_files_sorted(path/'train'/'n03425413')[0])
church = church.resize((256,256))
gas = gas.resize((256,256))
tchurch = tensor(church).float() / 255.
tgas = tensor(gas).float() / 255.

_,axs = plt.subplots(1, 3, figsize=(12,4))
show_image(tchurch, ax=axs[0]);
show_image(tgas, ax=axs[1]);
show_image((0.3*tchurch + 0.7*tgas), ax=axs[2]);
