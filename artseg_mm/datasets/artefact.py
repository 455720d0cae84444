"""ARTeFACT dataset in the mmseg layout."""
import os.path as osp
import warnings
from typing import Dict, List, Optional, Tuple

import mmengine.fileio as fileio
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from . import layout
from .artefact_classes import (BINARY_CLASSES, BINARY_PALETTE, FULL_CLASSES, FULL_PALETTE,
                               FULL_TO_BINARY)

HOW_TO_MAKE_DATA = (
    'Make the demo data with `python tools/misc/make_demo_data.py` (or `make demo`; it writes '
    'data/artefact_demo), or convert the real ARTeFACT release with '
    '`python tools/dataset_converters/artefact.py` (it writes data/artefact).')


class LeftOutFilesWarning(UserWarning):
    """Files in a split folder that the dataset does not read."""


@DATASETS.register_module()
class ARTeFACTDataset(BaseSegDataset):
    """ARTeFACT: damage on analogue media (Ivanova et al., WACV 2025).

    Masks on disk hold the 16 full class ids of ``artefact_classes`` (0 Clean,
    1 Material loss, ..., 15 Lightleak) and 255 for Background, i.e. pixels that are
    not part of the artwork; 255 is the ignore index. ``label_mode='full'`` uses the
    ids as they are; ``label_mode='binary'`` (the study's setting) maps every damage
    class to 1 through ``label_map`` (``FULL_TO_BINARY``), which mmseg's
    ``LoadAnnotations`` applies when a sample is loaded. ``reduce_zero_label`` is
    False because 0 (Clean) is a real class. Images and masks are '.png'.

    ``meta/{split}.csv`` next to ``img_dir`` (or ``meta_file``) is an optional sidecar
    with one row per image id; its ``material``, ``content`` and ``type`` go into each
    sample's data info (None when there is no sidecar), so PackSegInputs can pass them
    on to metrics that break results down by material. A fold of
    ``tools/misc/make_folds.py`` is mmseg's ``ann_file`` (lines ``<split>/<id>``) with
    ``data_prefix`` ``img_dir`` / ``ann_dir``: its images come from several split
    folders and their rows from every ``meta/<split>.csv``. Checks that need pixels (image
    readable, mask size and values) are done by ``LoadArtSegImageFromFile`` and
    ``LoadArtSegAnnotations`` when a sample is loaded.

    Args:
        label_mode (str): 'binary' or 'full'. Defaults to 'binary'.
        meta_file (str, optional): The sidecar CSV, relative to ``data_root``
            unless absolute. Defaults to None: ``meta/<split>.csv`` where
            ``<split>`` is the name of the image folder, used if it exists.
        **kwargs: The arguments of :class:`BaseSegDataset`.
    """
    METAINFO = dict(classes=FULL_CLASSES, palette=FULL_PALETTE)
    LABEL_MODES = ('binary', 'full')

    def __init__(self,
                 label_mode: str = 'binary',
                 meta_file: Optional[str] = None,
                 img_suffix: str = layout.IMAGE_SUFFIX,
                 seg_map_suffix: str = layout.IMAGE_SUFFIX,
                 reduce_zero_label: bool = False,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        if label_mode not in self.LABEL_MODES:
            raise ValueError(f"ARTeFACTDataset: label_mode must be one of {self.LABEL_MODES}, "
                             f'got {label_mode!r}')
        self.label_mode = label_mode
        self.meta_file = meta_file
        mode_meta = dict(classes=BINARY_CLASSES, palette=BINARY_PALETTE) \
            if label_mode == 'binary' else {}
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            metainfo={**mode_meta, **(metainfo or {})},
            **kwargs)
        # Set after loading: mmengine would try to open a string metainfo value as a file.
        self._metainfo['label_mode'] = label_mode
        # The label set this dataset yields, shadowing the class attribute (the 16 ids on
        # disk, which get_label_map keeps using): mmseg's tools read ``dataset.METAINFO``
        # (confusion_matrix.py sizes and labels its matrix with it), so a binary run must
        # show Clean/Damage there, not the 16 names.
        self.METAINFO = dict(classes=tuple(self._metainfo['classes']),
                             palette=[list(c) for c in self._metainfo['palette']])

    def get_label_map(self, new_classes=None) -> Optional[dict]:
        """Binary mode: the fixed full -> binary map; full mode: mmseg's class-subset map."""
        if self.label_mode == 'binary':
            if new_classes is not None and list(new_classes) != list(BINARY_CLASSES):
                raise ValueError(f'ARTeFACTDataset: label_mode=binary takes the classes '
                                 f'{BINARY_CLASSES}, got {tuple(new_classes)}')
            return dict(FULL_TO_BINARY)
        return super().get_label_map(new_classes)

    def load_data_list(self) -> List[dict]:
        """List image/mask pairs; fail clearly on missing data, masks or sidecar rows."""
        img_dir = self.data_prefix.get('img_path', None)
        ann_dir = self.data_prefix.get('seg_map_path', None)
        if self.data_root is not None and not osp.isdir(self.data_root):
            raise FileNotFoundError(
                f'ARTeFACT data root {self.data_root} does not exist. {HOW_TO_MAKE_DATA}')
        if not img_dir or not osp.isdir(img_dir):
            raise FileNotFoundError(
                f'ARTeFACT image folder {img_dir} does not exist. {HOW_TO_MAKE_DATA}')
        self._check_label_mode_on_disk()
        data_list = super().load_data_list()
        if not data_list:
            raise ValueError(f'ARTeFACT image folder {img_dir} holds no {self.img_suffix} '
                             f'images (empty split). {HOW_TO_MAKE_DATA}')
        if ann_dir is not None:
            missing = [info for info in data_list
                       if not fileio.exists(info['seg_map_path'], backend_args=self.backend_args)]
            if missing:
                listed = '; '.join(f"image {info['img_path']} has no mask {info['seg_map_path']}"
                                   for info in missing[:5])
                raise FileNotFoundError(
                    f'{len(missing)} of {len(data_list)} images have no mask: {listed}'
                    f'{" ..." if len(missing) > 5 else ""}. Every image in {img_dir} needs a '
                    f'mask of the same name in {ann_dir}.')
        if not (self.ann_file and osp.isfile(self.ann_file)):  # a folder listing
            self._warn_left_out(data_list, img_dir, ann_dir)
        self._attach_sidecar(data_list, img_dir)
        return data_list

    def _warn_left_out(self, data_list: List[dict], img_dir: str,
                       ann_dir: Optional[str]) -> None:
        """Say which files of the split folders the listing did not take: images of
        another extension (only ``img_suffix`` files are read) and masks without an image."""
        def listing(folder):
            return sorted(fileio.list_dir_or_file(folder, list_dir=False, recursive=True,
                                                  backend_args=self.backend_args))
        taken = {osp.relpath(info['img_path'], img_dir) for info in data_list}
        problems = [(f'{img_dir}: files that are not {self.img_suffix} images are not read',
                     [name for name in listing(img_dir)
                      if name not in taken and not name.startswith('.')])]
        if ann_dir is not None and osp.isdir(ann_dir):
            masks = {osp.relpath(info['seg_map_path'], ann_dir) for info in data_list}
            problems.append((f'{ann_dir}: masks without an image in {img_dir}',
                             [name for name in listing(ann_dir)
                              if name not in masks and not name.startswith('.')]))
        for what, names in problems:
            if names:
                warnings.warn(LeftOutFilesWarning(
                    f'ARTeFACTDataset: {what} ({len(names)}): {", ".join(names[:5])}'
                    f'{" ..." if len(names) > 5 else ""}'), stacklevel=2)

    def _check_label_mode_on_disk(self) -> None:
        """Refuse ``label_mode='full'`` on masks the converter already made binary."""
        if self.data_root is None:
            return
        on_disk = layout.label_mode_on_disk(self.data_root)
        if self.label_mode == 'full' and on_disk == 'binary':
            path = osp.join(self.data_root, layout.META_JSON)
            raise ValueError(
                f'ARTeFACTDataset: label_mode=full, but {path} says the masks on disk '
                'are binary (converted with --label-mode binary). Re-convert with '
                '--label-mode full, or use label_mode=binary.')

    def _sidecar_rows(self, img_dir: str, nested: bool) -> Tuple[str, Dict[str, dict]]:
        """Sidecar rows keyed by sample id (image path under ``img_dir`` sans suffix).

        The explicit ``meta_file`` (must exist), else ``meta/<split>.csv`` for a split
        folder ``img_dir/<split>``; for ``img_dir`` itself read through a split file of
        ``<split>/<id>`` lines (``nested``), every ``meta/<split>.csv`` with its ids
        prefixed by ``<split>/``. ``('', {})`` when there is no sidecar.
        """
        if self.meta_file is not None:
            path = self.meta_file
            if self.data_root is not None and not osp.isabs(path):
                path = osp.join(self.data_root, path)
            if not osp.isfile(path):
                raise FileNotFoundError(f'ARTeFACT meta_file {path} does not exist')
            return path, layout.read_sidecar(path)
        path = layout.sidecar_of_split_folder(img_dir)
        if osp.isfile(path):
            return path, layout.read_sidecar(path)
        root = osp.dirname(osp.normpath(img_dir))
        files = [str(p) for p in layout.sidecar_files(root)] if nested else []
        rows = {}
        for path in files:
            split = osp.splitext(osp.basename(path))[0]
            rows.update({layout.split_file_line(split, key): row
                         for key, row in layout.read_sidecar(path).items()})
        pattern = osp.join(root, layout.META_DIR, f'*{layout.SIDECAR_SUFFIX}')
        return (pattern if files else ''), rows

    def _attach_sidecar(self, data_list: List[dict], img_dir: str) -> None:
        """Put material/content/type of each image id into its data info."""
        sample_ids = [osp.relpath(info['img_path'], img_dir)[:-len(self.img_suffix)]
                      .replace(osp.sep, '/') for info in data_list]
        path, rows = self._sidecar_rows(img_dir, any('/' in i for i in sample_ids))
        for info, sample_id in zip(data_list, sample_ids):
            if path and sample_id not in rows:
                raise ValueError(f'ARTeFACT sidecar {path} has no row for image id '
                                 f"'{sample_id}' ({info['img_path']}). Rewrite the sidecar "
                                 f'with the converter/generator that wrote the data, or '
                                 f'remove it to train without metadata.')
            row = rows.get(sample_id, {})
            info['sample_id'] = sample_id
            for field in layout.SAMPLE_INFO_COLUMNS:
                info[field] = row.get(field) or None
