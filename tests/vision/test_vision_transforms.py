"""Vision transforms against fastai 2.8's own: same seeds, same draws, same pixels."""
import random
import warnings

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from minifastai.vision import (
    Brightness,
    Contrast,
    Dihedral,
    Flip,
    Normalize,
    RandomResizedCrop,
    RandomResizedCropGPU,
    Resize,
    Rotate,
    Warp,
    Zoom,
    aug_transforms,
    imagenet_stats,
)
from minifastai.vision.pipeline import ImagePipeline

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import fastai.vision.all as fa


def fastai_batch(tfms, x, split_idx):
    """Run fastai batch transforms as its Pipeline does (sorted by order) on a TensorImage batch."""
    y = fa.TensorImage(x.clone())
    for t in sorted(tfms, key=lambda t: t.order):
        y = t(y, split_idx=split_idx)
    return torch.as_tensor(y)


@pytest.fixture
def batch():
    return torch.rand(6, 3, 20, 24, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kwargs", [{}, {"size": 16}, {"size": (12, 18), "flip_vert": True},
                                    {"size": 16, "min_scale": 0.5}, {"mult": 2.0, "max_zoom": 1.5, "p_affine": 1.0},
                                    {"batch": True}])
def test_aug_transforms_equal_fastai_pixel_for_pixel(batch, kwargs):
    ours = ImagePipeline(None, aug_transforms(**kwargs))
    theirs = fa.aug_transforms(**kwargs)
    for split_idx, seed in ((0, 1), (0, 2), (1, 3)):
        torch.manual_seed(seed)
        random.seed(seed)
        expected = fastai_batch(theirs, batch, split_idx)
        torch.manual_seed(seed)
        random.seed(seed)
        got = ours.batch(batch.clone(), train=split_idx == 0)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-5), (kwargs, split_idx, (got - expected).abs().max())


def test_aug_transforms_lists_fastais_transforms_in_fastais_order():
    tfms = aug_transforms(size=32, min_scale=0.75)
    assert [type(t).__name__ for t in tfms] == ["Flip", "Warp", "Rotate", "Zoom", "Brightness", "Contrast",
                                                "RandomResizedCropGPU"]
    flip, warp, rot, zoom, bright, contrast, rrc = tfms
    assert (flip.p, warp.magnitude, warp.p, rot.max_deg, rot.p, zoom.max_zoom, zoom.p) == (0.5, 0.2, 0.75, 10, 0.75,
                                                                                         1.1, 0.75)
    assert (bright.max_lighting, bright.p, contrast.max_lighting) == (0.2, 0.75, 0.2)
    assert rrc.size == (32, 32) and rrc.min_scale == 0.75 and rrc.ratio == (1, 1) and flip.size is None
    assert [type(t).__name__ for t in aug_transforms(do_flip=False, max_warp=0, max_lighting=0)] == ["Rotate", "Zoom"]
    assert aug_transforms(size=24)[0].size == (24, 24)
    crop = aug_transforms(min_scale=0.5)[-1]  # fastai's: without a size, the crop is resized back to the batch's
    x = torch.rand(2, 3, 20, 14)
    assert crop.size is None and crop(x, train=True).shape == (2, 3, 20, 14) and crop(x, train=False).shape == x.shape


