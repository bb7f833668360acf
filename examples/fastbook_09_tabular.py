# ruff: noqa: F401, F403, F405, E501, E703, I001
# (fastai's code as the notebook has it: a star import, its import lines, long lines and a semicolon)
"""fastbook chapter 9, "Tabular Modeling Deep Dive" (09_tabular.ipynb): the data preparation and the neural network.

The code cells in order, as `# %%` cells, with fastai's code unchanged except for the points below. The cells
follow the current revision of the notebook's code (fastbook's `clean/09_tabular.ipynb`; the revision of
`09_tabular.ipynb` stored with outputs is older: after `cont_cat_split` it runs `cont_nn.append('saleElapsed');
cat_nn.remove('saleElapsed')`, which raises ValueError on fastai 2.8.12 itself, because `add_datepart` now makes
`saleElapsed` a float column, so `cont_cat_split` already puts it in `cont_nn`).

What changed:
1. Imports: `from fastai.tabular.all import *` -> `from minifastai.tabular.all import *`. The setup cell
   (`pip install`, `fastbook.setup_book()`), `from fastbook import *` and `from dtreeviz.trees import *` are
   dropped. So are the Kaggle cells (`creds`, `cred_path`, `from kaggle import api` and the download), each with
   a comment. The writer's import is added (`from tabular_data import write_bulldozers`).
2. Data source: nothing is downloaded. In the `comp = 'bluebook-for-bulldozers'` cell,
   `path = write_bulldozers(Path(comp))` writes a synthetic `TrainAndValid.csv` and `Test.csv` (4,000 + 500 rows,
   the columns the cells use; see `tabular_data.py`) into `./bluebook-for-bulldozers`. fastai's
   `URLs.path(comp)` points at `~/.fastai/archive/`, and the script writes nothing outside the working folder.
   The cells then read those CSVs with the notebook's own `pd.read_csv` lines.
3. Cells that only display something end in `print(...)`. Cells that only plot or draw trees (`draw_tree`,
   `dtreeviz`, `plot_fi`, `cluster_columns`, histograms, partial dependence, `waterfall`) are dropped with
   the decision-tree and random-forest sections.
4. Skipped: the decision-tree and random-forest sections, except the cells the network's part needs.
   Those are the `TabularPandas` cells, `xs, y`, the `YearMade` fix, `r_mse`/`m_rmse`, `rf`, the feature
   importances that pick the columns (`to_keep`, `to_drop`, `xs_final`), `time_vars`, `filt`, and the random
   forest `m` that the ensembling reuses. Each skipped cell is listed where it stood.
5. `df_nn['ProductSize'].cat.set_categories(sizes, ordered=True, inplace=True)`: pandas 2.0 dropped `inplace`
   (TypeError on fastai too). The line is kept, commented out, and followed by the assignment form that the
   notebook's own earlier cell uses.
6. One import line is added: `from fastcore.xtras import *`. fastai's star import runs fastcore's `xtras`, which
   adds `Path.ls` to pathlib and gives `save_pickle`/`load_pickle`; minifastai adds nothing to any class, so a
   script that uses them imports fastcore's module itself.
No epochs are reduced: on 4,000 rows `fit_one_cycle(5, 1e-2)` takes a few seconds.
"""
# %%
# Dropped: `! [ -e /content ] && pip install -Uqq fastbook kaggle waterfallcharts treeinterpreter dtreeviz==1.4.1`,
# `import fastbook`, `fastbook.setup_book()` (shell and fastbook setup).

# %%
#hide
# Dropped: `from fastbook import *` (fastbook's helpers) and `from dtreeviz.trees import *` (tree drawings).
from pandas.api.types import is_string_dtype, is_numeric_dtype, is_categorical_dtype
from minifastai.tabular.all import *
from fastcore.xtras import *  # fastcore's Path.ls, save_pickle, load_pickle: fastai's star import brings them
from sklearn.ensemble import RandomForestRegressor
from sklearn.tree import DecisionTreeRegressor
from IPython.display import Image, display_svg, SVG

from tabular_data import write_bulldozers  # data source: the offline writer (examples/tabular_data.py)

pd.options.display.max_rows = 20
pd.options.display.max_columns = 8

# %%
# Dropped (Kaggle): `creds = ''`

# %%
# Dropped (Kaggle): the `cred_path = Path('~/.kaggle/kaggle.json')...` cell that writes the Kaggle credentials.

# %%
comp = 'bluebook-for-bulldozers'
path = URLs.path(comp)
path = write_bulldozers(Path(comp))  # data source: synthetic CSVs in ./bluebook-for-bulldozers, no download
print(path)

# %%
#hide
Path.BASE_PATH = path

# %%
# Dropped (Kaggle): `from kaggle import api`, and `if not path.exists(): path.mkdir(parents=true);
# api.competition_download_cli(comp, path=path); shutil.unpack_archive(...)` (the CSVs were written above).
print(path.ls(file_type='text'))

# %%
df = pd.read_csv(path/'TrainAndValid.csv', low_memory=False)

# %%
print(df.columns)

# %%
print(df['ProductSize'].unique())

