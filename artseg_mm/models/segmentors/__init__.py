"""Segmentors: ``ArtSegEncoderDecoder`` (mmseg EncoderDecoder + build-time
channel check, non-finite-loss guard, batched slide inference, inference
levers)."""
from .encoder_decoder import (ArtSegEncoderDecoder, NonFiniteLossError,
                              fuse_conv_bn_, slide_windows)

__all__ = [
    'ArtSegEncoderDecoder', 'NonFiniteLossError', 'fuse_conv_bn_', 'slide_windows'
]
