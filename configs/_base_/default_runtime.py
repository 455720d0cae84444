# Runtime settings shared by every config (mirrors mmseg's _base_/default_runtime.py).
default_scope = 'mmseg'
# Our registered modules; also lets mmseg's own tools/train.py run these configs.
custom_imports = dict(imports=['artseg_mm'], allow_failed_imports=False)
# mmengine's Runner; the config dump and per-parameter optimizer lines go to the
# log file only
runner_type = 'ArtSegRunner'
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
# A fixed seed, reseeded per epoch so that --resume reproduces the same run.
randomness = dict(seed=0)
custom_hooks = [dict(type='EpochSeedHook')]
tta_model = dict(type='SegTTAModel')
