try:
    vision_learner(dls, "convnext_atom", pretrained=False)
except ValueError as e:
    print(e)
learn = vision_learner(dls, "resnet18", pretrained=False)  # a name both libraries have: timm's, as in fastai
print(type(learn.model[0]).__name__, learn.export_info["source"])
learn = vision_learner(dls, resnet18, pretrained=False)  # the builder (or "torchvision/resnet18"): torchvision's
print(type(learn.model[0]).__name__, learn.export_info["source"])
