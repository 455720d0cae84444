# CoaT-Lite-Small (conv + attention hybrid) + UPerNet on ARTeFACT binary.
_base_ = [
    './_base_/models/upernet_timm.py', './_base_/default_runtime.py',
    './_base_/schedules/schedule_60e.py'
]
model = dict(
    # CoaT is built for one input size: the crop (smaller windows are padded)
    backbone=dict(model_name='coat_lite_small', img_size=_base_.crop_size[0]))
# no weight decay on the class token either
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'cls_token': dict(decay_mult=0.)}))
