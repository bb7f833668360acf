"""fastai's nbs/05_data.transforms.ipynb test cells, as fastai wrote them: the user-level parts (getting files,
splitting, labelling, the getters, and `Normalize`).

The notebook downloads MNIST_TINY (`path = untar_data(URLs.MNIST_TINY)`); SETUP sets `path` to the same layout
written offline instead, once per test module: scikit-learn's 8x8 digits 3 and 7, scaled to 28x28 grey PNGs, as
many files as MNIST_TINY has where the cells count them (`train/3`: 346, `train/7`: 363, `test/`: 20), and 20 per
class in `valid/3`, `valid/7`. The notebook's import cell (`fastai.torch_basics`, `fastai.data.core`,
`fastai.data.load`, `fastai.data.external`) becomes fastai's `fastai.vision.all`, which holds them and the module
under test, `fastai.data.transforms`, named after it (minifastai has no `torch_basics`, `data.load` or
`data.external`; its `get_image_files` and `Normalize` live in `minifastai.vision`). A cell that continues an
earlier cell's names (`t`, `t3`, `t7`, `fnames`, the end-to-end `train_ds`, the hidden `Normalize()` cell's `tdl`)
starts with the lines of the earlier cells that make them.

Left out: the cells of fastai's mid-level API that only exist through `Datasets(items, tfms=...)` pipelines
(`Categorize`, `MultiCategorize`, `OneHotEncode` + `MultiCategorize`, `EncodedMultiCategorize`, `RegressionSetup`,
the end-to-end `decode_at`/`show_at` cells) and the type-dispatched `IntToFloatTensor` cell; the `CategoryMap` cells
and the stand-alone `OneHotEncode(c=3)` cell, objects a user may build, are kept. The stored notebook
(fastai/fastai commit c1654261) has no `EndSplitter` cell (fastai added the splitter later), so none is ported.
"""
from __future__ import annotations

import pytest
from fastai_nbs.nbcells import Cell, cases, run_cell

IMPORTS = """\
from fastai.vision.all import *
from fastai.data.transforms import *
"""

SETUP = '''
def _mnist_tiny():
    "MNIST_TINY offline: the folder the `mnist_tiny` fixture of this test module wrote"
    return Path(_MNIST_TINY)

path = _mnist_tiny()
'''

NO_TARGET_TFMS = ("fastai's target transforms and their vocab object (`CategoryMap`, `Categorize`, "
                  "`MultiCategorize`, `OneHotEncode`, `RegressionSetup`) are not there: minifastai's target blocks "
                  "encode targets (`CategoryBlock`, `MultiCategoryBlock`, `RegressionBlock`: `setup`, `encode`, "
                  "`decode`) and a vocab is a plain list")
MID_LEVEL_DL = ("fastai's `Datasets` of transform pipelines and `TfmdDL(after_batch=...)` with type-dispatched "
                "transforms (`Categorize`, `IntToFloatTensor`, `TensorImage`, `decode`) are the mid-level API, out of "
                "scope: minifastai's `Normalize` is a batch transform of `ImageDataLoaders` and `DataBlock` "
                "(`batch_tfms=`)")

GET_FILES = """\
t3 = get_files(path/'train'/'3', extensions='.png', recurse=False)
t7 = get_files(path/'train'/'7', extensions='.png', recurse=False)
t  = get_files(path/'train', extensions='.png', recurse=True)
"""

FNAMES = """\
fnames = [path/'train/3/9932.png', path/'valid/7/7189.png',
          path/'valid/7/7320.png', path/'train/7/9833.png',
          path/'train/3/7666.png', path/'valid/3/925.png',
          path/'train/7/724.png', path/'valid/3/93055.png']
"""

# the notebook's end-to-end example ("End-to-end dataset example with MNIST"), which the Normalize cells use
TRAIN_DS = """\
items = get_image_files(path)
splitter = GrandparentSplitter()
splits = splitter(items)
train,valid = (items[i] for i in splits)
from PIL import Image
def open_img(fn:Path): return Image.open(fn).copy()
def img2tensor(im:Image.Image): return TensorImage(array(im)[None])

tfms = [[open_img, img2tensor],
        [parent_label, Categorize()]]
train_ds = Datasets(train, tfms)
"""

