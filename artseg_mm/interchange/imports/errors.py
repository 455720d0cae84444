"""The two errors of the importer, kept apart so the command line can tell them apart.

Why it exists: ``tools/dataset_converters/from_annotations.py`` exits with status 1 when the
annotations cannot become masks (the user fixes the annotations) and 2 on a usage mistake
(the user fixes the command); every module of the importer raises one of these two.
"""


class AnnotationImportError(ValueError):
    """Annotations that cannot become training masks; the message names the file, image or
    label and what is wrong."""


class ImportUsageError(AnnotationImportError):
    """An argument that cannot work (a missing file, an output that may not be replaced):
    the command line's usage mistakes."""
