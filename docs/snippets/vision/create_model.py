import torch

from minifastai.vision import create_timm_model, create_vision_model, mobilenet_v2

m = create_vision_model(mobilenet_v2, 5, n_in=1)  # pretrained: RGB filters summed
n_params = sum(p.numel() for p in m.parameters())
print(m(torch.zeros(2, 1, 32, 32)).shape, f"{n_params:,} parameters")
print(m[1])                                       # fastai's head
t, cfg = create_timm_model("resnet18", 5, pretrained=False, lin_first=True)
print(type(t[0]).__name__, cfg["architecture"], t(torch.zeros(2, 3, 32, 32)).shape)
