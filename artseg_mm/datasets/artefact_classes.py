"""ARTeFACT's label set, written once for the whole package.

Source: the ARTeFACT dataset card (Hugging Face ``danielaivanova/damaged-media``)
and the paper "ARTeFACT: Benchmarking Segmentation Models on Diverse Analogue
Media Damage" (Ivanova et al., WACV 2025, arXiv:2412.04580). The ``annotation``
column is a single-channel class-index PNG with the ids below; 255 marks
Background, i.e. pixels that are not part of the artwork (mounts, scanner bed),
which are excluded from training and evaluation. The colours are those of the
``annotation_rgb`` column.
"""

IGNORE_INDEX = 255

# (id, name, colour of ``annotation_rgb`` as hex)
ARTEFACT_CLASS_TABLE = (
    (0, 'Clean', '000000'),
    (1, 'Material loss', '1CE6FF'),
    (2, 'Peel', 'FF34FF'),
    (3, 'Dust', 'FF4A46'),
    (4, 'Scratch', '008941'),
    (5, 'Hair', '006FA6'),
    (6, 'Dirt', 'A30059'),
    (7, 'Fold', 'FFA500'),
    (8, 'Writing', '7A4900'),
    (9, 'Cracks', '0000A6'),
    (10, 'Staining', '63FFAC'),
    (11, 'Stamp', '004D43'),
    (12, 'Sticker', '8FB0FF'),
    (13, 'Puncture', '997D87'),
    (14, 'Burn marks', '809693'),
    (15, 'Lightleak', 'F6FF1B'),
)
BACKGROUND_COLOUR = '5A0007'


def hex_to_rgb(code: str) -> tuple:
    """'1CE6FF' -> (28, 230, 255)."""
    return tuple(int(code[i:i + 2], 16) for i in (0, 2, 4))


FULL_CLASSES = tuple(name for _, name, _ in ARTEFACT_CLASS_TABLE)
FULL_PALETTE = [list(hex_to_rgb(colour)) for _, _, colour in ARTEFACT_CLASS_TABLE]
CLEAN_ID = 0
DAMAGE_IDS = tuple(idx for idx, _, _ in ARTEFACT_CLASS_TABLE if idx != CLEAN_ID)
# Damage that runs as a line: its extent is told by a length (along its skeleton)
# better than by an area, which mostly reflects how wide the line was drawn.
THIN_CLASSES = ('Scratch', 'Hair', 'Fold', 'Cracks')

# The seed's binary setting: every damage class merged into one.
BINARY_CLASSES = ('Clean', 'Damage')
BINARY_PALETTE = [[0, 0, 0], [255, 64, 64]]
DAMAGE_CLASS_INDEX_BINARY = 1

# full-class id -> binary id; the ignore index stays ignored.
FULL_TO_BINARY = {idx: (0 if idx == CLEAN_ID else DAMAGE_CLASS_INDEX_BINARY)
                  for idx, _, _ in ARTEFACT_CLASS_TABLE}
FULL_TO_BINARY[IGNORE_INDEX] = IGNORE_INDEX
