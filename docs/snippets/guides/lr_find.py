from minifastai import minimum, slide, steep, valley

learn = make_learner()
res = learn.lr_find(suggest_funcs=(valley, minimum, steep, slide))  # draws the plot below
print(res)
print("valley:", f"{res.valley:.2e}")
learn.fit_one_cycle(3, res.valley)  # the sweep left the model untouched: this trains from scratch
