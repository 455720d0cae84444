# UPerNet: the seed's UPer decoder (PPM 1,2,3,6 + FPN 256 channels) on the
# timm encoder of ./timm_encoder_decoder.py.
_base_ = ['./timm_encoder_decoder.py']
model = dict(
    decode_head=dict(
        type='UPerFeatureHead',
        pool_scales=(1, 2, 3, 6),
        channels=256))
