learn = vision_learner(dls, "resnet10t", pretrained=False, splitter="stages", metrics=accuracy)
learn.fit_one_cycle(1, 1e-3)
new = load_learner(learn.export())  # rebuilt from timm's registry: timm.create_model("resnet10t", pretrained=False)
print({k: v for k, v in new.export_info.items() if k in ("arch", "source", "model_kwargs", "splitter")})
print("groups:", new.group_names)
img = dls.valid.dataset.samples[0][0]
print("same prediction:", torch.allclose(new.predict(img)[2], learn.predict(img)[2], atol=1e-6))
