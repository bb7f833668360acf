reg_df = df.dropna(subset=["body_mass_g"]).assign(body_mass_kg=lambda d: d.body_mass_g / 1000)
reg_dls = TabularDataLoaders.from_df(reg_df, cat_names=["species", "island", "sex"],
                                     cont_names=["bill_length_mm", "bill_depth_mm", "flipper_length_mm"],
                                     y_names="body_mass_kg", valid_pct=0.2, seed=42, bs=32)
reg = tabular_learner(reg_dls, y_range=(2.0, 7.0), metrics=rmse)  # float target: MSE
reg.fit_one_cycle(10, 1e-2)
preds, targs = reg.get_preds()
print(preds.shape, targs.shape)  # (rows, 1) both, as fastai's
print(f"valid RMSE {reg.validate()[1]:.3f} kg; predicting the mean: {targs.std(unbiased=False):.3f} kg")
row, pred, _ = reg.predict(reg_df.iloc[0])
print(f"first penguin: predicted {float(pred[0]):.2f} kg, weighed {reg_df.iloc[0].body_mass_kg:.2f} kg")
