"""fastai's nbs/09_vision.augment.ipynb test cells for the user-level transforms, as fastai wrote them.

Only the cells that check `Resize` (and `ResizeMethod`), `RandomResizedCrop`, `RandomResizedCropGPU`, `CropPad`,
`Flip`, `Dihedral`, `Rotate`, `Zoom`, `Warp`, `Brightness`, `Contrast` and `aug_transforms` are here; the cells
of fastai's internals (`RandTransform`, `FlipItem`, `DihedralItem`, `RandomCrop`, `RatioResize`, `AffineCoordTfm`,
`affine_coord`, `_draw_mask`, `mask_tensor`, `flip_mat`, `DeterministicDraw`, `DeterministicFlip`,
`DeterministicDihedral`, `setup_aug_tfms`, the lighting helpers, `Saturation`, `Hue`, `RandomErasing`) and the
integration tests on masks, points and boxes are not. The notebook has no test cell of its own for `Normalize`.

The cells are read from the notebook as fastai 2.1 had it (late 2020), from a jupytext copy of it: the copies of
the .ipynb at hand are fastai2's (2020) or, for the current one, 16 MB of mostly image outputs. Newer versions of
the notebook may have changed or added cells.

The notebook's `img` is `TEST_IMAGE` (`images/puppy.jpg`, a file of fastai's `nbs/` folder, not of the package);
SETUP writes a synthetic 640x480 RGB JPEG instead and points `TEST_IMAGE` at it. SETUP also holds the notebook's
hidden helper `_pnt2tensor`. The notebook's setup cells `img = PILImage(PILImage.create(TEST_IMAGE)...)` and
`timg = ...; def _batch_ex(bs): ...` begin the cells that use them instead of sitting in SETUP, so that a minifastai
gap in them shows in those cells only; a cell that continues an earlier cell (`warp`, `scales`, `crop`) starts with
the earlier cell's lines that make them. The notebook's import cell (`fastai.data.all`, `fastai.vision.core`,
`fastai.vision.data`, and the module under test, `fastai.vision.augment`) becomes fastai's `fastai.vision.all`,
which holds them: minifastai has no `data.all`, `vision.core` or `vision.augment` modules (its transforms are in
`minifastai.vision`).
"""
from __future__ import annotations

import pytest
from fastai_nbs.nbcells import Cell, cases, run_cell

IMPORTS = """\
from fastai.vision.all import *
from torch import stack, zeros_like as t0, ones_like as t1
"""

SETUP = '''
import tempfile
from pathlib import Path as _Path
from PIL import Image as _Image

def _test_image():
    "TEST_IMAGE offline: a synthetic 640x480 RGB JPEG (a gradient with a checkerboard)"
    fn = _Path(tempfile.mkdtemp(prefix="test_image_"))/"puppy.jpg"
    yy, xx = np.mgrid[0:480, 0:640]
    a = np.stack([xx * 255 // 639, yy * 255 // 479, ((xx // 40 + yy // 40) % 2) * 200], -1).astype(np.uint8)
    _Image.fromarray(a).save(fn)
    return fn

TEST_IMAGE = _test_image()

def _pnt2tensor(pnts,sz):
    "Create a tensor with points in `pnts` to put on a zero-filled tensor of size `sz`"
    t = torch.zeros(*sz)
    for p in pnts: t[p[1],p[0]] = 1.
    return t
'''

IMG = "img = PILImage(PILImage.create(TEST_IMAGE).resize((600,400)))\n"
TIMG = IMG + ("timg = TensorImage(array(img)).permute(2,0,1).float()/255.\n"
              "def _batch_ex(bs): return TensorImage(timg[None].expand(bs, *timg.shape).clone())\n")

PIL_ITEMS = ("fastai's item transforms take PIL images and `split_idx` (they dispatch on the type); minifastai's take "
             "uint8 (C, H, W) tensors and `train=`: a `PILImage` is only what `PILImage.create` returns, and the "
             "loaders never produce one")
