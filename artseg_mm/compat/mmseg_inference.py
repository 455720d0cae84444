"""Let mmseg's inference APIs recognise our checked loading steps.

Why it exists: ``mmseg.apis.inference_model`` drops only pipeline steps whose
type is exactly ``'LoadAnnotations'``, and ``MMSegInferencer`` looks for a
step typed exactly ``'LoadImageFromFile'`` (to swap in its array-aware
loader). Our configs use registered subclasses of both (they check files and
masks), so both APIs failed on our configs. After :func:`install_inference_compat`
a step matches when its registered class *is or derives from* the class mmseg
looks for; mmseg's behaviour on its own configs is unchanged.
"""
import copy
import inspect
from typing import Optional

_INSTALLED = False


def _registered_class(step_type) -> Optional[type]:
    from mmseg.registry import TRANSFORMS
    if inspect.isclass(step_type):
        return step_type
    try:
        return TRANSFORMS.get(step_type)
    except KeyError:  # an unknown scope prefix: not one of the classes asked for
        return None


def is_step_of(step: dict, base_name: str) -> bool:
    """Whether pipeline step ``step`` builds ``base_name`` or a subclass of it."""
    step_type = step.get('type')
    if step_type == base_name:
        return True
    base = _registered_class(base_name)
    cls = _registered_class(step_type)
    return base is not None and cls is not None and issubclass(cls, base)


def without_annotation_steps(pipeline) -> list:
    """``pipeline`` minus every step that loads annotations."""
    return [copy.deepcopy(step) for step in pipeline
            if not is_step_of(step, 'LoadAnnotations')]


def install_inference_compat() -> None:
    """Patch ``mmseg.apis`` (once) so both APIs match subclasses of their steps."""
    global _INSTALLED
    if _INSTALLED:
        return
    from mmseg.apis import inference, mmseg_inferencer

    original_prepare = inference._preprare_data

    def _prepare_data(imgs, model):
        model.cfg.test_pipeline = without_annotation_steps(model.cfg.test_pipeline)
        return original_prepare(imgs, model)

    def _get_transform_idx(self, pipeline_cfg, name: str) -> int:
        for index, step in enumerate(pipeline_cfg):
            if is_step_of(step, name):
                return index
        return -1

    inference._preprare_data = _prepare_data
    mmseg_inferencer.MMSegInferencer._get_transform_idx = _get_transform_idx
    _INSTALLED = True
