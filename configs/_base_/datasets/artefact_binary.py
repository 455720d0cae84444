# ARTeFACT, binary (clean vs damage: the seed's setting), 512x512 training crops.
# data/artefact is written by tools/dataset_converters/artefact.py (see data/README.md).
dataset_type = 'ARTeFACTDataset'
data_root = 'data/artefact'
label_mode = 'binary'
crop_size = (512, 512)
meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
             'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label',
             'material', 'content')
train_pipeline = [
    dict(type='LoadArtSegImageFromFile'),
    dict(type='LoadArtSegAnnotations'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='RandomRotate', prob=0.5, degree=20, pad_val=0, seg_pad_val=255),
    # brightness and contrast +-0.25, no colour jitter (mmseg's
    # PhotoMetricDistortion cannot switch hue off: hue_delta=0 crashes)
    dict(type='mmpretrain.ColorJitter', brightness=0.25, contrast=0.25),
    # the seed's small Gaussian blur (sigma 0.1..1.0 px, about a 4 px kernel)
    dict(type='mmpretrain.GaussianBlur', magnitude_range=(0.1, 1.0),
         magnitude_std='inf', prob=0.5),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadArtSegImageFromFile'),
    dict(type='LoadArtSegAnnotations'),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
# test-time augmentation (tools/test.py --tta, tta_model in default_runtime.py): each
# image at three scales, each also flipped, softmax averaged. The scales stay near 1: the
# sliding windows of a large scan then see damage at the size it was trained on.
tta_scales = [0.75, 1.0, 1.25]
tta_pipeline = [
    dict(type='LoadArtSegImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in tta_scales],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadArtSegAnnotations')],
        [dict(type='PackSegInputs', meta_keys=meta_keys)],
    ]),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    # Not persistent: workers are reseeded each epoch (seeded_worker_init_fn),
    # so a resumed run draws the augmentations an uninterrupted run draws.
    persistent_workers=False,
    worker_init_fn=dict(type='seeded_worker_init_fn'),
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        label_mode=label_mode,
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        label_mode=label_mode,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ArtSegMetric')
test_evaluator = val_evaluator
