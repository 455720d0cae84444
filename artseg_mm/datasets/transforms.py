"""Loading transforms that turn broken images and masks into errors naming the file."""
import os.path as osp
from typing import Optional, Sequence

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from .artefact_classes import ARTEFACT_CLASS_TABLE, IGNORE_INDEX
from .orientation import warn_if_file_oriented

# mmcv decode flags that apply EXIF orientation -> the same without it ('unchanged'
# never applies it)
IGNORE_ORIENTATION = {'color': 'color_ignore_orientation',
                      'grayscale': 'grayscale_ignore_orientation'}
ARTEFACT_LABEL_VALUES = tuple(idx for idx, _, _ in ARTEFACT_CLASS_TABLE) + (IGNORE_INDEX,)


@TRANSFORMS.register_module()
class LoadArtSegImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` with a clear error for a missing or unreadable image.

    On a truncated PNG mmcv fails with ``AssertionError: failed to load image`` (cv2
    backend; no assertion at all under ``python -O``), ``OSError: image file is
    truncated`` (pillow, no file name) or a bare ``cv2.error`` for an empty file, and
    with ``ignore_empty=True`` the dataset silently draws another sample. This
    transform raises one error that names the file and the problem instead; it takes
    the same arguments except ``ignore_empty``, which it refuses.
    """

    def __init__(self, *args, ignore_empty: bool = False, **kwargs) -> None:
        if ignore_empty:
            raise ValueError('LoadArtSegImageFromFile does not skip broken images '
                             '(ignore_empty=True); fix or remove the file instead')
        super().__init__(*args, ignore_empty=False, **kwargs)
        # EXIF orientation is not applied (masks carry none): see datasets.orientation
        self.color_type = IGNORE_ORIENTATION.get(self.color_type, self.color_type)

    def transform(self, results: dict) -> dict:
        filename = results['img_path']
        if not fileio.exists(filename, backend_args=self.backend_args):
            raise FileNotFoundError(f'image file {filename} does not exist')
        try:
            loaded = super().transform(results)
            shape = loaded['img'].shape
        except Exception as err:  # re-raised with the file named; mmcv's own messages lack it
            raise ValueError(
                f'cannot read image {filename}: the file is truncated, empty or not a valid '
                f'image ({type(err).__name__}: {err}). Replace it or remove it together with '
                f'its mask.') from err
        if len(shape) < 2 or min(shape[:2]) == 0:
            raise ValueError(f'image {filename} decoded to an empty array of shape {shape}')
        if osp.isfile(filename):
            warn_if_file_oriented(filename)
        return loaded


@TRANSFORMS.register_module()
class LoadArtSegAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` that checks each mask against its image and label set.

    Before mmseg's ``reduce_zero_label``/``label_map`` handling (e.g. ARTeFACT's
    full -> binary map) it raises an error naming the mask file when the mask is
    missing or unreadable, is not single-channel, has values outside
    ``valid_values`` (default: ARTeFACT's ids 0..15 and 255; mmseg would cast them to
    uint8 and let ``label_map`` pass them through unmapped), or differs in size from
    the image loaded before it (``ori_shape``). Put it after the image loader.

    Args:
        valid_values (Sequence[int], optional): The values a mask may hold.
            Defaults to ARTeFACT's class ids and 255.
        check_size (bool): Compare the mask size with ``ori_shape``. Defaults to True.
        **kwargs: The arguments of mmseg's ``LoadAnnotations``.
    """

    def __init__(self,
                 valid_values: Optional[Sequence[int]] = None,
                 check_size: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        values = ARTEFACT_LABEL_VALUES if valid_values is None else valid_values
        self.valid_values = np.array(sorted(set(int(v) for v in values)))
        self.check_size = check_size

    def _load_seg_map(self, results: dict) -> None:
        path = results['seg_map_path']
        img_path = results.get('img_path', '?')
        if not fileio.exists(path, backend_args=self.backend_args):
            raise FileNotFoundError(f'mask {path} for image {img_path} does not exist')
        try:
            raw = mmcv.imfrombytes(fileio.get(path, backend_args=self.backend_args),
                                   flag='unchanged', backend=self.imdecode_backend)
            if raw is None:
                raise ValueError('the decoder returned nothing')
        except Exception as err:  # re-raised with the file named; the decoders' messages lack it
            raise ValueError(f'cannot read mask {path} (image {img_path}): the file is '
                             f'truncated, empty or not a valid image '
                             f'({type(err).__name__}: {err})') from err
        raw = raw.squeeze()
        if raw.ndim != 2:
            raise ValueError(f'mask {path} has shape {raw.shape}; expected a single-channel '
                             f'image of class ids (not a colour-coded annotation)')
        bad = np.setdiff1d(np.unique(raw), self.valid_values)
        if bad.size:
            raise ValueError(f'mask {path} holds values {bad.tolist()[:20]} outside the label '
                             f'set {self.valid_values.tolist()}')
        if self.check_size:
            if 'ori_shape' not in results:
                raise KeyError('LoadArtSegAnnotations checks the mask size against the image: '
                               'put it after the image loader in the pipeline '
                               '(or set check_size=False)')
            img_hw = tuple(results['ori_shape'][:2])
            if raw.shape != img_hw:
                raise ValueError(f'mask {path} is {raw.shape[1]}x{raw.shape[0]} (WxH) but its '
                                 f'image {img_path} is {img_hw[1]}x{img_hw[0]}')
        gt_seg = raw.astype(np.uint8)
        # From here on as mmseg's LoadAnnotations._load_seg_map, which decodes inside itself.
        if self.reduce_zero_label is None:
            self.reduce_zero_label = results['reduce_zero_label']
        if self.reduce_zero_label != results['reduce_zero_label']:
            raise ValueError(f'the dataset has reduce_zero_label={results["reduce_zero_label"]} '
                             f'but LoadArtSegAnnotations has {self.reduce_zero_label}')
        if self.reduce_zero_label:
            gt_seg[gt_seg == 0] = 255
            gt_seg = gt_seg - 1
            gt_seg[gt_seg == 254] = 255
        if results.get('label_map', None) is not None:
            original = gt_seg.copy()
            for old_id, new_id in results['label_map'].items():
                gt_seg[original == old_id] = new_id
        results['gt_seg_map'] = gt_seg
        results['seg_fields'].append('gt_seg_map')

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] + f', valid_values={self.valid_values.tolist()}, '
                f'check_size={self.check_size})')
