"""Segmentors: ``ArtSegEncoderDecoder`` (mmseg EncoderDecoder + build-time
channel check, non-finite-loss guard, batched bounded-memory slide inference)
and the sliding-window accumulator it shares with the scan path."""
from .encoder_decoder import ArtSegEncoderDecoder, NonFiniteLossError
from .sliding_window import slide_windows, sliding_window_logits

__all__ = [
    'ArtSegEncoderDecoder', 'NonFiniteLossError', 'slide_windows', 'sliding_window_logits'
]
