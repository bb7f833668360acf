print(learn.summary())
