"""Corrected masks from annotation tools, imported as a data root to fine-tune on.

Why it exists: conservators correct the model's masks in CVAT, Label Studio or any COCO
tool, and those corrections are the best training data there is. This reads the tools'
exports, turns each image's regions into one mask of the model's class ids, and writes the
data root of ``artseg_mm.datasets.layout``, so ``ARTeFACTDataset`` trains on it like on
converted ARTeFACT data. ``tools/dataset_converters/from_annotations.py`` is its command
line. It is also the one reader of the files
:mod:`artseg_mm.interchange.exports` and :mod:`artseg_mm.interchange.collection` write in
these formats: an export is right when it imports back to the mask it came from.

Modules, by concern:

- :mod:`.cvat`, :mod:`.coco`, :mod:`.labelstudio`: one reader per format (CVAT's
  "Segmentation mask 1.1" zip or folder, a COCO JSON, a Label Studio JSON export);
- :mod:`.classes`: the model's classes and label names matched to them (ignoring case;
  'background', CVAT's unlabelled colour, is Clean);
- :mod:`.annotated`: what the readers hand over and how a mask is painted: every pixel no
  region covers is Clean, regions are painted in the order the file lists them, pixels two
  different classes claim are an error unless ``overlap='later'`` lets the later one win;
- :mod:`.images`: how annotations find their image files (paths relative to the images
  folder, subfolders included), size checks, sample ids;
- :mod:`.splits`: the train/val split;
- :mod:`.data_root_writer`: the data root written atomically;
- :mod:`.importer`: :func:`import_annotations` and :func:`read_annotations`, which tie them
  together.
"""
from .annotated import OVERLAP_RULES, AnnotatedImage, MaskCanvas
from .classes import BACKGROUND_LABEL, CLEAN, LabelNames, disk_ids, resolve_classes
from .coco import coco_images, coco_region, read_coco
from .cvat import cvat_images, parse_cvat_labelmap, read_cvat, read_cvat_labelmap
from .data_root_writer import IMPORTER_NAME, IMPORTER_VERSION, check_output
from .errors import AnnotationImportError, ImportUsageError
from .images import (IMAGE_SUFFIXES, ImageFolder, list_images, match_images, name_tails,
                     sample_ids)
from .importer import FORMATS, READERS, import_annotations, read_annotations
from .labelstudio import label_studio_images, read_label_studio
from .splits import DEFAULT_VAL_FRACTION, IMPORT_SPLITS, split_samples

__all__ = [
    'AnnotatedImage', 'AnnotationImportError', 'BACKGROUND_LABEL', 'CLEAN',
    'DEFAULT_VAL_FRACTION', 'FORMATS', 'IMAGE_SUFFIXES', 'IMPORTER_NAME', 'IMPORTER_VERSION',
    'IMPORT_SPLITS', 'ImageFolder', 'ImportUsageError', 'LabelNames', 'MaskCanvas',
    'OVERLAP_RULES', 'READERS', 'check_output', 'coco_images', 'coco_region', 'cvat_images',
    'disk_ids', 'import_annotations', 'label_studio_images', 'list_images', 'match_images',
    'name_tails', 'parse_cvat_labelmap', 'read_annotations', 'read_coco', 'read_cvat',
    'read_cvat_labelmap', 'read_label_studio', 'resolve_classes', 'sample_ids',
    'split_samples',
]
