# resnet50_unet on the embedded demo data: ../resnet50_unet_artefact.py, demo-sized.
_base_ = ['../resnet50_unet_artefact.py', './_base_/demo.py']
crop_size = {{_base_.demo_crop_size}}
model = {{_base_.demo_model}}
train_dataloader = {{_base_.demo_train_dataloader}}
val_dataloader = {{_base_.demo_val_dataloader}}
test_dataloader = val_dataloader
train_cfg = {{_base_.demo_train_cfg}}
optim_wrapper = {{_base_.demo_optim_wrapper}}
param_scheduler = {{_base_.demo_param_scheduler}}
default_hooks = {{_base_.demo_default_hooks}}
