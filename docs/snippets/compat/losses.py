import torch
from torch import nn

from minifastai import BCEWithLogitsLossFlat, CrossEntropyLossFlat, MSELossFlat

loss = CrossEntropyLossFlat()
logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
probs = loss.activation(logits)  # what learn.get_preds returns with this loss
print(loss, "| loss", f"{loss(logits, torch.tensor([0, 2])):.4f}", "| decodes", loss.decodes(probs))

multi = BCEWithLogitsLossFlat(thresh=0.3)  # multi-label: one sigmoid per label
print(multi.decodes(multi.activation(torch.tensor([[1.0, -1.0, -0.5]]))))

pred, targ = torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([1.0, 3.0, 3.0])  # (N, 1) outputs, (N,) targets
print("MSELossFlat", MSELossFlat()(pred, targ).item(), "| nn.MSELoss (broadcasts to 3x3)", nn.MSELoss()(pred, targ).item())