# %%
sizes = 'Large','Large / Medium','Medium','Small','Mini','Compact'

# %%
df['ProductSize'] = df['ProductSize'].astype('category')
df['ProductSize'] = df['ProductSize'].cat.set_categories(sizes, ordered=True)

# %%
dep_var = 'SalePrice'

# %%
df[dep_var] = np.log(df[dep_var])

# %%
# ## Decision Trees
# ### Handling Dates
df = add_datepart(df, 'saledate')

# %%
df_test = pd.read_csv(path/'Test.csv', low_memory=False)
df_test = add_datepart(df_test, 'saledate')

# %%
print(' '.join(o for o in df.columns if o.startswith('sale')))

# %%
# ### Using TabularPandas and TabularProc
procs = [Categorify, FillMissing]

# %%
cond = (df.saleYear<2011) | (df.saleMonth<10)
train_idx = np.where( cond)[0]
valid_idx = np.where(~cond)[0]

splits = (list(train_idx),list(valid_idx))

# %%
cont,cat = cont_cat_split(df, 1, dep_var=dep_var)

# %%
to = TabularPandas(df, procs, cat, cont, y_names=dep_var, splits=splits)

# %%
print(len(to.train),len(to.valid))

# %%
to.show(3)

# %%
to1 = TabularPandas(df, procs, ['state', 'ProductGroup', 'Drive_System', 'Enclosure'], [], y_names=dep_var, splits=splits)
to1.show(3)

# %%
print(to.items.head(3))

# %%
print(to1.items[['state', 'ProductGroup', 'Drive_System', 'Enclosure']].head(3))

# %%
print(to.classes['ProductSize'])

# %%
save_pickle(path/'to.pkl',to)

# %%
# ### Creating the Decision Tree
#hide
to = load_pickle(path/'to.pkl')

# %%
xs,y = to.train.xs,to.train.y
valid_xs,valid_y = to.valid.xs,to.valid.y

# %%
# Skipped (decision tree): `m = DecisionTreeRegressor(max_leaf_nodes=4); m.fit(xs, y);`
# Skipped (drawing, fastbook/dtreeviz): `draw_tree(m, xs, ...)` and `dtreeviz(m, xs.iloc[samp_idx], ...)`.

# %%
xs.loc[xs['YearMade']<1900, 'YearMade'] = 1950
valid_xs.loc[valid_xs['YearMade']<1900, 'YearMade'] = 1950

# %%
# Skipped (decision tree): `m = DecisionTreeRegressor(max_leaf_nodes=4).fit(xs, y); dtreeviz(...)`,
# `m = DecisionTreeRegressor(); m.fit(xs, y);`

# %%
def r_mse(pred,y): return round(math.sqrt(((pred-y)**2).mean()), 6)
def m_rmse(m, xs, y): return r_mse(m.predict(xs), y)

# %%
# Skipped (decision tree): `m_rmse(m, xs, y)`, `m_rmse(m, valid_xs, valid_y)`, `m.get_n_leaves(), len(xs)`,
# `m = DecisionTreeRegressor(min_samples_leaf=25) ...`, `m.get_n_leaves()`.
# ### Categorical Variables
# ## Random Forests
# Skipped (a comment-only cell): `# pip install —pre -f https://sklearn-nightly.scdn8.secure.raxcdn.com ...`

# %%
# ### Creating a Random Forest
def rf(xs, y, n_estimators=40, max_samples=200_000,
       max_features=0.5, min_samples_leaf=5, **kwargs):
    return RandomForestRegressor(n_jobs=-1, n_estimators=n_estimators,
        max_samples=max_samples, max_features=max_features,
        min_samples_leaf=min_samples_leaf, oob_score=True).fit(xs, y)

# %%
m = rf(xs, y);

# %%
# Skipped (random forest): `m_rmse(m, xs, y), m_rmse(m, valid_xs, valid_y)`,
# `preds = np.stack([t.predict(valid_xs) for t in m.estimators_])`, `r_mse(preds.mean(0), valid_y)`,
# `plt.plot([r_mse(preds[:i+1].mean(0), valid_y) for i in range(40)]);`
# ### Out-of-Bag Error: `r_mse(m.oob_prediction_, y)`
# ## Model Interpretation
# ### Tree Variance for Prediction Confidence: `preds = np.stack(...)`, `preds.shape`, `preds_std = preds.std(0)`,
# `preds_std[:5]`

# %%
# ### Feature Importance
def rf_feat_importance(m, df):
    return pd.DataFrame({'cols':df.columns, 'imp':m.feature_importances_}
                       ).sort_values('imp', ascending=False)

# %%
fi = rf_feat_importance(m, xs)
print(fi[:10])

# %%
# Skipped (plot): `def plot_fi(fi): ...; plot_fi(fi[:30]);`

# %%
# ### Removing Low-Importance Variables
to_keep = fi[fi.imp>0.005].cols
print(len(to_keep))

# %%
xs_imp = xs[to_keep]
valid_xs_imp = valid_xs[to_keep]

