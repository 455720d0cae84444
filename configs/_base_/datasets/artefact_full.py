# ARTeFACT's 16 classes: Clean + 15 damage types (background ignored).
# A fragment for configs/*_artefact_full.py: each extends its binary model
# config and this file, and pulls in these `full_`-prefixed keys with
# {{_base_.full_...}} (prefixed so they do not collide with the binary config).
# The label set, and so num_classes, comes from
# artseg_mm/datasets/artefact_classes.py, never typed here.
_base_ = []  # first statement: keeps mmengine parsing this as a plain config
import artseg_mm.datasets.artefact_classes as _label_set  # noqa: E402

full_label_mode = 'full'
full_classes = _label_set.FULL_CLASSES
full_num_classes = len(full_classes)
# the converter's inverse-sqrt-frequency weights of the train split; checked
# against full_classes when the loss is built
full_class_weight = 'data/artefact/class_weights.json'
full_train_dataloader = dict(dataset=dict(label_mode=full_label_mode))
full_val_dataloader = dict(dataset=dict(label_mode=full_label_mode))
full_decode_head = dict(
    num_classes=full_num_classes,
    loss_decode=dict(class_weight=full_class_weight, classes=full_classes))
