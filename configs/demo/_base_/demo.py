# The embedded demo (data/artefact_demo, made by tools/misc/make_demo_data.py):
# the same models, loss and augmentations as the real configs, on 128 px crops
# of the 256 px demo images and a schedule short enough for a CPU. Keys are
# prefixed `demo_` so they do not collide with the real config they extend;
# each configs/demo/*.py pulls them in with {{_base_.demo_...}}, its crop_size
# too: demo_crop_size is the one crop of every demo config.
demo_data_root = 'data/artefact_demo'
demo_crop_size = (128, 128)
demo_meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                  'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                  'reduce_zero_label', 'material', 'content')
demo_train_pipeline = [
    dict(type='LoadArtSegImageFromFile'),
    dict(type='LoadArtSegAnnotations'),
    dict(type='RandomCrop', crop_size=demo_crop_size),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='RandomRotate', prob=0.5, degree=20, pad_val=0, seg_pad_val=255),
    # brightness and contrast +-0.25, no colour jitter (mmseg's
    # PhotoMetricDistortion cannot switch hue off: hue_delta=0 crashes)
    dict(type='mmpretrain.ColorJitter', brightness=0.25, contrast=0.25),
    dict(type='mmpretrain.GaussianBlur', magnitude_range=(0.1, 1.0),
         magnitude_std='inf', prob=0.5),
    dict(type='PackSegInputs', meta_keys=demo_meta_keys),
]
# Loading in the main process: on a 2-core CPU a worker process beside the
# training's two threads made the steps slower (tools/analysis_tools/
# time_demo_training.py, table in docs/benchmarks.md). ArtSegRunner's loader then draws
# the augmentations one worker would, so the results are those of num_workers=1.
demo_train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    dataset=dict(data_root=demo_data_root, pipeline=demo_train_pipeline))
demo_val_dataloader = dict(num_workers=0, dataset=dict(data_root=demo_data_root))
demo_model = dict(
    backbone=dict(pretrained=False),  # no network here: random init
    data_preprocessor=dict(size=demo_crop_size),
    # windows overlapping by a quarter
    test_cfg=dict(mode='slide', crop_size=demo_crop_size,
                  stride=tuple(3 * s // 4 for s in demo_crop_size)))
# the UPerNet demo configs train on a CPU: NNPACK Winograd for the decoder's
# 3x3 convs on large maps (plain Conv2d elsewhere; the decoder holds 2/3 of the
# FLOPs). The study configs keep plain convs; inference gets them from
# artseg_mm.acceleration.optimize_for_inference.
demo_upernet_model = dict(demo_model, decode_head=dict(conv_cfg=dict(type='WinogradConv2d')))
demo_max_epochs = 12
demo_warmup_epochs = 1
demo_train_cfg = dict(max_epochs=demo_max_epochs, val_interval=4)
demo_optim_wrapper = dict(optimizer=dict(lr=1e-3))
demo_param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0,
         end=demo_warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=demo_max_epochs - demo_warmup_epochs,
         eta_min=5e-7, by_epoch=True, begin=demo_warmup_epochs,
         end=demo_max_epochs, convert_to_iter_based=True),
]
demo_default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=4, max_keep_ckpts=1))
# the 16-class demo configs (*_demo_full.py): the loss weights of the demo
# data, written with it by make_demo_data.py
demo_class_weight = demo_data_root + '/class_weights.json'
demo_full_model = dict(
    demo_model, decode_head=dict(loss_decode=dict(class_weight=demo_class_weight)))
demo_upernet_full_model = dict(
    demo_model, decode_head=dict(conv_cfg=dict(type='WinogradConv2d'),
                                 loss_decode=dict(class_weight=demo_class_weight)))
