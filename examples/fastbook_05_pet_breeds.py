# ruff: noqa: E402, F401, F403, F405, E501, E702, E703, I001, W291
# (fastai's code as the notebook has it: a star import, imports in later cells, long lines, semicolons, trailing spaces)
"""fastbook chapter 5, "Image Classification" (05_pet_breeds.ipynb): every code cell, in order, as `# %%` cells.

fastai's code is unchanged except for the points below.

1. Imports: `from fastai.vision.all import *` -> `from minifastai.vision.all import *`, and
   `from fastai.callback.fp16 import *` -> `from minifastai.callback.fp16 import *`. The setup cell
   (`! [ -e /content ] && pip install -Uqq fastbook`, `import fastbook`, `fastbook.setup_book()`) and
   `from fastbook import *` are dropped, each with a comment. In their place the script imports the offline data
   writers and fastbook's `plot_function` helper (examples/fastbook_data.py, the cells call it) and
   `place_mobilenet_weights` (examples/pretrain_digits.py). One import line is added: `from fastcore.xtras import *`
   (fastai's star import runs fastcore's `xtras`, which adds `ls` to `pathlib.Path`; minifastai patches no class).
2. Data source: nothing is downloaded. `path = untar_data(URLs.PETS)` -> `path = write_pets('oxford-iiit-pet')`,
   a small PETS in the working folder: `images/<breed>_<n>.jpg`, 6 breeds (3 cats, capitalised, and 3 dogs, two of
   them with underscores in the name) x 16 synthetic 64x64 JPEGs whose colours and shape depend on the breed (96
   images: 77 for training, 19 for validation), and `annotations/`. The interpolation figure's cell reads
   `images/grizzly.jpg` next to the notebook (a file of the book's repository); `write_grizzly()` writes a stand-in
   picture there first. All images being 64x64, `pets1.summary` collates its batch, where the chapter's real
   images of several sizes show the collate error.
3. Pretrained weights: only torchvision's MobileNetV2 ImageNet weights exist offline. `place_mobilenet_weights()`
   puts them in torch hub's cache, and every `vision_learner(dls, resnet34, ...)` / `resnet50` is
   `vision_learner(dls, mobilenet_v2, ...)`, as the comment on each line says. (fastai 2.8.12 itself cannot build
   that learner: torchvision's MobileNetV2 has no pooling module for `create_body` to cut at, and `vision_learner`
   does not pass its `cut` on: StopIteration.)
4. Speed (each change is in a comment on its line): in the training DataBlock `Resize(460)` -> `Resize(64)` (the
   images are 64x64) and `aug_transforms(size=224, ...)` -> `size=32`; `pets.dataloaders(path/"images")` ->
   `bs=16` (fastai's default 64: every `lr_find` runs 100 batches, and 77 images hold only one full batch of 64);
   the `to_fp16()` cell's `fine_tune(6, freeze_epochs=3)` -> `fine_tune(1, freeze_epochs=1)` (float16 is emulated
   on a CPU). The other epochs are the chapter's. The interpolation figure's cell keeps its sizes (460, 224).
5. Cells that only display: a bare last expression is printed (`print(...)`); figures are drawn (matplotlib's
   Agg backend: nothing is shown). `learn.fine_tune??` (IPython's source display) is
   `print(inspect.getsource(learn.fine_tune))`. The two `#hide_input` cells that build an HTML table call
   `df.style.hide_index()`, which pandas 2.0 removed (AttributeError on fastai too): the line is kept, commented
   out, and followed by pandas' replacement `df.style.hide(axis='index')`; `display` is IPython's, which a
   notebook has built in (`from IPython.display import display` is added to the cell).
6. One display-only cell (the interpolation figure) is built with fastai's mid-level API, which SPEC §14 leaves out
   of scope: its lines are kept, commented out, marked `# OUT OF SCOPE`. Every other cell runs.
"""
# %%
#hide
# Dropped: `! [ -e /content ] && pip install -Uqq fastbook`, `import fastbook`, `fastbook.setup_book()` (shell
# command and fastbook's setup).