NORMALIZE_SETUP = """\
nrm = Normalize()
batch_tfms = [IntToFloatTensor(), nrm]
tdl = TfmdDL(train_ds, after_batch=batch_tfms, bs=4)
x,y  = tdl.one_batch()
"""

CELLS = [
    # ---- Get
    Cell("get_files", GET_FILES + """\
test_eq(len(t), len(t3)+len(t7))
test_eq(len(get_files(path/'train'/'3', extensions='.jpg', recurse=False)),0)
test_eq(len(t), len(get_files(path, extensions='.png', recurse=True, folders='train')))
t
"""),
    Cell("get_files_counts", """
test_eq(len(get_files(path/'train'/'3', recurse=False)),346)
test_eq(len(get_files(path, extensions='.png', recurse=True, folders=['train', 'test'])),729)
test_eq(len(get_files(path, extensions='.png', recurse=True, folders='train')),709)
test_eq(len(get_files(path, extensions='.png', recurse=True, folders='training')),0)
"""),
    Cell("file_getter", GET_FILES + """\
fpng = FileGetter(extensions='.png', recurse=False)
test_eq(len(t7), len(fpng(path/'train'/'7')))
test_eq(len(t), len(fpng(path/'train', recurse=True)))
fpng_r = FileGetter(extensions='.png', recurse=True)
test_eq(len(t), len(fpng_r(path/'train')))
"""),
    Cell("get_image_files", GET_FILES + """\
test_eq(len(t), len(get_image_files(path, recurse=True, folders='train')))
"""),
    Cell("image_getter", """
test_eq(len(get_files(path/'train', extensions='.png', recurse=True, folders='3')),
        len(ImageGetter(   'train',                    recurse=True, folders='3')(path)))
"""),
    Cell("item_getter", """
test_eq(ItemGetter(1)((1,2,3)),  2)
test_eq(ItemGetter(1)(L(1,2,3)), 2)
test_eq(ItemGetter(1)([1,2,3]),  2)
test_eq(ItemGetter(1)(np.array([1,2,3])),  2)
"""),
    Cell("attr_getter", """
test_eq(AttrGetter('shape')(torch.randn([4,5])), [4,5])
test_eq(AttrGetter('shape', [0])([4,5]), [0])
"""),
    # ---- Split
    Cell("random_splitter", """
src = list(range(30))
f = RandomSplitter(seed=42)
trn,val = f(src)
assert 0<len(trn)<len(src)
assert all(o not in val for o in trn)
test_eq(len(trn), len(src)-len(val))
# test random seed consistency
test_eq(f(src)[0], trn)
"""),
    Cell("train_test_splitter", """
src = list(range(30))
labels = [0] * 20 + [1] * 10
test_size = 0.2

f = TrainTestSplitter(test_size=test_size, random_state=42, stratify=labels)
trn,val = f(src)
assert 0<len(trn)<len(src)
assert all(o not in val for o in trn)
test_eq(len(trn), len(src)-len(val))

# test random seed consistency
test_eq(f(src)[0], trn)

# test labels distribution consistency
# there should be test_size % of zeroes and ones respectively in the validation set
test_eq(len([t for t in val if t < 20]) / 20, test_size)
test_eq(len([t for t in val if t > 20]) / 10, test_size)
"""),
    Cell("index_splitter", """
items = list(range(10))
splitter = IndexSplitter([3,7,9])
test_eq(splitter(items),[[0,1,2,4,5,6,8],[3,7,9]])
"""),
    Cell("grandparent_splitter", FNAMES + """\
splitter = GrandparentSplitter()
test_eq(splitter(fnames),[[0,3,4,6],[1,2,5,7]])
"""),
    Cell("grandparent_splitter_names", FNAMES + """\
fnames2 = fnames + [path/'test/3/4256.png', path/'test/7/2345.png', path/'valid/7/6467.png']
splitter = GrandparentSplitter(train_name=('train', 'valid'), valid_name='test')
test_eq(splitter(fnames2),[[0,3,4,6,1,2,5,7,10],[8,9]])
"""),
    Cell("func_splitter", FNAMES + """\
splitter = FuncSplitter(lambda o: Path(o).parent.parent.name == 'valid')
test_eq(splitter(fnames),[[0,3,4,6],[1,2,5,7]])
"""),
    Cell("mask_splitter", """
items = list(range(6))
splitter = MaskSplitter([True,False,False,True,False,True])
test_eq(splitter(items),[[1,2,4],[0,3,5]])
"""),
    Cell("file_splitter", FNAMES + r"""
with tempfile.TemporaryDirectory() as d:
    fname = Path(d)/'valid.txt'
    fname.write_text('\n'.join([Path(fnames[i]).name for i in [1,3,4]]))
    splitter = FileSplitter(fname)
    test_eq(splitter(fnames),[[0,2,5,6,7],[1,3,4]])
"""),
    Cell("col_splitter", """
df = pd.DataFrame({'a': [0,1,2,3,4], 'b': [True,False,True,True,False]})
splits = ColSplitter('b')(df)
test_eq(splits, [[1,4], [0,2,3]])
#Works with strings or index
splits = ColSplitter(1)(df)
test_eq(splits, [[1,4], [0,2,3]])
# does not get confused if the type of 'is_valid' is integer, but it meant to be a yes/no
df = pd.DataFrame({'a': [0,1,2,3,4], 'is_valid': [1,0,1,1,0]})
splits_by_int = ColSplitter('is_valid')(df)
test_eq(splits_by_int, [[1,4], [0,2,3]])
"""),
    Cell("random_subset_splitter", """
items = list(range(100))
valid_idx = list(np.arange(70,100))
splits = RandomSubsetSplitter(0.3, 0.1)(items)
test_eq(len(splits[0]), 30)
test_eq(len(splits[1]), 10)
"""),
    # ---- Label
    Cell("parent_label", FNAMES + """\
test_eq(parent_label(fnames[0]), '3')
test_eq(parent_label("fastai_dev/dev/data/mnist_tiny/train/3/9932.png"), '3')
[parent_label(o) for o in fnames]
"""),
    Cell("parent_label_os_sep", """
#test for MS Windows when os.path.sep is '\\\\' instead of '/'
test_eq(parent_label(os.path.join("fastai_dev","dev","data","mnist_tiny","train", "3", "9932.png") ), '3')
"""),
    Cell("regex_labeller", FNAMES + r"""
f = RegexLabeller(fr'{os.path.sep}(\d){os.path.sep}')
test_eq(f(fnames[0]), '3')
[f(o) for o in fnames]
"""),
    Cell("regex_labeller_match", FNAMES + r"""
f = RegexLabeller(r'(\d*)', match=True)
test_eq(f(fnames[0].name), '9932')
"""),
    Cell("col_reader", """
df = pd.DataFrame({'a': 'a b c d'.split(), 'b': ['1 2', '0', '', '1 2 3']})
f = ColReader('a', pref='0', suff='1')
test_eq([f(o) for o in df.itertuples()], '0a1 0b1 0c1 0d1'.split())

f = ColReader('b', label_delim=' ')
test_eq([f(o) for o in df.itertuples()], [['1', '2'], ['0'], [], ['1', '2', '3']])

df['a1'] = df['a']
f = ColReader(['a', 'a1'], pref='0', suff='1')
test_eq([f(o) for o in df.itertuples()], [L('0a1', '0a1'), L('0b1', '0b1'), L('0c1', '0c1'), L('0d1', '0d1')])

df = pd.DataFrame({'a': [L(0,1), L(2,3,4), L(5,6,7)]})
f = ColReader('a')
test_eq([f(o) for o in df.itertuples()], [L(0,1), L(2,3,4), L(5,6,7)])

df['name'] = df['a']
f = ColReader('name')
test_eq([f(df.iloc[0,:])], [L(0,1)])
"""),
    # ---- Categorize
    Cell("category_map", """
t = CategoryMap([4,2,3,4])
test_eq(t, [2,3,4])
test_eq(t.o2i, {2:0,3:1,4:2})
test_eq(t.map_objs([2,3]), [0,1])
test_eq(t.map_ids([0,1]), [2,3])
test_fail(lambda: t.o2i['unseen label'])
""", out_of_scope=NO_TARGET_TFMS),
    Cell("category_map_add_na", """
t = CategoryMap([4,2,3,4], add_na=True)
test_eq(t, ['#na#',2,3,4])
test_eq(t.o2i, {'#na#':0,2:1,3:2,4:3})
""", out_of_scope=NO_TARGET_TFMS),
    Cell("category_map_no_sort", """
t = CategoryMap(pd.Series([4,2,3,4]), sort=False)
test_eq(t, [4,2,3])
test_eq(t.o2i, {4:0,2:1,3:2})
""", out_of_scope=NO_TARGET_TFMS),
    Cell("category_map_categorical", """
col = pd.Series(pd.Categorical(['M','H','L','M'], categories=['H','M','L'], ordered=True))
t = CategoryMap(col)
test_eq(t, ['H','M','L'])
test_eq(t.o2i, {'H':0,'M':1,'L':2})
""", out_of_scope=NO_TARGET_TFMS),
    Cell("category_map_strict", """
col = pd.Series(pd.Categorical(['M','H','M'], categories=['H','M','L'], ordered=True))
t = CategoryMap(col, strict=True)
test_eq(t, ['H','M'])
test_eq(t.o2i, {'H':0,'M':1})
""", out_of_scope=NO_TARGET_TFMS),
    Cell("one_hot_encode", """
_tfm = OneHotEncode(c=3)
test_eq(_tfm([0,2]), tensor([1.,0,1]))
test_eq(_tfm.decode(tensor([0,1,1])), [1,2])
""", out_of_scope=NO_TARGET_TFMS),
    # ---- Normalization
    Cell("normalize_from_stats", TRAIN_DS + """\
mean,std = [0.5]*3,[0.5]*3
mean,std = broadcast_vec(1, 4, mean, std)
batch_tfms = [IntToFloatTensor(), Normalize.from_stats(mean,std)]
tdl = TfmdDL(train_ds, after_batch=batch_tfms, bs=4, device=default_device())

x,y  = tdl.one_batch()
xd,yd = tdl.decode((x,y))

test_eq(x.type(), 'torch.cuda.FloatTensor' if default_device().type=='cuda' else 'torch.FloatTensor')
test_eq(xd.type(), 'torch.LongTensor')
test_eq(type(x), TensorImage)
test_eq(type(y), TensorCategory)
assert x.mean()<0.0
assert x.std()>0.5
assert 0<xd.float().mean()/255.<1
assert 0<xd.float().std()/255.<0.5
""", out_of_scope=MID_LEVEL_DL),
    Cell("normalize_from_batch", TRAIN_DS + NORMALIZE_SETUP + """\
test_close(x.mean(), 0.0, 1e-4)
assert x.std()>0.9, x.std()
""", out_of_scope=MID_LEVEL_DL),
    Cell("normalize_show_batch_types", TRAIN_DS + NORMALIZE_SETUP + """\
x,y = cast(x,Tensor),cast(y,Tensor) #Lose type of tensors (to emulate predictions)
test_ne(type(x), TensorImage)
tdl.show_batch((x,y), figsize=(1,1)) #Check that types are put back by dl.
""", out_of_scope=MID_LEVEL_DL),
]


@pytest.fixture(scope="module")
def mnist_tiny(tmp_path_factory):
    "MNIST_TINY offline, written once for the module: its folder"
    pytest.importorskip("sklearn")
    from PIL import Image
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("mnist_tiny")
    d = load_digits()
    counts = {("train", 3): 346, ("train", 7): 363, ("valid", 3): 20, ("valid", 7): 20}
    for (split, label), n in counts.items():
        imgs = d.images[d.target == label]
        (root/split/str(label)).mkdir(parents=True)
        for i in range(n):
            a = imgs[i % len(imgs)]
            Image.fromarray((a * 255 / 16).astype("uint8")).resize((28, 28)).save(root/split/str(label)/f"{i}.png")
    (root/"test").mkdir()
    for i in range(20):
        a = d.images[i]
        Image.fromarray((a * 255 / 16).astype("uint8")).resize((28, 28)).save(root/"test"/f"{i}.png")
    return root


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell, mnist_tiny):
    run_cell(lib, IMPORTS, cell, setup=f"_MNIST_TINY = {str(mnist_tiny)!r}\n" + SETUP)
