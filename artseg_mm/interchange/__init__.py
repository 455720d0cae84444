"""Predicted damage masks exported to the formats of conservators' and annotators' tools
(GeoJSON for QGIS and QuPath, COCO, CVAT segmentation masks, Label Studio brush
predictions, IIIF / W3C Web Annotations), per image (:mod:`.exports`) or per collection of
images (:mod:`.collection`), and corrected annotations imported back as training data
(:mod:`.imports`, which also reads the COCO, CVAT and Label Studio exports back; GeoJSON
and IIIF are read back by :mod:`.readers`)."""
from .collection import COLLECTION_FILES, LABELSTUDIO_CONFIG_FILE, CollectionExport
from .exports import (DEFAULT_IIIF_CANVAS, DEFAULT_MODEL_VERSION, FILE_SUFFIXES, FORMATS,
                      coco_categories, cvat_labelmap, export_masks, labelstudio_config,
                      to_coco, to_geojson, to_iiif, to_labelstudio, write_cvat_zip,
                      write_json)
from .polygons import Region, class_colours, find_regions, parse_svg_path, svg_path
from .readers import mask_from_iiif, rasterize_geojson

__all__ = [
    'COLLECTION_FILES', 'CollectionExport', 'DEFAULT_IIIF_CANVAS', 'DEFAULT_MODEL_VERSION',
    'FILE_SUFFIXES', 'FORMATS', 'LABELSTUDIO_CONFIG_FILE', 'Region', 'class_colours',
    'coco_categories', 'cvat_labelmap', 'export_masks', 'find_regions',
    'labelstudio_config', 'mask_from_iiif', 'parse_svg_path', 'rasterize_geojson',
    'svg_path', 'to_coco', 'to_geojson', 'to_iiif', 'to_labelstudio', 'write_cvat_zip',
    'write_json',
]
