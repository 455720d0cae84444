# UPerNet: a timm encoder (TimmFeatureBackbone) + the seed's UPer decoder
# (PPM 1,2,3,6 + FPN 256 channels) + DiceFocal loss. Per-encoder configs set
# backbone.model_name and decode_head.in_channels (checked against the
# backbone's channels when the model is built).
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))
model = dict(
    type='ArtSegEncoderDecoder',
    data_preprocessor=data_preprocessor,
    channels_last=True,  # the backbone's; see ArtSegEncoderDecoder
    backbone=dict(
        type='TimmFeatureBackbone',
        model_name=None,
        pretrained=True,  # ImageNet weights from the timm hub
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1),
    decode_head=dict(
        type='UPerFeatureHead',
        in_channels=None,
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=256,
        # NNPACK Winograd for the 3x3 convs on large maps on CPU (plain
        # Conv2d elsewhere); the decoder holds 2/3 of the FLOPs
        conv_cfg=dict(type='WinogradConv2d'),
        dropout_ratio=0.1,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='DiceFocalLoss', lambda_dice=0.7, lambda_focal=0.3,
            alpha=0.25, gamma=2.0)),
    train_cfg=dict(),
    # heritage scans are far larger than the crop: batched sliding windows
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341),
                  batch_size=4, fuse_conv_bn=True))
