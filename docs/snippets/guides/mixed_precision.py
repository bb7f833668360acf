learn = make_learner().to_bf16()  # bfloat16 autocast: no scaler needed, runs on CPU too
learn.fit_one_cycle(2, 1e-2)
preds, targs = learn.get_preds()
print(learn.mixed_precision, "| weights:", learn.model[0].weight.dtype, "| predictions:", preds.dtype)

learn = make_learner().to_fp16(init_scale=2.0**24)  # float16 + GradScaler, with a too-large first scale
learn.fit_one_cycle(2, 1e-2)
mp = learn.mixed_precision
steps = int(learn.opt.state[learn.model[0].weight]["step"])
print(f"skipped steps: {mp.skipped_steps} at training batches {mp.skipped_at}; the scale is now {mp.scale:g}")
print(f"{len(learn.recorder.lrs)} training batches, {steps} optimizer steps")
