from minifastai.basics import CategoryBlock, DataBlock, GrandparentSplitter, parent_label
from minifastai.vision import ImageBlock, get_image_files


def labels(f):  # returns a list: several labels per image
    return [parent_label(f)]

for splitter, get_y in ((GrandparentSplitter(), labels), (GrandparentSplitter(valid_name="val"), parent_label)):
    try:
        DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, splitter=splitter,
                  get_y=get_y).dataloaders(path)
    except (TypeError, ValueError) as e:
        print(f"{type(e).__name__}: {str(e).replace(str(path), '<path>')}\n")
