from minifastai.basics import CategoryBlock, DataBlock, GrandparentSplitter, parent_label
from minifastai.vision import ImageBlock, Resize, get_image_files

digits = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, splitter=GrandparentSplitter(),
                   get_y=parent_label, item_tfms=Resize(32))
_ = digits.summary(path)  # prints each step for the first item, then one batch
