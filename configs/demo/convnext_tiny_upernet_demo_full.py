# convnext_tiny_upernet, 16 classes, on the embedded demo data:
# ../convnext_tiny_upernet_artefact_full.py, demo-sized.
_base_ = ['../convnext_tiny_upernet_artefact_full.py', './_base_/demo.py']
crop_size = {{_base_.demo_crop_size}}
model = {{_base_.demo_upernet_full_model}}
train_dataloader = {{_base_.demo_train_dataloader}}
val_dataloader = {{_base_.demo_val_dataloader}}
test_dataloader = val_dataloader
train_cfg = {{_base_.demo_train_cfg}}
optim_wrapper = {{_base_.demo_optim_wrapper}}
param_scheduler = {{_base_.demo_param_scheduler}}
default_hooks = {{_base_.demo_default_hooks}}
