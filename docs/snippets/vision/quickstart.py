from minifastai import accuracy
from minifastai.vision import (
                               ClassificationInterpretation,
                               ImageDataLoaders,
                               Resize,
                               aug_transforms,
                               mobilenet_v2,
                               vision_learner,
)

dls = ImageDataLoaders.from_folder(path, item_tfms=Resize(32), batch_tfms=aug_transforms(do_flip=False), bs=8)
learn = vision_learner(dls, mobilenet_v2, metrics=accuracy)  # ImageNet weights from the hub cache; body frozen
learn.fine_tune(2, base_lr=1e-2)
learn.recorder.plot_sched(log=True, figsize=(9, 2.6))  # the unfrozen phase, one line per layer group

interp = ClassificationInterpretation.from_learner(learn)
interp.plot_confusion_matrix(figsize=(3.6, 3.6))
print("most confused (actual, predicted, count):", interp.most_confused()[:3])
preds, targs = learn.tta()
print(f"accuracy with test-time augmentation: {accuracy(preds, targs):.3f}")
