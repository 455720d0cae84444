# The seed's recipe: 60 epochs, AdamW lr 3e-4, 8 linear warm-up epochs, cosine to 5e-7.
# fused=True: one multi-tensor kernel per step (CPU and CUDA) instead of a loop
# over ~200 parameters; the same update, faster
optimizer = dict(type='AdamW', lr=3e-4, betas=(0.9, 0.999), weight_decay=0.01,
                 fused=True)
# fp16 AMP with loss scaling on CUDA; fp32 on a CPU (cpu_dtype='bfloat16' for bf16).
optim_wrapper = dict(
    type='AutoAmpOptimWrapper',
    optimizer=optimizer,
    # no weight decay on normalisation layers; bypass_duplicate: one group per
    # parameter where timm registers a module twice (CoaT's position encoders)
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)},
                       bypass_duplicate=True))
warmup_epochs = 8
max_epochs = 60
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=5e-7, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # every 10 epochs + the best by mIoU; weights_only-safe, kill-safe files
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=True, interval=10,
                    save_best='mIoU', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # one overlay per test image with --show-dir
    visualization=dict(type='ArtSegVisualizationHook'))
