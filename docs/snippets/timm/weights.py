# a weights file as timm saves it (here: random weights written by torch.save; any timm state dict works,
# .pth, .bin or .safetensors, classifier included or not)
torch.save(timm.create_model("convnext_atto").state_dict(), "convnext_atto.pth")
learn = vision_learner(dls, "convnext_atto", weights="convnext_atto.pth", metrics=accuracy)
body, head = learn.model
file = torch.load("convnext_atto.pth", weights_only=True)
print(type(body).__name__, "over", type(body.model).__name__, "| needs_pool:", body.needs_pool)
print("every body tensor is the file's:", all(torch.equal(t, file[k]) for k, t in body.model.state_dict().items()))
print("file keys not in the body:", sorted(set(file) - set(body.model.state_dict())))
print("normalization (timm's pretrained_cfg):", dls.pipeline.norm.mean, dls.pipeline.norm.std)
print("head:", [type(m).__name__ for m in head])
print("groups:", learn.group_names, "| frozen body:", not body.model.stem[0].weight.requires_grad)
