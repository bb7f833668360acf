# Setup shared by the snippets on the tabular page: the Palmer penguins (344 rows, shipped with the
# palmerpenguins package: categorical columns and missing values).
import numpy as np
import pandas as pd
import torch
from palmerpenguins import load_penguins

from minifastai import accuracy, load_learner, rmse
from minifastai.tabular import (Categorify, CategoryBlock, FillMissing, Normalize, RandomSplitter, RegressionBlock,
                                TabularDataLoaders, TabularPandas, tabular_learner)

df = load_penguins()
cat_names = ["island", "sex"]
cont_names = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
