shuffled = DataLoaders.from_dsets(TensorDataset(x[:1500], y[torch.randperm(1500)]), bs=64, device="cpu")
learn = Learner(shuffled, make_model(), nn.CrossEntropyLoss())  # labels shuffled: nothing to learn
res = learn.lr_find()
print(res)
