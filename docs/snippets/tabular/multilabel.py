from minifastai import accuracy_multi
from minifastai.tabular import MultiCategoryBlock

# three yes/no questions per penguin: one 0/1 column each
labels = ["heavy", "long_flippers", "on_biscoe"]
ml_df = df.dropna(subset=["body_mass_g", "flipper_length_mm"]).assign(
    heavy=lambda d: d.body_mass_g > 4200,
    long_flippers=lambda d: d.flipper_length_mm > 205,
    on_biscoe=lambda d: d.island == "Biscoe")
ml_to = TabularPandas(ml_df, [Categorify, FillMissing, Normalize],
                      cat_names=["species", "sex"],
                      cont_names=["bill_length_mm", "bill_depth_mm"], y_names=labels,
                      y_block=MultiCategoryBlock(encoded=True, vocab=labels),
                      splits=RandomSplitter(seed=42)(range(len(ml_df))))
ml_dls = ml_to.dataloaders(bs=32)
print(ml_dls.c, ml_dls.vocab, type(ml_dls.loss_func).__name__)
ml = tabular_learner(ml_dls, metrics=accuracy_multi)  # sigmoid per label, thresh 0.5
ml.fit_one_cycle(8, 1e-2)
row, clas, probs = ml.predict(ml_df.iloc[0])
print(clas, probs.round(decimals=2))
print(row.items[labels])