# %%
# Skipped (random forest): `m = rf(xs_imp, y)`, `m_rmse(m, xs_imp, y), m_rmse(m, valid_xs_imp, valid_y)`,
# `len(xs.columns), len(xs_imp.columns)`, `plot_fi(rf_feat_importance(m, xs_imp));`
# ### Removing Redundant Features
# Skipped (fastbook's plot): `cluster_columns(xs_imp)`

# %%
def get_oob(df):
    m = RandomForestRegressor(n_estimators=40, min_samples_leaf=15,
        max_samples=50000, max_features=0.5, n_jobs=-1, oob_score=True)
    m.fit(df, y)
    return m.oob_score_

# %%
# Skipped (random forest): `get_oob(xs_imp)`, `{c:get_oob(xs_imp.drop(c, axis=1)) for c in (...)}`

# %%
to_drop = ['saleYear', 'ProductGroupDesc', 'fiBaseModel', 'Grouser_Tracks']
print(get_oob(xs_imp.drop(to_drop, axis=1)))

# %%
xs_final = xs_imp.drop(to_drop, axis=1)
valid_xs_final = valid_xs_imp.drop(to_drop, axis=1)

# %%
save_pickle(path/'xs_final.pkl', xs_final)
save_pickle(path/'valid_xs_final.pkl', valid_xs_final)

# %%
xs_final = load_pickle(path/'xs_final.pkl')
valid_xs_final = load_pickle(path/'valid_xs_final.pkl')

# %%
# Skipped (random forest): `m = rf(xs_final, y); m_rmse(m, xs_final, y), m_rmse(m, valid_xs_final, valid_y)`
# ### Partial Dependence, Data Leakage, Tree Interpreter: skipped (plots, `plot_partial_dependence`,
# `treeinterpreter`, `waterfall_chart`).
# ## Extrapolation and Neural Networks
# ### The Extrapolation Problem: skipped (`np.random.seed(42)`, `x_lin`/`y_lin`, `m_lin`, plots).
# ### Finding Out-of-Domain Data: skipped (`df_dom`, `is_valid`, `rf(df_dom, is_valid)`, and the loop that
# drops 'SalesID', 'saleElapsed' and 'MachineID' in turn).

# %%
time_vars = ['SalesID','MachineID']
xs_final_time = xs_final.drop(time_vars, axis=1)
valid_xs_time = valid_xs_final.drop(time_vars, axis=1)

m = rf(xs_final_time, y)
print(m_rmse(m, valid_xs_time, valid_y))

# %%
# Skipped (plot): `xs['saleYear'].hist();`

# %%
filt = xs['saleYear']>2004
xs_filt = xs_final_time[filt]
y_filt = y[filt]

# %%
m = rf(xs_filt, y_filt)
print(m_rmse(m, xs_filt, y_filt), m_rmse(m, valid_xs_time, valid_y))

# %%
# ### Using a Neural Network
df_nn = pd.read_csv(path/'TrainAndValid.csv', low_memory=False)
df_nn['ProductSize'] = df_nn['ProductSize'].astype('category')
# df_nn['ProductSize'].cat.set_categories(sizes, ordered=True, inplace=True)  # pandas >= 2: no `inplace`
df_nn['ProductSize'] = df_nn['ProductSize'].cat.set_categories(sizes, ordered=True)  # the notebook's earlier form
df_nn[dep_var] = np.log(df_nn[dep_var])
df_nn = add_datepart(df_nn, 'saledate')

# %%
df_nn_final = df_nn[list(xs_final_time.columns) + [dep_var]]

# %%
cont_nn,cat_nn = cont_cat_split(df_nn_final, max_card=9000, dep_var=dep_var)

# %%
print(cont_nn)

# %%
print(df_nn_final[cat_nn].nunique())

# %%
xs_filt2 = xs_filt.drop('fiModelDescriptor', axis=1)
valid_xs_time2 = valid_xs_time.drop('fiModelDescriptor', axis=1)
m2 = rf(xs_filt2, y_filt)
print(m_rmse(m2, xs_filt2, y_filt), m_rmse(m2, valid_xs_time2, valid_y))

# %%
cat_nn.remove('fiModelDescriptor')

# %%
procs_nn = [Categorify, FillMissing, Normalize]
to_nn = TabularPandas(df_nn_final, procs_nn, cat_nn, cont_nn,
                      splits=splits, y_names=dep_var)

# %%
dls = to_nn.dataloaders(1024)

# %%
y = to_nn.train.y
print(y.min(),y.max())

# %%
learn = tabular_learner(dls, y_range=(8,12), layers=[500,250],
                        n_out=1, loss_func=F.mse_loss)

# %%
print(learn.lr_find())

# %%
learn.fit_one_cycle(5, 1e-2)

# %%
preds,targs = learn.get_preds()
print(r_mse(preds,targs))

# %%
learn.save('nn')

# %%
# ### Sidebar: fastai's Tabular Classes
# ### End sidebar
# ## Ensembling
rf_preds = m.predict(valid_xs_time)
ens_preds = (to_np(preds.squeeze()) + rf_preds) /2

# %%
print(r_mse(ens_preds,valid_y))

# %%
# ### Boosting, Combining Embeddings with Other Methods, Conclusion, Questionnaire: no code.
