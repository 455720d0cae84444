# Swin-Tiny (hierarchical ViT) + UPerNet on ARTeFACT binary, the seed's recipe.
_base_ = [
    './_base_/models/upernet_timm.py', './_base_/datasets/artefact_binary.py',
    './_base_/default_runtime.py', './_base_/schedules/schedule_60e.py'
]
model = dict(
    # Swin computes in linear layers on NHWC tokens: a channels-last backbone
    # has only its patch-embedding conv to speed up; measured no gain
    channels_last=False,
    backbone=dict(model_name='swin_tiny_patch4_window7_224', drop_path_rate=0.2),
    decode_head=dict(in_channels=[96, 192, 384, 768]))
# AdamW without weight decay on relative position tables and norms (as Swin)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'relative_position_bias_table': dict(decay_mult=0.),
    'absolute_pos_embed': dict(decay_mult=0.),
    'norm': dict(decay_mult=0.)}))
