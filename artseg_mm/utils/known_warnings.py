"""Silence warnings of mmseg and mmcv that do not apply to this project, each for a reason.

Why it exists: every training and test run printed them, although the user can
do nothing about them, and they hid the warnings that matter.
"""
import contextlib
import io
import sys
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
    ('Fail to import ``MultiScaleDeformableAttention``',
     "mmcv is installed without compiled ops on purpose and no model here uses "
     "deformable attention (mmcv warns on every import of its transformer bricks)"),
)

# printed (not logged) by onedl-mmsegmentation 1.4.2 and onedl-mmpretrain 1.3.6 on
# import when their optional OneDL dataset integration (``onedl.core``) is absent:
# ``print_log(..., level=DEBUG)`` without a logger prints unconditionally
OPTIONAL_IMPORT_NOTICES = ('Could not import OneDL',)


def ignore_known_warnings() -> None:
    """Add an ignore filter for each of :data:`KNOWN_WARNINGS`."""
    for start, _reason in KNOWN_WARNINGS:
        warnings.filterwarnings('ignore', message=start)


@contextlib.contextmanager
def without_optional_import_notices():
    """Hold back standard output while importing, then write it out again without
    the lines of :data:`OPTIONAL_IMPORT_NOTICES` (whatever else was printed stays)."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            yield
    finally:  # also when an import fails: what it printed may say why
        kept = [line for line in captured.getvalue().splitlines(keepends=True)
                if line.rstrip('\n') not in OPTIONAL_IMPORT_NOTICES]
        sys.stdout.write(''.join(kept))
