# CoaT-Lite-Small (conv + attention hybrid) + UPerNet on ARTeFACT binary.
_base_ = [
    './_base_/models/upernet_timm.py', './_base_/datasets/artefact_binary.py',
    './_base_/default_runtime.py', './_base_/schedules/schedule_60e.py'
]
crop_size = (512, 512)
model = dict(
    # CoaT is built for one input size: the crop (smaller windows are padded)
    backbone=dict(model_name='coat_lite_small', img_size=crop_size[0],
                  drop_path_rate=0.1),
    decode_head=dict(in_channels=[64, 128, 320, 512]))
# no weight decay on the class token and norms
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'cls_token': dict(decay_mult=0.), 'norm': dict(decay_mult=0.)}))
