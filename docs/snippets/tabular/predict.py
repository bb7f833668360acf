dls = TabularDataLoaders.from_df(df, cat_names=cat_names, cont_names=cont_names, y_names="species",
                                 valid_pct=0.2, seed=42, bs=32)
learn = tabular_learner(dls, metrics=accuracy)
learn.fit_one_cycle(8, 1e-2)
row, clas, probs = learn.predict(df.iloc[3])  # a Series, a one-row DataFrame or a dict
row.show()                                     # the inputs as the model saw them, and the prediction
print(clas, dls.vocab[clas], probs.round(decimals=3))
row, clas, probs = learn.predict({"island": "Biscoe", "sex": "male", "bill_length_mm": 48.0,
                                  "bill_depth_mm": 15.0, "flipper_length_mm": 220.0, "body_mass_g": 5400.0})
print(clas, dls.vocab[clas], probs.round(decimals=3))
new = pd.DataFrame({"island": ["Biscoe", "Atlantis"],   # 'Atlantis' was never seen -> '#na#'
                    "sex": ["male", None], "bill_length_mm": [48.0, np.nan],
                    "bill_depth_mm": [15.0, 18.5], "flipper_length_mm": [220.0, 190.0],
                    "body_mass_g": [5400.0, 3700.0]})  # no 'species' column
preds, targs = learn.get_preds(dl=dls.test_dl(new))
print(preds.argmax(1), targs)
path = learn.export("penguins.pth")
print(sorted(torch.load(path, weights_only=True)))  # plain data only
loaded = load_learner(path)
print(torch.allclose(loaded.get_preds(dl=loaded.dls.test_dl(new))[0], preds))
