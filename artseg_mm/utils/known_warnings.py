"""Silence warnings of mmseg that do not apply to this project, each for a reason.

Why it exists: every training and test run printed them, although the user can
do nothing about them, and they hid the warnings that matter.
"""
import warnings

# (message start, why it does not apply)
KNOWN_WARNINGS = (
    ('For binary segmentation, we suggest using',
     'the binary configs use a two-class softmax on purpose: DiceFocal and the per-class '
     'metrics (IoU of Clean and of Damage) need a logit per class'),
    ('``build_loss`` would be deprecated soon',
     "raised by mmseg's own BaseDecodeHead when it builds its loss, not by our code"),
    ('The draw is False, it means that the hook for visualization',
     'ArtSegVisualizationHook is off in training on purpose; tools/test.py --show-dir '
     'switches it on'),
)


def ignore_known_warnings() -> None:
    """Add an ignore filter for each of :data:`KNOWN_WARNINGS`."""
    for start, _reason in KNOWN_WARNINGS:
        warnings.filterwarnings('ignore', message=start)
