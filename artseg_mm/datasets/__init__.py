"""datasets: what training and testing read: the ARTeFACT dataset, its loading checks, the
class table and the on-disk layout (``layout``). Making data roots is ``artseg_mm.data_prep``."""
# The ARTeFACT pipelines name mmpretrain's photometric transforms
# ('mmpretrain.ColorJitter', 'mmpretrain.GaussianBlur'). mmengine's registry
# imports them on first use and swallows a failed import, reporting only that the
# transform is not registered; importing them here lets a broken mmpretrain
# install fail with its own ImportError, naming the missing module.
import mmpretrain.datasets.transforms  # noqa: F401

from . import artefact_classes, layout
from .artefact import ARTeFACTDataset
from .transforms import LoadArtSegAnnotations, LoadArtSegImageFromFile

__all__ = ['artefact_classes', 'layout', 'ARTeFACTDataset', 'LoadArtSegAnnotations',
           'LoadArtSegImageFromFile']
