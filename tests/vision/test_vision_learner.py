"""fastai's vision learner API: star import and builders, tta, show_batch/show_results,
ClassificationInterpretation (checked with fastai's own code and scikit-learn), exports of the whole pipeline."""
import random
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from helpers import load_script

import minifastai.vision as mv
from minifastai import accuracy, error_rate, load_learner
from minifastai.vision import (
    ClassificationInterpretation,
    ImageDataLoaders,
    Normalize,
    Resize,
    aug_transforms,
    imagenet_stats,
    vision_learner,
)

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")
P = load_script("examples/pretrain_digits.py")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return P.write_digits_tree(tmp_path_factory.mktemp("digits") / "t", n_per_class=30)


@pytest.fixture(scope="module")
def trained(tree):
    """resnet10 pretrained on digits 0-4, one frozen epoch on digits 5-9 (16 px), with augmentation."""
    torch.manual_seed(0)
    dls = ImageDataLoaders.from_folder(tree, batch_tfms=aug_transforms(do_flip=False), bs=16, device="cpu")
    learn = vision_learner(dls, "resnet10", weights=P.pretrained_weights(), metrics=accuracy)
    learn.remove_cb(learn.progress)
    learn.fit_one_cycle(1, 3e-3)
    return learn


def test_star_import_gives_fastais_names_and_torchvisions_builders(tree):
    ns: dict = {}
    exec("from minifastai.vision import *", ns)
    builders = torchvision.models.list_models(module=torchvision.models)
    assert all(ns[name] is torchvision.models.get_model_builder(name) for name in builders)
    assert ns["MobileNet_V2_Weights"] is torchvision.models.MobileNet_V2_Weights
    for name in ("vision_learner", "cnn_learner", "ImageDataLoaders", "Resize", "RandomResizedCrop", "aug_transforms",
                 "Normalize", "imagenet_stats", "get_image_files", "ClassificationInterpretation"):
        assert name in ns, name
    dls = ImageDataLoaders.from_folder(tree, bs=16, device="cpu")
    learn = ns["vision_learner"](dls, ns["resnet34"], pretrained=False, metrics=error_rate)  # fastai's spelling
    assert learn.n_groups == 3 and len(learn.model[0]) == 8 and learn.model[1][-1].out_features == 5
    assert learn.path == tree and learn.loss_func is dls.loss_func


def test_fastai_layer_groups_for_its_model_meta_families(tree):
    dls = ImageDataLoaders.from_folder(tree, bs=16, device="cpu")
    learn = vision_learner(dls, mv.squeezenet1_1, pretrained=False)
    feats = learn.model[0][0]
    assert learn.group_names == ["body[0][:5]", "body[0][5:]", "head"]
    assert {id(p) for p in learn.layer_groups[0]} == {id(p) for p in feats[:5].parameters()}


def test_tta_is_fastais_formula(trained):
    learn = trained
    for seed in (1, 2):
        torch.manual_seed(seed)
        random.seed(seed)
        preds, targs = learn.tta(n=3)
        torch.manual_seed(seed)
        random.seed(seed)
        aug_dl = learn.dls.valid.new(train=True)
        aug = torch.stack([learn.get_preds(dl=aug_dl)[0] for _ in range(3)]).mean(0)
        plain, targs2 = learn.get_preds()
        assert torch.equal(targs, targs2)
        assert torch.allclose(preds, torch.lerp(aug, plain, 0.25), atol=1e-6)
        assert not torch.allclose(aug, plain, atol=1e-3)  # the augmentation really ran
    aug_only, _ = learn.tta(n=2, beta=None)
    assert isinstance(aug_only, tuple) and len(aug_only) == 2
    with pytest.raises(ValueError, match="n=0 must be at least 1"):
        learn.tta(n=0)


