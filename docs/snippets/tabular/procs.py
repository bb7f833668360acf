dls = TabularDataLoaders.from_df(df, cat_names=cat_names, cont_names=cont_names, y_names="species",
                                 valid_pct=0.2, seed=42, bs=32)
fill, cat, norm = dls.procs                     # always run in this order
print(fill.fill["bill_length_mm"], fill.na_cols)  # training rows' medians; columns that get a <col>_na flag
print(dls.classes["island"], dls.classes["sex"])
print(f"{norm.means['body_mass_g']:.2f} {norm.stds['body_mass_g']:.2f}")  # mean, std(ddof=0) + 1e-7
print(dls.cat_names)                            # x_cat's columns
print([t.dtype for t in dls.train.tensors])     # stored compactly: codes in a byte, targets in a byte
x_cat, x_cont, y = next(iter(dls.train))        # batches: int64, float32, int64 targets of shape (batch, 1)
print(x_cat.dtype, tuple(x_cat.shape), x_cont.dtype, tuple(x_cont.shape), y.dtype, tuple(y.shape), dls.n_inp)
