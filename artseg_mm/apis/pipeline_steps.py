"""Which mmseg pipeline step a config's step is, counting registered subclasses.

Why it exists: the project's configs load images and masks with checked
subclasses of mmcv's ``LoadImageFromFile`` and mmseg's ``LoadAnnotations``, and
code that looks for "the image loader" by its exact type name misses them.
"""
import inspect
from typing import Optional


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
