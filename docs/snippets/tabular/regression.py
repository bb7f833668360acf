reg_df = df.dropna(subset=["body_mass_g"]).assign(body_mass_kg=lambda d: d.body_mass_g / 1000)
reg_dls = TabularDataLoaders.from_df(reg_df, ["species", "island", "sex"],
                                     ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"],
                                     y_names="body_mass_kg", valid_pct=0.2, seed=42, bs=32)
reg = tabular_learner(reg_dls, y_range=(2.0, 7.0), metrics=rmse)  # float target: MSELoss
reg.fit_one_cycle(10, 1e-2)
preds, targs = reg.get_preds()
print(f"valid RMSE {reg.recorder.values[-1][2]:.3f} kg; predicting the mean: {targs.std(unbiased=False):.3f} kg")
value, raw, out = reg.predict(reg_df.iloc[0])
print(f"first penguin: predicted {value:.2f} kg, weighed {reg_df.iloc[0].body_mass_kg:.2f} kg")
