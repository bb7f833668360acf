from minifastai.callback.progress import format_rate, format_share

learn = make_learner()
learn.fit_one_cycle(2, 1e-2)
st = learn.progress.stats[-1]  # the last epoch's figures, as the table shows them
print(f"{format_rate(st['items_per_s'])} items per second, {format_share(st['data_wait'])} of the training "
      "time waiting for the next batch")
