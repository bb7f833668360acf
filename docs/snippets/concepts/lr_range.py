from minifastai import lr_range


def show(lrs):
    return "[" + ", ".join(f"{x:.0e}" for x in lrs) + "]"


for text, lr in [("1e-3", 1e-3), ("slice(1e-3)", slice(1e-3)), ("slice(1e-5, 1e-3)", slice(1e-5, 1e-3)),
                 ("[1e-4, 5e-4, 1e-3]", [1e-4, 5e-4, 1e-3])]:
    one = show(lr_range(lr, 1)) if not isinstance(lr, list) else "error: 3 values for 1 group"
    print(f"{text:<19} 3 groups: {show(lr_range(lr, 3)):<22} 1 group: {one}")
