try:
    vision_learner(dls, "convnext_atom", pretrained=False)
except ValueError as e:
    print(e)
learn = vision_learner(dls, "resnet18", pretrained=False)  # a name both libraries have: torchvision's, and a warning
learn = vision_learner(dls, "timm/resnet18", pretrained=False)  # timm's
print(type(learn.model[0]).__name__, learn.export_info["source"])