@pytest.mark.parametrize("tfm,ftfm", [
    (Rotate(max_deg=30, p=1.0, draw=[25, -10, 0, 5, 30, -30]),
     fa.Rotate(max_deg=30, p=1.0, draw=[25, -10, 0, 5, 30, -30])),
    (Zoom(max_zoom=2, p=1.0, draw=1.5, draw_x=0.2, draw_y=0.9),
     fa.Zoom(max_zoom=2, p=1.0, draw=1.5, draw_x=0.2, draw_y=0.9)),
    (Flip(p=1.0), fa.Flip(p=1.0)),
    (Dihedral(p=1.0, draw=[0, 1, 2, 3, 4, 5]), fa.Dihedral(p=1.0, draw=[0, 1, 2, 3, 4, 5])),
    (Warp(magnitude=0.4, p=1.0, draw_x=0.3, draw_y=-0.2), fa.Warp(magnitude=0.4, p=1.0, draw_x=0.3, draw_y=-0.2)),
    (Brightness(p=1.0, draw=0.7), fa.Brightness(p=1.0, draw=0.7)),
    (Contrast(p=1.0, draw=1.4), fa.Contrast(p=1.0, draw=1.4)),
    (RandomResizedCropGPU(12, min_scale=0.3), fa.RandomResizedCropGPU(12, min_scale=0.3)),
], ids=lambda t: type(t).__name__)
def test_each_batch_transform_with_fixed_draws_equals_fastai(batch, tfm, ftfm):
    random.seed(0)
    expected = fastai_batch([ftfm], batch, 0)
    random.seed(0)
    got = ImagePipeline(None, [tfm]).batch(batch.clone(), train=True)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
    assert not torch.allclose(got, batch[..., :got.shape[-2], :got.shape[-1]], atol=1e-3)  # it did something


def test_rotation_by_90_degrees_moves_pixels_where_expected():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 0, 4] = 1.0  # top right corner
    out = ImagePipeline(None, [Rotate(max_deg=90, p=1.0, draw=90, pad_mode="zeros")]).batch(x, train=True)
    assert out[0, 0].argmax().item() == 24  # fastai's positive angle turns the image clockwise: now bottom right
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_lighting_and_affine_leave_validation_untouched_without_size(batch):
    p = ImagePipeline(None, aug_transforms())
    assert torch.equal(p.batch(batch.clone(), train=False), batch)


@pytest.fixture(scope="module")
def image():
    from PIL import Image

    rng = np.random.default_rng(0)
    arr = np.array(Image.fromarray((rng.random((37, 53, 3)) * 255).astype(np.uint8)).resize((53, 37)))
    return fa.PILImage.create(arr), torch.from_numpy(arr).permute(2, 0, 1).contiguous()


@pytest.mark.parametrize("method", ["crop", "pad", "squish"])
@pytest.mark.parametrize("size", [24, (20, 30), (40, 32)])
def test_resize_equals_fastai_in_training_and_validation(image, method, size):
    pil, x = image
    for split_idx in (0, 1):
        random.seed(5)
        expected = np.asarray(fa.Resize(size, method=method)(pil, split_idx=split_idx)).astype(float)
        random.seed(5)
        got = Resize(size, method=method)(x, train=split_idx == 0).permute(1, 2, 0).numpy().astype(float)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1  # PIL and torchvision's antialiased bilinear round differently


def test_resize_crop_position_is_random_in_training_only(image):
    _, x = image
    r = Resize(24)
    random.seed(0)
    crops = {tuple(r(x, train=True).flatten()[:50].tolist()) for _ in range(6)}
    assert len(crops) > 1
    assert torch.equal(r(x, train=False), r(x, train=False))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_resized_crop_equals_fastai(image, seed):
    pil, x = image
    for split_idx in (0, 1):
        random.seed(seed)
        expected = np.asarray(fa.RandomResizedCrop(24, min_scale=0.3)(pil, split_idx=split_idx)).astype(float)
        random.seed(seed)
        got = RandomResizedCrop(24, min_scale=0.3)(x, train=split_idx == 0).permute(1, 2, 0).numpy().astype(float)
        assert got.shape == (24, 24, 3) and np.abs(got - expected).max() <= 1


def test_random_resized_crop_validation_is_a_centre_crop_with_fastais_margin():
    x = torch.arange(40 * 40, dtype=torch.float32).reshape(1, 40, 40)
    out = RandomResizedCrop(16, resamples=("nearest", "nearest"))(x, train=False)
    # val_xtra=0.14: resize to 16 + ceil(16 * 0.14 / 8) * 8 = 24, then cut 4 pixels on each side
    assert out.shape == (1, 16, 16)
    ref = torch.nn.functional.interpolate(x[None], size=(24, 24), mode="nearest")[0, :, 4:20, 4:20]
    assert torch.equal(out, ref)


