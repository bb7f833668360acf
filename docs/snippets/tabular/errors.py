for kwargs in [dict(cat_names=["island"], cont_names=["bill_lenght_mm"], y_names="species"),
               dict(cat_names=["island"], cont_names=["bill_length_mm"], y_names="body_mass_g"),
               dict(cat_names=["island", "year"], cont_names=["year"], y_names="species"),
               dict(cat_names=[], cont_names=["island"], y_names="species")]:
    try:
        TabularDataLoaders.from_df(df, **kwargs)
    except ValueError as e:
        print(e)
for bad in (df.iloc[:0], df.iloc[:1], df.assign(bill_depth_mm=df.bill_depth_mm.replace(18.7, np.inf))):
    try:
        TabularDataLoaders.from_df(bad, cat_names=cat_names, cont_names=cont_names, y_names="species")
    except ValueError as e:
        print(e)
try:
    TabularDataLoaders.from_df(df, cat_names, cont_names, "species")  # minifastai's old argument order
except TypeError as e:
    print(e)
