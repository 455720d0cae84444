# Reference: mmseg's own UPerNet (UPerHead, 512 channels, FCN auxiliary head)
# with mmseg's native SwinTransformer, on the same data, loss and schedule as
# ../swin_tiny_upernet_artefact.py, so the timm wrapper path can be compared
# with the OpenMMLab-native one (tools/analysis_tools/compare.py, benchmark.py).
# The model dict is mmseg 1.2.2's configs/_base_/models/upernet_swin.py with
# swin-tiny's settings (inheriting it through `mmseg::` needs pkg_resources,
# which current setuptools no longer ships); only num_classes, the loss and
# the slide test settings differ.
_base_ = [
    '../_base_/datasets/artefact_binary.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_60e.py'
]
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_tiny_patch4_window7_224_20220317-1cdeb081.pth'  # noqa
norm_cfg = dict(type='SyncBN', requires_grad=True)
dice_focal = dict(type='DiceFocalLoss', lambda_dice=0.7, lambda_focal=0.3,
                  alpha=0.25, gamma=2.0)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
        seg_pad_val=255, size=_base_.crop_size),
    backbone=dict(
        type='SwinTransformer', pretrain_img_size=224, embed_dims=96,
        patch_size=4, window_size=7, mlp_ratio=4, depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24], strides=(4, 2, 2, 2), out_indices=(0, 1, 2, 3),
        qkv_bias=True, qk_scale=None, patch_norm=True, drop_rate=0.,
        attn_drop_rate=0., drop_path_rate=0.2, use_abs_pos_embed=False,
        act_cfg=dict(type='GELU'), norm_cfg=dict(type='LN', requires_grad=True),
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(
        type='UPerHead', in_channels=[96, 192, 384, 768], in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6), channels=512, dropout_ratio=0.1,
        num_classes=2, norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dice_focal),
    auxiliary_head=dict(
        type='FCNHead', in_channels=384, in_index=2, channels=256, num_convs=1,
        concat_input=False, dropout_ratio=0.1, num_classes=2,
        norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(dice_focal, loss_weight=0.4)),
    train_cfg=dict(),
    # the sliding windows of ../_base_/models/timm_encoder_decoder.py
    test_cfg=dict(mode='slide', crop_size=_base_.crop_size,
                  stride=tuple(2 * s // 3 for s in _base_.crop_size)))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'absolute_pos_embed': dict(decay_mult=0.),
    'relative_position_bias_table': dict(decay_mult=0.),
    'norm': dict(decay_mult=0.)}))
