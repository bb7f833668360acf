for kwargs in [dict(cat_names=["island"], cont_names=["bill_lenght_mm"], y_names="species"),
               dict(cat_names=["island"], cont_names=["bill_length_mm"], y_names="body_mass_g"),
               dict(cat_names=["island", "year"], cont_names=["year"], y_names="species"),
               dict(cat_names=[], cont_names=["island"], y_names="species")]:
    try:
        TabularDataLoaders.from_df(df, **kwargs)
    except ValueError as e:
        print(e)
try:
    TabularDataLoaders.from_df(df.iloc[:0], cat_names, cont_names, y_names="species")
except ValueError as e:
    print(e)
