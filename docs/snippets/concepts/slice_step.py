learn = make_learner()
try:
    learn.fit_one_cycle(1, slice(1e-5, 1e-3, 2))
except ValueError as e:
    print("ValueError:", e)
