import pandas as pd

from minifastai.tabular import add_datepart, cont_cat_split, df_shrink

sales = pd.DataFrame({"saledate": ["2019-12-31", "2020-02-29", "2021-07-04"], "store": [3, 7, 3],
                      "units": [12, 40, 7], "price": [9.5, 3.25, 12.0]})
sales = add_datepart(sales, "saledate")          # saleYear ... saleIs_year_start, saleElapsed
print(list(sales.columns))
print(cont_cat_split(sales, max_card=2, dep_var="price"))
small = df_shrink(sales, int2uint=True)
print(dict(small.dtypes.astype(str).head(6)), sales.memory_usage().sum(), "->", small.memory_usage().sum(), "bytes")
