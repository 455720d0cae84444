# The mmseg-native reference on the embedded demo data.
_base_ = ['./swin_tiny_upernet_mmseg_artefact.py', '../demo/_base_/demo.py']
crop_size = {{_base_.demo_crop_size}}
# demo_model's sizes; mmseg's Swin takes no `pretrained=False`: no init_cfg,
# so random init (no network here)
model = dict(_base_.demo_model, backbone=dict(init_cfg=None))
train_dataloader = {{_base_.demo_train_dataloader}}
val_dataloader = {{_base_.demo_val_dataloader}}
test_dataloader = val_dataloader
train_cfg = {{_base_.demo_train_cfg}}
optim_wrapper = {{_base_.demo_optim_wrapper}}
param_scheduler = {{_base_.demo_param_scheduler}}
default_hooks = {{_base_.demo_default_hooks}}
