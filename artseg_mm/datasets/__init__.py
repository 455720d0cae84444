"""datasets: what training and testing read: the ARTeFACT dataset, its loading checks, the
class table and the on-disk layout (``layout``). Making data roots is ``artseg_mm.data_prep``."""
from . import artefact_classes, layout
from .artefact import ARTeFACTDataset
from .transforms import LoadArtSegAnnotations, LoadArtSegImageFromFile

__all__ = ['artefact_classes', 'layout', 'ARTeFACTDataset', 'LoadArtSegAnnotations',
           'LoadArtSegImageFromFile']
