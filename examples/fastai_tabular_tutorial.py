# ruff: noqa: F403, F405, I001, E501
# (fastai's code as the notebook has it: a star import, its import line, long lines)
"""fastai's tabular tutorial, "Tabular training" (nbs/44_tutorial.tabular.ipynb), on minifastai.

The code cells in order, as `# %%` cells, with fastai's code unchanged except for the points below.

What changed:
1. Imports: `from fastai.tabular.all import *` -> `from minifastai.tabular.all import *`. The Colab cell
   (`! [ -e /content ] && pip install -Uqq fastai`) is dropped. The writer's import is added
   (`from tabular_data import write_adult_sample`).
2. Data source: nothing is downloaded. `path = untar_data(URLs.ADULT_SAMPLE)` becomes
   `path = write_adult_sample('adult_sample')`, which writes a synthetic `adult.csv` into `./adult_sample`: 3,000
   rows with the ADULT_SAMPLE columns, a few missing values in `workclass`, `occupation`, `education-num` and
   `native-country`, and a learnable `salary` (see `tabular_data.py`). The cells then read it with the
   notebook's own lines.
3. Cells that only display something end in `print(...)`.
4. One import line is added: `from fastcore.xtras import *`. fastai's star import runs fastcore's `xtras`, which
   adds `Path.ls` to pathlib; minifastai adds nothing to any class, so a script that uses it imports fastcore's
   module itself.
The epochs are not reduced (`fit_one_cycle(1)`).
"""
# %%
#|hide
#skip
# Dropped (shell): `! [ -e /content ] && pip install -Uqq fastai  # upgrade fastai on colab`

# %%
from minifastai.tabular.all import *
from fastcore.xtras import *  # fastcore's Path.ls: fastai's star import brings it

from tabular_data import write_adult_sample  # data source: the offline writer (examples/tabular_data.py)

# %%
path = write_adult_sample('adult_sample')  # data source: instead of `path = untar_data(URLs.ADULT_SAMPLE)`
print(path.ls())

# %%
df = pd.read_csv(path/'adult.csv')
print(df.head())

# %%
dls = TabularDataLoaders.from_csv(path/'adult.csv', path=path, y_names="salary",
    cat_names = ['workclass', 'education', 'marital-status', 'occupation', 'relationship', 'race'],
    cont_names = ['age', 'fnlwgt', 'education-num'],
    procs = [Categorify, FillMissing, Normalize])

# %%
splits = RandomSplitter(valid_pct=0.2)(range_of(df))

# %%
to = TabularPandas(df, procs=[Categorify, FillMissing,Normalize],
                   cat_names = ['workclass', 'education', 'marital-status', 'occupation', 'relationship', 'race'],
                   cont_names = ['age', 'fnlwgt', 'education-num'],
                   y_names='salary',
                   splits=splits)

# %%
print(to.xs.iloc[:2])

# %%
dls = to.dataloaders(bs=64)

# %%
dls.show_batch()

# %%
learn = tabular_learner(dls, metrics=accuracy)

# %%
learn.fit_one_cycle(1)

# %%
learn.show_results()

# %%
row, clas, probs = learn.predict(df.iloc[0])

# %%
row.show()

# %%
print((clas, probs))

# %%
test_df = df.copy()
test_df.drop(['salary'], axis=1, inplace=True)
dl = learn.dls.test_dl(test_df)

# %%
print(learn.get_preds(dl=dl))

# %%
# ## `fastai` with Other Libraries
print(to.xs[:3])

# %%
X_train, y_train = to.train.xs, to.train.ys.values.ravel()
X_test, y_test = to.valid.xs, to.valid.ys.values.ravel()
