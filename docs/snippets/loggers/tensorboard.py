import matplotlib.pyplot as plt
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from minifastai import TensorBoardCallback

learn = make_learner()  # layer groups: body, middle, head
learn.fine_tune(2, cbs=TensorBoardCallback("runs/digits"))  # two fits, one TensorBoard run

# read the run back with TensorBoard's own reader: what its Scalars tab plots
ea = EventAccumulator("runs/digits", size_guidance={"scalars": 0})
ea.Reload()
print(sorted(t for t in ea.Tags()["scalars"] if not t.startswith("epoch/")))
print(sorted(t for t in ea.Tags()["scalars"] if t.startswith("epoch/")))
fig, ax = plt.subplots(figsize=(7, 3.5))
for name in learn.group_names:
    events = ea.Scalars(f"lr/{name}")
    peak = max(events, key=lambda e: e.value)
    print(f"lr/{name:7s} {len(events)} steps, peak {peak.value:.2e} at step {peak.step}")
    ax.plot([e.step for e in events], [e.value for e in events], label=f"lr/{name}")
ax.set(yscale="log", xlabel="step (training batches)", title="runs/digits: lr per layer group, as logged")
ax.legend()
fig.tight_layout()
print("epoch/valid_loss:", [(e.step, round(e.value, 4)) for e in ea.Scalars("epoch/valid_loss")])
