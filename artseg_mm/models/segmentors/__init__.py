"""Segmentors: ``ArtSegEncoderDecoder`` (mmseg EncoderDecoder + build-time
channel check, non-finite-loss guard, batched slide inference, inference
levers) and strict checkpoint loading."""
from .encoder_decoder import (ArtSegEncoderDecoder, CheckpointMismatchError,
                              NonFiniteLossError, checkpoint_mismatch,
                              fuse_conv_bn_, load_checkpoint_strict,
                              slide_windows)

__all__ = [
    'ArtSegEncoderDecoder', 'CheckpointMismatchError', 'NonFiniteLossError',
    'checkpoint_mismatch', 'fuse_conv_bn_', 'load_checkpoint_strict',
    'slide_windows'
]
