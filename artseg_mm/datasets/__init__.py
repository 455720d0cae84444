"""datasets: the ARTeFACT dataset, its loading checks, and the demo-data generator."""
from . import artefact_classes, demo_generator
from .artefact import ARTeFACTDataset
from .transforms import LoadArtSegAnnotations, LoadArtSegImageFromFile

__all__ = ['artefact_classes', 'demo_generator', 'ARTeFACTDataset', 'LoadArtSegAnnotations',
           'LoadArtSegImageFromFile']
