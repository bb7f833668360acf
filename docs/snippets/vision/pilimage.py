from minifastai.vision import PILImage, get_image_files, show_image

fn = get_image_files(path / "valid")[0]
img = PILImage.create(fn)                 # fastai's: a PIL image (every PIL method works), in RGB
print(type(img).__name__, img.shape, img.mode, fn.parent.name)
ax = img.show(title=f"a {fn.parent.name}", figsize=(2, 2))
print(show_image(img.resize((64, 64)), ctx=ax, title=f"a {fn.parent.name}, 64 px") is ax)  # drawn over it
