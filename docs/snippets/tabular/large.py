# 300,000 rows written to parquet with an extra text column that no model needs
rng = np.random.default_rng(0)
n = 300_000
big = pd.DataFrame({"city": rng.choice([f"city{i}" for i in range(2000)], n),
                    "plan": rng.choice(["free", "pro", "team"], n),
                    "usage": rng.gamma(2.0, 50.0, n).astype("float32"),
                    "age": rng.normal(40, 12, n).astype("float32"),
                    "notes": rng.choice(["long free text " * 5 + str(i) for i in range(1000)], n)})
big.loc[rng.random(n) < 0.05, "age"] = np.nan
big["churn"] = np.where(big.usage < 40, "yes", "no")
big.to_parquet("big.parquet")
dls = TabularDataLoaders.from_parquet("big.parquet", cat_names=["city", "plan"], cont_names=["usage", "age"],
                                      y_names="churn", valid_pct=0.2, seed=0, bs=1024)
print(dls)
print([(t.dtype, tuple(t.shape)) for t in dls.train.tensors])
used = big[["city", "plan", "usage", "age", "churn"]].memory_usage(deep=True).sum()
stored = dls.train.nbytes + dls.valid.nbytes
print(f"the five used columns in pandas: {used / n:.0f} bytes per row; the loaders' tensors: {stored / n:.0f}")
