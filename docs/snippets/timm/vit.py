# a ViT: keywords Learner does not take go to timm.create_model (here a 32-pixel, 2-block ViT-Tiny)
vit = vision_learner(dls, "vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2)
body, head = vit.model
x = torch.zeros(4, 3, 32, 32)
print("forward_features:", tuple(body.model.forward_features(x).shape), "(tokens) -> body:", tuple(body(x).shape))
print("head:", [type(m).__name__ for m in head])
print("groups:", vit.group_names)
