# The seed's earlier baseline: ResNet-50 + U-Net decoder, same data/loss/schedule.
_base_ = [
    './_base_/models/unet_timm.py', './_base_/default_runtime.py',
    './_base_/schedules/schedule_60e.py'
]
model = dict(
    # timm's feature index 0 is ResNet's stride-2 stem; the four residual
    # stages (strides 4-32) are indices 1-4
    backbone=dict(model_name='resnet50', out_indices=(1, 2, 3, 4),
                  drop_path_rate=0.0))
