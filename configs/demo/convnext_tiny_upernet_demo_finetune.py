# Fine-tune a trained demo model on corrected masks: the data root that
# tools/dataset_converters/from_annotations.py writes from a CVAT, COCO or Label
# Studio export (data/corrected_demo by default), starting from the trained
# weights, with one epoch at a tenth of the demo's learning rate (a correction
# set is small: the model should move towards it, not start over).
#
#   python tools/train.py configs/demo/convnext_tiny_upernet_demo_finetune.py \
#       --cfg-options load_from=work_dirs/convnext_tiny_upernet_demo/best_mIoU_epoch_12.pth
#
# load_from takes a work dir's checkpoint (tools/misc/find_checkpoint.py prints
# the best) or a model folder's model.safetensors; without it training starts
# from random weights, which is not a fine-tune, so it is refused here.
_base_ = ['./convnext_tiny_upernet_demo.py']
corrected_data_root = 'data/corrected_demo'
load_from = None
train_dataloader = dict(dataset=dict(data_root=corrected_data_root))
val_dataloader = dict(dataset=dict(data_root=corrected_data_root))
test_dataloader = val_dataloader
finetune_epochs = 1
train_cfg = dict(max_epochs=finetune_epochs, val_interval=1)
optim_wrapper = dict(optimizer=dict(lr=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=finetune_epochs, eta_min=1e-6, by_epoch=True,
         begin=0, end=finetune_epochs, convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=1))
require_load_from = True
