# U-Net: the seed's earlier baseline decoder on the timm encoder of
# ./timm_encoder_decoder.py.
_base_ = ['./timm_encoder_decoder.py']
model = dict(
    decode_head=dict(
        type='UNetHead',
        decoder_channels=(256, 128, 64)))  # 1/16, 1/8, 1/4 (logits at 1/4)