def test_interpretation_against_sklearn_and_fastais_own_code(trained):
    from sklearn.metrics import confusion_matrix

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import fastai.vision.all as fa
    learn = trained
    interp = ClassificationInterpretation.from_learner(learn)
    preds, targs = learn.get_preds()
    raw, _ = learn.get_preds(act=lambda x: x)
    assert torch.allclose(interp.preds, preds) and torch.equal(interp.targs, targs)
    assert torch.allclose(interp.losses, F.cross_entropy(raw, targs, reduction="none"), atol=1e-6)
    cm = interp.confusion_matrix()
    assert (cm == confusion_matrix(targs, preds.argmax(1), labels=range(5))).all() and cm.sum() == len(targs)

    class Fake:  # fastai's most_confused, run on our matrix and vocab
        vocab = interp.vocab

        def confusion_matrix(self):
            return cm.copy()

    for min_val in (1, 2):
        expected = fa.ClassificationInterpretation.most_confused(Fake(), min_val)
        assert interp.most_confused(min_val) == [(a, p, int(n)) for a, p, n in expected]
    losses, idx = interp.top_losses(3)
    assert torch.equal(losses, interp.losses.sort(descending=True).values[:3]) and len(idx) == 3
    _, _, items = interp.top_losses(2, items=True)
    assert items == [learn.dls.valid.items[i] for i in idx[:2].tolist()]
    fig = interp.plot_confusion_matrix()
    texts = sorted(int(t.get_text()) for t in fig.axes[0].texts)
    assert texts == sorted(cm.flatten().tolist())
    fig = interp.plot_top_losses(4)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    i = int(idx[0])
    assert titles[0] == (f"{interp.vocab[int(preds[i].argmax())]}/{interp.vocab[int(targs[i])]} / "
                         f"{float(losses[0]):.2f} / {float(preds[i].max()):.2f}")
    assert len(titles) == 4 and fig._suptitle.get_text() == "Prediction/Actual/Loss/Probability"


def test_show_batch_and_show_results_return_titled_figures(trained):
    learn = trained
    fig = learn.dls.show_batch(max_n=4)
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 4 and all(ax.get_title() in learn.dls.vocab for ax in axes)
    img = axes[0].images[0].get_array()
    assert img.shape == (16, 16, 3) and 0 <= img.min() and img.max() <= 1  # denormalized
    torch.manual_seed(0)
    fig = learn.show_results(max_n=6)
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 6
    for ax in axes:
        target, pred = ax.get_title().split("\n")
        assert target in learn.dls.vocab and pred in learn.dls.vocab
        assert ax.title.get_color() == ("green" if target == pred else "red")


def test_export_keeps_the_whole_pipeline_and_tta_works_after_reload(tree):
    item = Resize(20, method="pad")
    batch = [*aug_transforms(size=16, max_warp=0.1), Normalize.from_stats(*imagenet_stats)]
    dls = ImageDataLoaders.from_folder(tree, item_tfms=item, batch_tfms=batch, bs=16, device="cpu")
    learn = vision_learner(dls, "resnet10", pretrained=False)
    path = learn.export()
    new = load_learner(path)
    assert [repr(t) for t in new.dls.pipeline.item_tfms] == [repr(item)]
    assert [repr(t) for t in new.dls.pipeline.batch_tfms] == [repr(t) for t in batch[:-1]]
    assert new.dls.pipeline.norm.mean == imagenet_stats[0]
    files = dls.valid.items[:5]
    assert torch.allclose(new.get_preds(dl=new.dls.test_dl(files))[0], learn.get_preds(dl=dls.test_dl(files))[0],
                          atol=1e-5)
    out = []
    for lrn in (learn, new):
        torch.manual_seed(3)
        random.seed(3)
        out.append(lrn.tta(dl=lrn.dls.test_dl(files), n=2))
    assert out[1][1] is None and out[1][0].shape == (5, 5) and torch.allclose(out[0][0], out[1][0], atol=1e-5)


def test_interpretation_needs_targets_and_images(trained):
    files = trained.dls.valid.items[:3]
    with pytest.raises(ValueError, match="has no targets"):
        ClassificationInterpretation.from_learner(trained, dl=trained.dls.test_dl(files))
    assert np.isclose(ClassificationInterpretation.from_learner(trained, ds_idx=0).confusion_matrix().sum(),
                      len(trained.dls.train_ds))  # the training set, every item (no batch dropped)


def test_has_pool_type_and_the_models_module_are_fastais():
    from torch import nn

    fvl = pytest.importorskip("fastai.vision.learner")
    from minifastai.vision import has_pool_type, models, resnet18

    for m in (nn.Sequential(nn.AdaptiveAvgPool2d(5), nn.Linear(2, 3)), nn.Conv2d(2, 3, 1),
              nn.Sequential(nn.Sequential(nn.MaxPool3d(2))), nn.Linear(2, 2)):
        assert has_pool_type(m) == fvl.has_pool_type(m)
    assert models.resnet18 is resnet18
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = models.nope
