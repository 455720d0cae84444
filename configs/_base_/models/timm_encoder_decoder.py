# The study's segmentor: a timm encoder (TimmFeatureBackbone) and a decode head
# (./upernet_timm.py, ./unet_timm.py) with the DiceFocal loss. It extends the
# dataset config because its training crop sizes the model: batches are padded
# to crop_size and inference slides crop_size windows.
_base_ = ['../datasets/artefact_binary.py']
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=_base_.crop_size)
model = dict(
    type='ArtSegEncoderDecoder',
    data_preprocessor=data_preprocessor,
    channels_last=True,  # the backbone's; see ArtSegEncoderDecoder
    backbone=dict(
        type='TimmFeatureBackbone',
        model_name=None,  # set by each encoder's config
        pretrained=True,  # ImageNet weights from the timm hub
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1),
    # what every decoder shares; in_channels=None: the backbone's channels
    # (timm's FeatureInfo), filled in by ArtSegEncoderDecoder
    decode_head=dict(
        in_channels=None,
        in_index=[0, 1, 2, 3],
        dropout_ratio=0.1,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='DiceFocalLoss', lambda_dice=0.7, lambda_focal=0.3,
            alpha=0.25, gamma=2.0)),
    train_cfg=dict(),
    # heritage scans are far larger than the crop: batched sliding windows,
    # each overlapping its neighbour by a third; fuse_conv_bn is read by
    # artseg_mm.acceleration.optimize_for_inference (tools/test.py, infer.py)
    test_cfg=dict(mode='slide', crop_size=_base_.crop_size,
                  stride=tuple(2 * s // 3 for s in _base_.crop_size),
                  batch_size=4, fuse_conv_bn=True))
