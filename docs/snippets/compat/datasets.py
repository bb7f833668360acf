from minifastai.basics import Datasets, TfmdDL, Transform


class Add1(Transform):           # encodes on the way in, decodes on the way out
    def encodes(self, x): return x + 1
    def decodes(self, x): return x - 1


class DoubledMSE(nn.MSELoss):    # a loss with fastai's activation and decodes
    def activation(self, x): return x + 1
    def decodes(self, x): return 2 * x


ds = Datasets(torch.arange(50.0), tfms=[[], [Add1()]])  # item i: (i, i + 1)
print(ds, ds[3])
dl = TfmdDL(ds, bs=16, shuffle=True)
dls = DataLoaders(dl, dl.new(shuffle=False), device="cpu")
learn = Learner(dls, nn.Linear(1, 1), DoubledMSE())
learn.model = nn.Sequential()    # the identity, so that the numbers are easy to follow
full_dec, dec, pred = learn.predict(torch.tensor([2.0]))
print("prediction", pred, "-> loss decodes", dec, "-> target pipeline decodes", full_dec)
print(dl.decode_batch(next(iter(dl.new(shuffle=False))), max_n=3))
preds, targs = learn.tta(n=2)    # any Learner: a loader without augmentations is read n times as it is
print("tta", preds[:3], "targets", targs[:3])
