# fastai's tabular tutorial, unchanged but for the import line
procs = [Categorify, FillMissing, Normalize]
dls = TabularDataLoaders.from_df(df, ".", procs, cat_names, cont_names, "species", valid_idx=list(range(300, 344)),
                                 bs=32)
splits = RandomSplitter(valid_pct=0.2, seed=42)(range(len(df)))
to = TabularPandas(df, procs, cat_names, cont_names, y_names="species", y_block=CategoryBlock(), splits=splits)
print(len(to.train), len(to.valid), to.train.xs.shape, to.classes["island"])
dls = to.dataloaders(bs=32)
learn = tabular_learner(dls, metrics=accuracy)
learn.fit_one_cycle(3, 1e-2)
row, clas, probs = learn.predict(df.iloc[0])
row.show()
print(clas, probs.round(decimals=3))
