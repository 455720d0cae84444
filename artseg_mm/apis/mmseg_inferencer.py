"""mmseg's ``MMSegInferencer`` for the project's configs.

Why it exists: ``MMSegInferencer`` finds the image loader and the annotation
loader of a config's test pipeline by their exact type names
(``'LoadImageFromFile'``, ``'LoadAnnotations'``), so on our configs, which use
checked subclasses of both, it stops with "LoadImageFromFile is not found in the
test pipeline". This subclass hands mmseg a copy of the pipeline in which those
steps carry the names it looks for; mmseg then builds its pipeline as always
(annotation loaders dropped, the image loader replaced by its array-aware one).
"""
import copy

from mmseg.apis import MMSegInferencer

from .pipeline_steps import is_step_of

_NAMES_MMSEG_LOOKS_FOR = ('LoadImageFromFile', 'LoadAnnotations')


class ArtSegInferencer(MMSegInferencer):
    """``MMSegInferencer`` that recognises subclasses of the loading steps it looks for."""

    def _init_pipeline(self, cfg):
        cfg = copy.deepcopy(cfg)
        for step in cfg.test_dataloader.dataset.pipeline:
            base = next((n for n in _NAMES_MMSEG_LOOKS_FOR if is_step_of(step, n)), None)
            if base is not None:
                step['type'] = base
        return super()._init_pipeline(cfg)