SPLIT_IDX = ("minifastai's batch transforms are called as `tfm(x, train=True)` (validation: `train=False`), not with "
             "fastai's `split_idx=0`: there is no `split_idx`")
PATCHED = ("fastai's functional forms of the batch transforms are methods it patches onto `TensorImage` (`flip_batch`, "
           "`dihedral_batch`, `rotate`, `zoom`, `warp`, `brightness`, `contrast`): minifastai patches no class")
OUT_OF_SCOPE = ("points, bounding boxes and segmentation masks (`TensorPoint`, `TensorBBox`, `PILMask`, `PointBlock`, "
                "`BBoxBlock`, `MaskBlock`, `bb_pad`, `clip_remove_empty`, `SegmentationDataLoaders`) are out of scope")

CELLS = [
    # ---- CropPad
    Cell("crop_pad_pil_pair", """
ta = torch.empty(16,16).uniform_(0,1)
tb = torch.empty(20,20).uniform_(0,1)
x1 = PILImage.create(ta)
x2 = PILImage.create(tb)
crop = CropPad(10)
y1,y2 = crop((x1,x2))
test_eq(y1.size, (10,10))
test_eq(y2.size, (10,10))
test_eq(tensor(array(y1)), ta[3:13,3:13])
test_eq(tensor(array(y2)), tb[5:15,5:15])
"""),
    Cell("crop_pad_pil_points", """
t = torch.empty(20,16).uniform_(0,1)
x = PILImage.create(t)
crop = CropPad(10)
y = crop(x)
test_eq(y.size, (10,10))
test_eq(tensor(array(y)), t[5:15,3:13])

pts = TensorPoint(torch.tensor([[-1,-1], [-0.5,-0.5], [0.,0.]]), img_size=(16,20))
y,p1 = crop((x,pts))
test_eq(p1, torch.tensor([[-1.6,-2], [-0.8,-1], [0,0]]))
""", out_of_scope=OUT_OF_SCOPE),
    # ---- Resize
    Cell("resize_method_squish", """
test_eq(ResizeMethod.Squish, 'squish')
"""),
    Cell("resize_repr", """
Resize(224)
"""),
    Cell("resize_show_train", IMG + """
_,axs = plt.subplots(1,3,figsize=(12,4))
for ax,method in zip(axs.flatten(), [ResizeMethod.Squish, ResizeMethod.Pad, ResizeMethod.Crop]):
    rsz = Resize(256, method=method)
    show_image(rsz(img, split_idx=0), ctx=ax, title=method);
"""),
    Cell("resize_show_valid", IMG + """
_,axs = plt.subplots(1,3,figsize=(12,4))
for ax,method in zip(axs.flatten(), [ResizeMethod.Squish, ResizeMethod.Pad, ResizeMethod.Crop]):
    rsz = Resize(256, method=method)
    show_image(rsz(img, split_idx=1), ctx=ax, title=method);
"""),
    Cell("resize_pil_sizes", """
t = torch.empty(20,16).uniform_(0,1)
x = PILImage.create(t)
rsz = Resize(10)
y = rsz(x, split_idx=0)
test_eq(y.size, (10,10))

y = rsz(x, split_idx=1)
test_eq(y.size, (10,10))
"""),
    # ---- RandomResizedCrop
    Cell("random_resized_crop_show_train", IMG + """
crop = RandomResizedCrop(256)
_,axs = plt.subplots(3,3,figsize=(9,9))
for ax in axs.flatten():
    cropped = crop(img)
    show_image(cropped, ctx=ax);
"""),
    Cell("random_resized_crop_show_valid", IMG + """
crop = RandomResizedCrop(256)
_,axs = subplots(1,3)
for ax in axs.flatten(): show_image(crop(img, split_idx=1), ctx=ax);
"""),
    Cell("random_resized_crop_shape", IMG + """
crop = RandomResizedCrop(256)
_,axs = plt.subplots(3,3,figsize=(9,9))
for ax in axs.flatten():
    cropped = crop(img)
    show_image(cropped, ctx=ax);
test_eq(cropped.shape, [256,256])
"""),
    # ---- RandomResizedCropGPU
    Cell("random_resized_crop_gpu_show", TIMG + """
t = _batch_ex(8)
rrc = RandomResizedCropGPU(224, p=1.)
y = rrc(t)
_,axs = plt.subplots(2,4, figsize=(12,6))
for ax in axs.flatten():
    show_image(y[i], ctx=ax)
""", fastai_fails="the cell shows `y[i]` with the `i` an earlier notebook cell left behind: `NameError` on its own"),
    # ---- Flip
    Cell("flip", """
flip = Flip(p=1.)
t = _pnt2tensor([[1,0], [2,1]], (3,3))

y = flip(TensorImage(t[None,None]), split_idx=0)
test_eq(y, _pnt2tensor([[1,0], [0,1]], (3,3))[None,None])

pnts = TensorPoint((tensor([[1.,0.], [2,1]]) -1)[None])
test_eq(flip(pnts, split_idx=0), tensor([[[1.,0.], [0,1]]]) -1)

bbox = TensorBBox(((tensor([[1.,0., 2.,1]]) -1)[None]))
test_eq(flip(bbox, split_idx=0), tensor([[[0.,0., 1.,1.]]]) -1)
""", out_of_scope=OUT_OF_SCOPE),
    # ---- Dihedral
    Cell("dihedral_show", TIMG + """
t = _batch_ex(8)
dih = Dihedral(p=1., draw=list(range(8)))
y = dih(t)
y = t.dihedral_batch(p=1., draw=list(range(8)))
_,axs = plt.subplots(2,4, figsize=(12,5))
for i,ax in enumerate(axs.flatten()): show_image(y[i], ctx=ax, title=f'Flip {i}')
"""),
    Cell("dihedral_images_points_consistent", """
# Test behavior with images and points is consistent
t = _pnt2tensor([[1,0], [2,1], [2,2]], (3,3))[None,None].expand(8,1,3,3)
dih = Dihedral(p=1., draw=list(range(8)))
dih.as_item=False
pnts = tensor([[[1.,0.], [2,1], [2,2]]]) -1
y,z = dih((TensorImage(t),TensorPoint(pnts.expand(8,3,2))), split_idx=0)
res = y.nonzero()
for i in range(8):
    vals = {(t[0]+t[1]*3).item() for t in res[i*3:(i+1)*3][:,2:].flip(1)}
    vals1 = {(t[0]+t[1]*3).item() for t in z[i]+1}
    test_eq(vals, vals1)

#Test order is the same as DihedralItem
tt = _pnt2tensor([[1,0], [2,1], [2,2]], (3,3))
x = PILImage.create(tt)
for i in range(8):
    y1 = x.dihedral(i)
    test_eq(y[i,0], tensor(array(y1)))
""", out_of_scope=OUT_OF_SCOPE),
    # ---- Rotate
    Cell("rotate_show", TIMG + """
thetas = [-30,-15,0,15,30]
y = _batch_ex(5).rotate(draw=thetas, p=1.)
_,axs = plt.subplots(1,5, figsize=(15,3))
for i,ax in enumerate(axs.flatten()):
    show_image(y[i], ctx=ax, title=f'{thetas[i]} degrees')
"""),
    # ---- Zoom
    Cell("zoom_show_centre", TIMG + """
scales = [0.8, 1., 1.1, 1.25, 1.5]
n = len(scales)
y = _batch_ex(n).zoom(draw=scales, p=1., draw_x=0.5, draw_y=0.5)
fig,axs = plt.subplots(1, n, figsize=(12,3))
fig.suptitle('Center zoom with different scales')
for i,ax in enumerate(axs.flatten()):
    show_image(y[i], ctx=ax, title=f'scale {scales[i]}')
"""),
    Cell("zoom_show_random_centre", TIMG + """
y = _batch_ex(4).zoom(p=1., draw=1.5)
fig,axs = plt.subplots(1,4, figsize=(12,3))
fig.suptitle('Constant scale and different random centers')
for i,ax in enumerate(axs.flatten()):
    show_image(y[i], ctx=ax)
"""),
    # ---- Warp
    Cell("warp_method_values", """
x1 = tensor([[1.,0.,0.,0.,1.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.]])
x2 = tensor([[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[1.,0.,0.,0.,1.]])
x3 = tensor([[1.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[1.,0.,0.,0.,0.]])
x4 = tensor([[0.,0.,0.,0.,1.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,1.]])
y = TensorImage(stack([x1,x2,x3,x4])[:,None])
y = y.warp(p=1., draw_x=[0.,0,-0.5,0.5], draw_y=[-0.5,0.5,0.,0.])
test_eq(y[0,0], tensor([[0.,1.,0.,1.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.]]))
test_eq(y[1,0], tensor([[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,1.,0.,1.,0.]]))
test_eq(y[2,0], tensor([[0.,0.,0.,0.,0.],[1.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[1.,0.,0.,0.,0.],[0.,0.,0.,0.,0.]]))
test_eq(y[3,0], tensor([[0.,0.,0.,0.,0.],[0.,0.,0.,0.,1.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,1.],[0.,0.,0.,0.,0.]]))
"""),
    Cell("warp_method_points", """
x = torch.tensor([[[-1.,-1], [1,-1]], [[-1,1], [1,1]], [[-1,-1], [-1,1]], [[1,-1], [1,1]]])
y = TensorPoint(x).warp(p=1., draw_x=[0.,0,-0.5,0.5], draw_y=[-0.5,0.5,0.,0.])
test_eq(y, torch.tensor([[[-0.5,-1], [0.5,-1]], [[-0.5,1], [0.5,1]], [[-1,-0.5], [-1,0.5]], [[1,-0.5], [1,0.5]]]))
""", out_of_scope=OUT_OF_SCOPE),
    Cell("warp_show_vertical", TIMG + """
scales = [-0.4, -0.2, 0., 0.2, 0.4]
warp = Warp(p=1., draw_y=scales, draw_x=0.)
y = warp(_batch_ex(5), split_idx=0)
fig,axs = plt.subplots(1,5, figsize=(15,3))
fig.suptitle('Vertical warping')
for i,ax in enumerate(axs.flatten()):
    show_image(y[i], ctx=ax, title=f'magnitude {scales[i]}')
"""),
    Cell("warp_show_horizontal", TIMG + """
scales = [-0.4, -0.2, 0., 0.2, 0.4]
warp = Warp(p=1., draw_x=scales, draw_y=0.)
y = warp(_batch_ex(5), split_idx=0)
fig,axs = plt.subplots(1,5, figsize=(15,3))
fig.suptitle('Horizontal warping')
for i,ax in enumerate(axs.flatten()):
    show_image(y[i], ctx=ax, title=f'magnitude {scales[i]}')
"""),
    Cell("warp_values", """
x1 = tensor([[1.,0.,0.,0.,1.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.]])
x2 = tensor([[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[1.,0.,0.,0.,1.]])
x3 = tensor([[1.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[1.,0.,0.,0.,0.]])
x4 = tensor([[0.,0.,0.,0.,1.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,1.]])
warp = Warp(p=1., draw_x=[0.,0,-0.5,0.5], draw_y=[-0.5,0.5,0.,0.])
y = warp(TensorImage(stack([x1,x2,x3,x4])[:,None]), split_idx=0)
test_eq(y[0,0], tensor([[0.,1.,0.,1.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.]]))
test_eq(y[1,0], tensor([[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[0.,1.,0.,1.,0.]]))
test_eq(y[2,0], tensor([[0.,0.,0.,0.,0.],[1.,0.,0.,0.,0.],[0.,0.,0.,0.,0.],[1.,0.,0.,0.,0.],[0.,0.,0.,0.,0.]]))
test_eq(y[3,0], tensor([[0.,0.,0.,0.,0.],[0.,0.,0.,0.,1.],[0.,0.,0.,0.,0.],[0.,0.,0.,0.,1.],[0.,0.,0.,0.,0.]]))
"""),
    Cell("warp_points", """
warp = Warp(p=1., draw_x=[0.,0,-0.5,0.5], draw_y=[-0.5,0.5,0.,0.])
x = torch.tensor([[[-1.,-1], [1,-1]], [[-1,1], [1,1]], [[-1,-1], [-1,1]], [[1,-1], [1,1]]])
y = warp(TensorPoint(x), split_idx=0)
test_eq(y, torch.tensor([[[-0.5,-1], [0.5,-1]], [[-0.5,1], [0.5,1]], [[-1,-0.5], [-1,0.5]], [[1,-0.5], [1,0.5]]]))
""", out_of_scope=OUT_OF_SCOPE),
    # ---- Brightness
    Cell("brightness_show", TIMG + """
scales = [0.1, 0.3, 0.5, 0.7, 0.9]
y = _batch_ex(5).brightness(draw=scales, p=1.)
fig,axs = plt.subplots(1,5, figsize=(15,3))
for i,ax in enumerate(axs.flatten()):
    show_image(y[i], ctx=ax, title=f'scale {scales[i]}')
"""),
    Cell("brightness_values", """
scales = [0.1, 0.3, 0.5, 0.7, 0.9]
x = torch.randn(5, 3, 4, 4)
bright = Brightness(draw=scales, p=1.)
y = bright(TensorImage(x), split_idx=0)
y1 = torch.sigmoid(logit(x) + logit(tensor(scales))[:,None,None,None])
test_close(y, y1)

test_eq(bright(TensorMask(x), split_idx=0), x)
test_eq(bright(TensorPoint(x), split_idx=0), x)
test_eq(bright(TensorBBox(x), split_idx=0), x)
"""),
    # ---- Contrast
    Cell("contrast_show", TIMG + """
scales = [0.65, 0.8, 1., 1.25, 1.55]
y = _batch_ex(5).contrast(p=1., draw=scales)
fig,axs = plt.subplots(1,5, figsize=(15,3))
for i,ax in enumerate(axs.flatten()):
    show_image(y[i], ctx=ax, title=f'scale {scales[i]}')
"""),
    Cell("contrast_values", """
scales = [0.65, 0.8, 1., 1.25, 1.55]
x = torch.randn(5, 3, 4, 4)
cont = Contrast(p=1., draw=scales)
y = cont(TensorImage(x), split_idx=0)
y1 = torch.sigmoid(logit(x) * tensor(scales)[:,None,None,None])
test_close(y, y1)

test_eq(cont(TensorMask(x), split_idx=0), x)
test_eq(cont(TensorPoint(x), split_idx=0), x)
test_eq(cont(TensorBBox(x), split_idx=0), x)
"""),
    # ---- aug_transforms
    Cell("aug_transforms_min_scale", TIMG + """
tfms = aug_transforms(pad_mode='zeros', mult=2, min_scale=0.5)
y = _batch_ex(9)
for t in tfms: y = t(y, split_idx=0)
_,axs = plt.subplots(1,3, figsize=(12,3))
for i,ax in enumerate(axs.flatten()): show_image(y[i], ctx=ax)
"""),
    Cell("aug_transforms_batch", TIMG + """
tfms = aug_transforms(pad_mode='zeros', mult=2, batch=True)
y = _batch_ex(9)
for t in tfms: y = t(y, split_idx=0)
_,axs = plt.subplots(1,3, figsize=(12,3))
for i,ax in enumerate(axs.flatten()): show_image(y[i], ctx=ax)
"""),
]


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell):
    run_cell(lib, IMPORTS, cell, setup=SETUP)
