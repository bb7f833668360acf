import numpy as np
import pandas as pd

from minifastai.tabular import TabularDataLoaders, tabular_learner

rng = np.random.default_rng(0)
df = pd.DataFrame({"color": rng.choice(["red", "green", "blue"], 500), "size": rng.normal(size=500)})
df["label"] = np.where((df["color"] == "red") ^ (df["size"] > 0), "yes", "no")
tdls = TabularDataLoaders.from_df(df, cat_names="color", cont_names="size", y_names="label", seed=0,
                                  device="cpu")
tlearn = tabular_learner(tdls)
print("layer groups:", tlearn.n_groups)
print("slice(1e-4, 1e-2) gives:", tlearn.lr_range(slice(1e-4, 1e-2)))
tlearn.freeze()