# %%
#hide
# Dropped: `from fastbook import *` (fastbook's helpers; the one the cells use, `plot_function`, is imported below).
from fastbook_data import write_pets, write_grizzly, plot_function  # data source and fastbook's helper (examples/fastbook_data.py)
from pretrain_digits import place_mobilenet_weights  # pretrained weights: MobileNetV2's, into torch hub's cache

place_mobilenet_weights()

# %%
from minifastai.vision.all import *
from fastcore.xtras import *  # fastcore's Path.ls: fastai's star import brings it (added import line)
path = write_pets('oxford-iiit-pet')  # data source: was `path = untar_data(URLs.PETS)` (no download)

# %%
#hide
Path.BASE_PATH = path

# %%
print(path.ls())

# %%
print((path/"images").ls())

# %%
fname = (path/"images").ls()[0]

# %%
print(re.findall(r'(.+)_\d+.jpg$', fname.name))

# %%
pets = DataBlock(blocks = (ImageBlock, CategoryBlock),
                 get_items=get_image_files, 
                 splitter=RandomSplitter(seed=42),
                 get_y=using_attr(RegexLabeller(r'(.+)_\d+.jpg$'), 'name'),
                 item_tfms=Resize(64),  # speed: was Resize(460) (the synthetic images are 64x64)
                 batch_tfms=aug_transforms(size=32, min_scale=0.75))  # speed: was size=224
dls = pets.dataloaders(path/"images", bs=16)  # speed: was the default bs=64 (lr_find's 100 batches cost bs images each)

# %%
#hide_input
#id interpolations
#caption A comparison of fastai's data augmentation strategy (left) and the traditional approach (right).
# OUT OF SCOPE (SPEC §14): this display-only cell draws fastai's augmentation by hand with fastai's mid-level API:
# a `Pipeline` of the transforms `setup_aug_tfms` merges, and `TensorImage.affine_coord` (the coordinate-transform
# machinery behind it); it also needs `ImageDL.one_batch`, `TensorImage.show` and fastcore's `Inf`. Its lines are
# kept, commented out. In minifastai, `dls.show_batch()` shows the augmented training images.
write_grizzly(Path.cwd()/'images'/'grizzly.jpg')  # data source: the book's images/grizzly.jpg, a stand-in
# dblock1 = DataBlock(blocks=(ImageBlock(), CategoryBlock()),
#                    get_y=parent_label,
#                    item_tfms=Resize(460))
# # Place an image in the 'images/grizzly.jpg' subfolder where this notebook is located before running this
# dls1 = dblock1.dataloaders([(Path.cwd()/'images'/'grizzly.jpg')]*100, bs=8)
# dls1.train.get_idxs = lambda: Inf.ones
# x,y = dls1.valid.one_batch()
# _,axs = subplots(1, 2)
#
# x1 = TensorImage(x.clone())
# x1 = x1.affine_coord(sz=224)
# x1 = x1.rotate(draw=30, p=1.)
# x1 = x1.zoom(draw=1.2, p=1.)
# x1 = x1.warp(draw_x=-0.2, draw_y=0.2, p=1.)
#
# tfms = setup_aug_tfms([Rotate(draw=30, p=1, size=224), Zoom(draw=1.2, p=1., size=224),
#                        Warp(draw_x=-0.2, draw_y=0.2, p=1., size=224)])
# x = Pipeline(tfms)(x)
# #x.affine_coord(coord_tfm=coord_tfm, sz=size, mode=mode, pad_mode=pad_mode)
# TensorImage(x[0]).show(ctx=axs[0])
# TensorImage(x1[0]).show(ctx=axs[1]);

# %%
dls.show_batch(nrows=1, ncols=3)

# %%
#hide_output
pets1 = DataBlock(blocks = (ImageBlock, CategoryBlock),
                 get_items=get_image_files, 
                 splitter=RandomSplitter(seed=42),
                 get_y=using_attr(RegexLabeller(r'(.+)_\d+.jpg$'), 'name'))
pets1.summary(path/"images")

# %%
learn = vision_learner(dls, mobilenet_v2, metrics=error_rate)  # weights: was resnet34
learn.fine_tune(2)

# %%
x,y = dls.one_batch()

# %%
print(y)

# %%
preds,_ = learn.get_preds(dl=[(x,y)])
print(preds[0])

# %%
print((len(preds[0]),preds[0].sum()))

