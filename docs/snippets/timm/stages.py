from minifastai.vision import convnext_tiny, efficientnet_b0, mobilenet_v2, resnet50

for arch in ["convnext_atto", "resnet10t", "timm/efficientnet_b0", resnet50, mobilenet_v2, efficientnet_b0,
             convnext_tiny]:
    with torch.device("meta"):  # only the structure is needed here: nothing is allocated
        learn = vision_learner(dls, arch, pretrained=False, splitter="stages")
    name = arch if isinstance(arch, str) else f"{arch.__name__} (torchvision)"
    print(f"{name:<30} {learn.n_groups:>2} groups: {', '.join(learn.group_names)}")
