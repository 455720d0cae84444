# ConvNeXt-Tiny + UPerNet on ARTeFACT's 16 classes: ./convnext_tiny_upernet_artefact.py
# with the full label set and a class-weighted loss (./_base_/datasets/artefact_full.py).
_base_ = ['./convnext_tiny_upernet_artefact.py', './_base_/datasets/artefact_full.py']
label_mode = {{_base_.full_label_mode}}
num_classes = {{_base_.full_num_classes}}
train_dataloader = {{_base_.full_train_dataloader}}
val_dataloader = {{_base_.full_val_dataloader}}
test_dataloader = val_dataloader
model = dict(decode_head={{_base_.full_decode_head}})