# %%
plot_function(torch.sigmoid, min=-4,max=4)

# %%
#hide
torch.random.manual_seed(42);

# %%
acts = torch.randn((6,2))*2
print(acts)

# %%
print(acts.sigmoid())

# %%
print((acts[:,0]-acts[:,1]).sigmoid())

# %%
sm_acts = torch.softmax(acts, dim=1)
print(sm_acts)

# %%
targ = tensor([0,1,0,1,1,0])

# %%
print(sm_acts)

# %%
idx = range(6)
print(sm_acts[idx, targ])

# %%
#hide_input
from IPython.display import HTML
from IPython.display import display  # a notebook's built-in `display`
df = pd.DataFrame(sm_acts, columns=["3","7"])
df['targ'] = targ
df['idx'] = idx
df['result'] = sm_acts[range(6), targ]
# t = df.style.hide_index()  # pandas 2.0 removed Styler.hide_index (AttributeError on fastai too)
t = df.style.hide(axis='index')
#To have html code compatible with our script
html = t._repr_html_().split('</style>')[1]
html = re.sub(r'<table id="([^"]+)"\s*>', r'<table >', html)
display(HTML(html))

# %%
print(-sm_acts[idx, targ])

# %%
print(F.nll_loss(sm_acts, targ, reduction='none'))

# %%
plot_function(torch.log, min=0,max=1, ty='log(x)', tx='x')

# %%
plot_function(lambda x: -1*torch.log(x), min=0,max=1, tx='x', ty='- log(x)', title = 'Log Loss when true label = 1')

# %%
#hide_input
from IPython.display import HTML
df['loss'] = -torch.log(tensor(df['result']))
# t = df.style.hide_index()  # pandas 2.0 removed Styler.hide_index (AttributeError on fastai too)
t = df.style.hide(axis='index')
#To have html code compatible with our script
html = t._repr_html_().split('</style>')[1]
html = re.sub(r'<table id="([^"]+)"\s*>', r'<table >', html)
display(HTML(html))

# %%
loss_func = nn.CrossEntropyLoss()

# %%
print(loss_func(acts, targ))

# %%
print(F.cross_entropy(acts, targ))

# %%
print(nn.CrossEntropyLoss(reduction='none')(acts, targ))

# %%
#width 600
interp = ClassificationInterpretation.from_learner(learn)
interp.plot_confusion_matrix(figsize=(12,12), dpi=60)

# %%
print(interp.most_confused(min_val=5))

# %%
learn = vision_learner(dls, mobilenet_v2, metrics=error_rate)  # weights: was resnet34
learn.fine_tune(1, base_lr=0.1)

# %%
learn = vision_learner(dls, mobilenet_v2, metrics=error_rate)  # weights: was resnet34
lr_min,lr_steep = learn.lr_find(suggest_funcs=(minimum, steep))

# %%
print(f"Minimum/10: {lr_min:.2e}, steepest point: {lr_steep:.2e}")

# %%
learn = vision_learner(dls, mobilenet_v2, metrics=error_rate)  # weights: was resnet34
learn.fine_tune(2, base_lr=3e-3)

# %%
import inspect
print(inspect.getsource(learn.fine_tune))  # was `learn.fine_tune??` (IPython's source display)

# %%
learn = vision_learner(dls, mobilenet_v2, metrics=error_rate)  # weights: was resnet34
learn.fit_one_cycle(3, 3e-3)

# %%
learn.unfreeze()

# %%
print(learn.lr_find())

# %%
learn.fit_one_cycle(6, lr_max=1e-5)

# %%
learn = vision_learner(dls, mobilenet_v2, metrics=error_rate)  # weights: was resnet34
learn.fit_one_cycle(3, 3e-3)
learn.unfreeze()
learn.fit_one_cycle(12, lr_max=slice(1e-6,1e-4))

# %%
learn.recorder.plot_loss()

# %%
from minifastai.callback.fp16 import *
learn = vision_learner(dls, mobilenet_v2, metrics=error_rate).to_fp16()  # weights: was resnet50
learn.fine_tune(1, freeze_epochs=1)  # speed: was fine_tune(6, freeze_epochs=3) (float16 is emulated on a CPU)
