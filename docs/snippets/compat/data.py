from minifastai import set_seed

set_seed(42)
dls = DataLoaders.from_dsets(TensorDataset(x[:1500], y[:1500]), TensorDataset(x[1500:], y[1500:]), bs=64)
print(len(dls.train_ds), "items ->", len(dls.train), "training batches (the last partial batch is dropped)")
print(len(dls.valid_ds), "items ->", [len(b[1]) for b in dls.valid], "validation items per batch")
xb, yb = dls.one_batch()
print(xb.shape, yb[:8], dls.loss_func)
