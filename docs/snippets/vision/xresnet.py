from minifastai.vision import ImageDataLoaders, Resize, vision_learner, xresnet18

dls = ImageDataLoaders.from_folder(path, item_tfms=Resize(32), bs=32, device="cpu")
learn = vision_learner(dls, xresnet18, pretrained=False)   # fastai's xresnet: no published weights
print(learn.group_names, [sum(p.numel() for p in g) for g in learn.layer_groups])
print(learn.model[0][:3])                                    # the stem: fastai's first layer group