def test_normalize_from_stats_and_decode():
    n = Normalize.from_stats(*imagenet_stats)
    x = torch.rand(2, 3, 4, 4)
    y = n(x, train=False)
    assert torch.allclose(y[:, 0], (x[:, 0] - 0.485) / 0.229)
    assert torch.allclose(n.decode(y), x, atol=1e-6)
    p = ImagePipeline(None, [v2.Normalize([0.5] * 3, [0.25] * 3), Flip(p=1.0)])  # any order: normalization is last
    assert isinstance(p.norm, Normalize) and p.norm.std == [0.25] * 3 and len(p.batch_tfms) == 1
    assert torch.allclose(p.batch(x.clone(), train=True), (x.flip(-1) - 0.5) / 0.25, atol=1e-5)
    with pytest.raises(ValueError, match="stds > 0"):
        Normalize([0.5], [0.0])
    with pytest.raises(ValueError, match="2 normalizations"):
        ImagePipeline(None, [n, v2.Normalize([0.5] * 3, [0.25] * 3)])


def test_bad_transform_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="size=0 must be"):
        Resize(0)
    with pytest.raises(ValueError, match="method='fill' must be one of"):
        Resize(8, method="fill")
    with pytest.raises(ValueError, match="min_scale"):
        RandomResizedCrop(8, min_scale=0)
    with pytest.raises(ValueError, match="p=2 must be a probability"):
        Flip(p=2)
    with pytest.raises(ValueError, match="max_lighting"):
        Brightness(max_lighting=1.5)


def test_torchvision_v2_transforms_mix_in_training_only_when_random(batch):
    x = (batch * 255).to(torch.uint8)
    p = ImagePipeline([v2.RandomResizedCrop(12), v2.Grayscale(3)], [v2.RandomHorizontalFlip(1.0)])
    assert [type(t) for t in p.valid_item] == [v2.Resize, v2.CenterCrop, v2.Grayscale]
    img = x[0]
    assert p.item(img, train=True).shape == (3, 12, 12) and p.item(img, train=False).shape == (3, 12, 12)
    f = x.float() / 255
    assert torch.allclose(p.batch(x, train=True), f.flip(-1)) and torch.allclose(p.batch(x, train=False), f)


def test_fastai_call_forms_split_idx_pil_items_tuples_and_tensorimage_methods():
    from PIL import Image as PILImageModule

    from minifastai.torch_core import TensorImage, TensorMask
    from minifastai.vision import Brightness, CropPad, Flip, PILImage, Resize

    arr = (np.arange(20 * 16 * 3) % 251).astype(np.uint8).reshape(20, 16, 3)
    img = PILImage.create(arr)
    out = Resize(10)(img, split_idx=1)  # fastai's validation: centred crop, then resize
    assert isinstance(out, PILImage) and out.size == (10, 10)
    assert np.array_equal(np.asarray(out), Resize(10)(torch.from_numpy(arr).permute(2, 0, 1), train=False)
                          .permute(1, 2, 0).numpy())
    a, b = CropPad(8)((img, PILImageModule.fromarray(arr)))  # a tuple: each element, each keeps its type
    assert isinstance(a, PILImage) and type(b) is PILImageModule.Image
    assert np.array_equal(np.asarray(a), arr[6:14, 4:12])
    x = TensorImage(torch.rand(4, 3, 5, 5))
    assert torch.equal(x.flip_batch(p=1.0), Flip(p=1.0)(x, split_idx=0))
    assert torch.equal(x.flip_batch(p=1.0), x.flip(-1))
    mask = TensorMask(torch.rand(4, 3, 5, 5))
    assert Brightness(p=1.0, draw=0.9)(mask, split_idx=0) is mask  # lighting leaves masks alone (fastai's)
    assert torch.equal(Brightness(p=1.0, draw=0.9)(x, split_idx=1), x)  # validation: unchanged
    with pytest.raises(ValueError, match=r"split_idx=2 must be 0 \(training\) or 1 \(validation\)"):
        Flip()(x, split_idx=2)
    with pytest.raises(TypeError, match="Flip transforms batches of .* not a PIL image"):
        Flip()(img)
