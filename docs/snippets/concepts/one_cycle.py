from minifastai import combined_cos

lr_max, div, div_final, pct_start = 1e-3, 25.0, 1e5, 0.25  # fit_one_cycle's defaults
lr = combined_cos(pct_start, lr_max / div, lr_max, lr_max / div_final)
mom = combined_cos(pct_start, 0.95, 0.85, 0.95)
for i in (0, 25, 50, 99):  # 100 training batches in all
    print(f"iteration {i:>2}: lr {lr(i / 100):.4e}  mom {mom(i / 100):.4f}")
