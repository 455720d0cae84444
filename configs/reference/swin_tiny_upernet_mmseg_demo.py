# The mmseg-native reference on the embedded demo data.
_base_ = ['./swin_tiny_upernet_mmseg_artefact.py', '../demo/_base_/demo.py']
model = dict(
    backbone=dict(init_cfg=None),  # no network here: random init
    data_preprocessor=dict(size=(128, 128)),
    test_cfg=dict(mode='slide', crop_size=(128, 128), stride=(96, 96)))
train_dataloader = {{_base_.demo_train_dataloader}}
val_dataloader = {{_base_.demo_val_dataloader}}
test_dataloader = val_dataloader
train_cfg = {{_base_.demo_train_cfg}}
optim_wrapper = {{_base_.demo_optim_wrapper}}
param_scheduler = {{_base_.demo_param_scheduler}}
default_hooks = {{_base_.demo_default_hooks}}
