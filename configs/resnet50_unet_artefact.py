# The seed's earlier baseline: ResNet-50 + U-Net decoder, same data/loss/schedule.
_base_ = [
    './_base_/models/upernet_timm.py', './_base_/datasets/artefact_binary.py',
    './_base_/default_runtime.py', './_base_/schedules/schedule_60e.py'
]
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    # timm's feature index 0 is ResNet's stride-2 stem; the four residual
    # stages (strides 4-32) are indices 1-4
    backbone=dict(model_name='resnet50', out_indices=(1, 2, 3, 4),
                  drop_path_rate=0.0),
    decode_head=dict(
        _delete_=True,
        type='UNetHead',
        in_channels=[256, 512, 1024, 2048],
        in_index=[0, 1, 2, 3],
        decoder_channels=(256, 128, 64),  # 1/16, 1/8, 1/4 (logits at 1/4)
        channels=64,
        dropout_ratio=0.1,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='DiceFocalLoss', lambda_dice=0.7, lambda_focal=0.3,
            alpha=0.25, gamma=2.0)))
