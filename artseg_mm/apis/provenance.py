"""Where a set of masks comes from: the model, its training data and limitations,
the options that change masks, the tool and the date.

Why it exists: a mask or a damage share handed on without the model that made
it cannot be checked, and a model trained on synthetic demo images reports
"damage" on any photograph with the same confidence as a real one. Every report
``tools/infer.py`` writes carries this record (``summary.json``,
``provenance.json`` beside ``summary.csv``, the top of ``index.html``), taken
from what the model itself ships: a model folder's data summary and card, or a
work dir's / config's data root records.
"""
import datetime
import json
import os.path as osp
import platform
from typing import List, Optional

from ..datasets.data_summary import light_data_summary
from .model_card import LIMITATIONS_HEADING, limitations, trained_on_synthetic_data
from .model_folder import CARD, DATA_SUMMARY, is_model_folder


def _card_limitations(folder: str) -> Optional[List[str]]:
    """The bullet lines of a model card's limitations section, as written."""
    path = osp.join(folder, CARD)
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if LIMITATIONS_HEADING not in text:
        return None
    section = text.split(LIMITATIONS_HEADING, 1)[1].split('\n## ', 1)[0]
    return [line[2:].strip() for line in section.splitlines() if line.startswith('- ')]


def _data_of_folder(folder: str) -> dict:
    path = osp.join(folder, DATA_SUMMARY)
    if not osp.isfile(path):
        return dict(found=False, note=f'{path} is missing')
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _training_data_brief(data: dict) -> dict:
    """The summary's facts a reader of a report needs (the records' long file
    lists left out)."""
    meta = (data.get('records') or {}).get('meta.json') or {}
    brief = dict(data_root=data.get('data_root'), found=bool(data.get('found')),
                 synthetic=trained_on_synthetic_data(data))
    if meta.get('settings'):
        brief['settings'] = meta['settings']
    images = {split: info['images'] for split, info in (data.get('splits') or {}).items()
              if isinstance(info, dict) and 'images' in info}
    if images:
        brief['images'] = images
    if data.get('note'):
        brief['note'] = data['note']
    start = data.get('started_from')
    if start:
        brief['started_from'] = dict(weights=start['weights'])
        if start.get('data'):
            brief['started_from']['training_data'] = _training_data_brief(start['data'])
        if start.get('note'):
            brief['started_from']['note'] = start['note']
    return brief


def model_provenance(source: str, model, weights_sha256: str) -> dict:
    """The record of the model behind a set of masks.

    Args:
        source: what the user named (work dir, model folder, config, exported file).
        model: the loaded segmentor or exported model (``cfg``, ``dataset_meta``).
        weights_sha256: sha256 of the weights file, or what stands in for it.
    """
    source = str(source)
    kind = ('model folder' if is_model_folder(source) else 'work dir' if osp.isdir(source)
            else 'exported model' if hasattr(model, 'format') else 'config')
    data = _data_of_folder(source) if kind == 'model folder' else light_data_summary(model.cfg)
    classes = dict(classes=list(model.dataset_meta['classes']))
    card = _card_limitations(source) if kind == 'model folder' else None
    weights = getattr(model, 'checkpoint_path', None) or getattr(model, 'path', None)
    quantization = None
    if kind == 'exported model':
        from ..deployment.quantize import quantization_record
        quantization = quantization_record(model.metadata)
    extra = {} if quantization is None else dict(quantization=quantization)
    notes = card if card is not None else limitations(data, None, classes)
    if quantization is not None:
        notes = list(notes) + [int8_limitation(quantization)]
    return dict(name=osp.basename(osp.normpath(source)), kind=kind, source=source, **extra,
                weights=weights, weights_sha256=weights_sha256,
                classes=classes['classes'], training_data=_training_data_brief(data),
                limitations=notes,
                limitations_from='the model card' if card is not None else
                'the training data records')


def int8_limitation(quantization: dict) -> str:
    """One sentence on what int8 changes, from the file's quantization record."""
    measured = quantization.get('agreement')
    if not measured:
        return ('Quantized to int8 (calibrated on ' + quantization['calibration'] + '); how '
                'far its masks are from the float32 model\'s was not measured.')
    return (f"Quantized to int8 (calibrated on {quantization['calibration']}): its masks "
            f"differ from the float32 model's on {measured['changed_percent']}% of the pixels "
            f"of {measured['split']} ({measured['images']} images).")


def tool_provenance() -> dict:
    """The versions that made the masks."""
    import mmseg
    import torch

    from .. import __version__
    return dict(artseg_mm=__version__, mmseg=mmseg.__version__, torch=torch.__version__,
                python=platform.python_version())


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
