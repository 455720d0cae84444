# Swin-Tiny (hierarchical ViT) + UPerNet on ARTeFACT binary, the seed's recipe.
_base_ = [
    './_base_/models/upernet_timm.py', './_base_/default_runtime.py',
    './_base_/schedules/schedule_60e.py'
]
model = dict(
    # Swin computes in linear layers on NHWC tokens: channels-last memory
    # would reach only its patch-embedding conv
    channels_last=False,
    backbone=dict(model_name='swin_tiny_patch4_window7_224', drop_path_rate=0.2))
# no weight decay on relative position tables either (as Swin)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'relative_position_bias_table': dict(decay_mult=0.),
    'absolute_pos_embed': dict(decay_mult=0.)}))
