# ConvNeXt-Tiny (CNN) + UPerNet on ARTeFACT binary, the seed's recipe.
_base_ = [
    './_base_/models/upernet_timm.py', './_base_/default_runtime.py',
    './_base_/schedules/schedule_60e.py'
]
model = dict(backbone=dict(model_name='convnext_tiny'))
