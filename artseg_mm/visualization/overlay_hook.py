"""One overlay per test image for ``tools/test.py --show-dir``."""
import os
import os.path as osp
from typing import Optional, Sequence

import cv2
import mmcv
import numpy as np
from mmengine import fileio

from mmseg.engine.hooks import SegVisualizationHook
from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample


def caption(panel: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` in the top-left corner of an RGB panel (a copy)."""
    panel = panel.copy()
    scale = max(0.4, panel.shape[1] / 640)
    thickness = max(1, int(round(scale * 2)))
    origin = (6, int(22 * scale) + 4)
    cv2.putText(panel, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale,
                (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(panel, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thickness, cv2.LINE_AA)
    return panel


def draw_panels(visualizer, image: np.ndarray, sample: SegDataSample) -> np.ndarray:
    """Image, ground-truth overlay (if any) and prediction overlay (if any), side
    by side, drawn with ``visualizer`` (a ``SegLocalVisualizer`` with
    ``dataset_meta``) on an RGB ``image``."""
    image = np.ascontiguousarray(image)  # OpenCV 5 draws on contiguous arrays only
    classes = visualizer.dataset_meta['classes']
    palette = visualizer.dataset_meta['palette']
    panels = [caption(image, 'image')]
    for key, title in (('gt_sem_seg', 'ground truth'), ('pred_sem_seg', 'prediction')):
        if key in sample:
            drawn = visualizer._draw_sem_seg(image, sample.get(key), classes, palette, True)
            panels.append(caption(drawn, title))
    return np.concatenate(panels, axis=1)


@HOOKS.register_module()
class ArtSegVisualizationHook(SegVisualizationHook):
    """Write one PNG per test image: image | ground truth | prediction.

    Why it exists: mmseg's ``SegVisualizationHook`` draws only every
    ``interval``-th batch (default 50), so a 10-image split gets no overlay
    at all, and its picture has no plain image panel. In test mode this hook
    draws every image (``<show_dir>/<image name>.png``); the ground-truth
    panel appears when the sample has one. Validation keeps the parent's
    interval behaviour.

    Args:
        show_dir (str, optional): Output folder. Defaults to the visualizer's
            ``save_dir`` when mmseg's own ``tools/test.py --show-dir`` set it,
            else ``<log_dir>/show``.
        **kwargs: ``SegVisualizationHook`` arguments.
    """

    def __init__(self, show_dir: Optional[str] = None, **kwargs):
        super().__init__(**kwargs)
        self.show_dir = show_dir

    def before_test(self, runner) -> None:
        if self.show_dir is None:
            visualizer_cfg = runner.cfg.get('visualizer') or {}
            self.show_dir = visualizer_cfg.get('save_dir') or osp.join(
                runner.log_dir, 'show')
        if self.draw:
            os.makedirs(self.show_dir, exist_ok=True)

    def draw_panels(self, image: np.ndarray, sample: SegDataSample) -> np.ndarray:
        """Image, ground-truth overlay (if any) and prediction overlay, side by side."""
        return draw_panels(self._visualizer, image, sample)

    def after_test_iter(self, runner, batch_idx: int, data_batch: dict,
                        outputs: Sequence[SegDataSample]) -> None:
        if not self.draw:
            return
        for sample in outputs:
            img_bytes = fileio.get(sample.img_path, backend_args=self.backend_args)
            image = mmcv.imfrombytes(img_bytes, channel_order='rgb')
            drawn = self.draw_panels(image, sample)
            stem = osp.splitext(osp.basename(sample.img_path))[0]
            mmcv.imwrite(mmcv.rgb2bgr(drawn), osp.join(self.show_dir, f'{stem}.png'))
            if self.show:
                self._visualizer.show(drawn, win_name=stem, wait_time=self.wait_time)
