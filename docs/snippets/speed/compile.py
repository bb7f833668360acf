import torch

learn = make_learner(path=".")
learn.freeze()
learn.compile(backend="aot_eager")  # inductor (the default) on a GPU; aot_eager keeps this page quick on a CPU
learn.fine_tune(1)  # frozen, then unfrozen after compiling: every group trains in the second fit
print("recompiled after unfreezing:", learn.compiled_model.resets, "time(s)")

path = learn.save("compiled")
names = list(torch.load(path, weights_only=True)["model"])
print(names[:4], "...")  # plain names, no '_orig_mod.'
plain = make_learner(path=".")  # an uncompiled learner loads it
plain.load("compiled")
x = dls.valid.dataset.tensors[0][:256]
with torch.no_grad():
    same = torch.allclose(plain.model.eval()(x), learn.model.eval()(x), atol=1e-6)
print("uncompiled learner, same predictions:", same)
