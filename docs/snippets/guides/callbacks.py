from minifastai import Callback


class GroupGradNorm(Callback):
    """The gradient norm of each layer group, at every training batch."""

    def before_fit(self):
        self.norms = []

    def after_backward(self):  # gradients are there, the optimizer has not stepped yet
        groups = self.learn.layer_groups  # not one of the loop's names: reach it through self.learn
        self.norms.append(torch.stack([torch.linalg.vector_norm(
            torch.stack([p.grad.norm() for p in g if p.grad is not None] or [torch.zeros(())])) for g in groups]))

    def after_fit(self):
        self.norms = torch.stack(self.norms).cpu().numpy()  # one device-to-host copy, at the end


learn = make_learner()
norms = GroupGradNorm()
learn.fit_one_cycle(2, 1e-2, cbs=norms)  # cbs= adds it for this fit only
print(norms.norms.shape)  # (training batches, layer groups)
for name, first, last in zip(learn.group_names, norms.norms[0], norms.norms[-1]):
    print(f"{name:<6} grad norm: first batch {first:.3f}, last batch {last:.3f}")
