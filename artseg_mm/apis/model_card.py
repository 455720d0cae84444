"""The model card (``README.md``) of a model folder: what the model is, what it was
trained and tested on, what it is for and how to load it.

Why it exists: a folder of weights says nothing to the colleague or hub visitor who
receives it. Every figure in the card comes from the run's config, the checkpoint,
the data summary and the test tables written beside it; nothing is typed by hand.
"""
import os.path as osp
from typing import List, Optional

import torch.nn as nn
from mmengine.config import Config

from ..datasets import layout
from ..datasets.artefact_classes import BINARY_CLASSES, DAMAGE_CLASS_INDEX_BINARY
from .model_folder import CLASSES, CONFIG, MANIFEST, WEIGHTS

SYNTHETIC_DATA_LIMITATION = ('Trained on synthetic demo images: it shows the pipeline learns; '
                             'it is not a model for real scans.')
LIMITATIONS_HEADING = '## Intended use and limitations'

HUB_FRONT_MATTER = """---
library_name: artseg-mm
pipeline_tag: image-segmentation
tags:
- image-segmentation
- mmsegmentation
- cultural-heritage
- damage-detection
---
"""


def _size(value) -> Optional[str]:
    if value is None:
        return None
    value = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    return f'{value[0]} x {value[1]}'


def _call(cfg: dict, skip=('type',)) -> str:
    """``Type(key=value, ...)`` of a registry config."""
    args = ', '.join(f'{k}={v}' for k, v in sorted(cfg.items()) if k not in skip)
    return f"{cfg.get('type')}({args})"


def describe_encoder(backbone: dict) -> str:
    """timm model name, else the backbone type (and depth): how cards and tables name it."""
    if backbone.get('model_name'):
        return str(backbone['model_name'])
    depth = backbone.get('depth')
    return f"{backbone.get('type', 'n/a')}{'-' + str(depth) if depth else ''}"


def _card_encoder(backbone: dict) -> str:
    name = describe_encoder(backbone)
    return f"timm `{name}` ({backbone['type']})" if backbone.get('model_name') else name


def describe_decoder(model_cfg: dict) -> str:
    head = model_cfg.get('decode_head') or {}
    text = f"{head.get('type')}, {head.get('channels')} channels"
    aux = model_cfg.get('auxiliary_head')
    if aux:
        aux = aux if isinstance(aux, dict) else aux[0]
        text += f"; auxiliary {aux.get('type')} (training only)"
    return text


def describe_schedule(cfg: Config) -> dict:
    """Training length, batch, optimizer, schedulers and loss, as the config says."""
    train_cfg = cfg.get('train_cfg') or {}
    length = (f"{train_cfg['max_epochs']} epochs" if 'max_epochs' in train_cfg
              else f"{train_cfg.get('max_iters')} iterations")
    optimizer = dict((cfg.get('optim_wrapper') or {}).get('optimizer') or {})
    schedulers = cfg.get('param_scheduler') or []
    schedulers = schedulers if isinstance(schedulers, list) else [schedulers]
    unit = 'epoch' if any(s.get('by_epoch', True) for s in schedulers) else 'iteration'
    losses = cfg.model.get('decode_head', {}).get('loss_decode') or []
    losses = losses if isinstance(losses, list) else [losses]
    return dict(
        length=length,
        batch_size=cfg.train_dataloader.get('batch_size'),
        optimizer=(f"{optimizer.get('type')}, lr {optimizer.get('lr')}, weight decay "
                   f"{optimizer.get('weight_decay', 0)}"),
        schedulers=[f"{s.get('type')} ({unit}s {s.get('begin', 0)}-{s.get('end', 'end')})"
                    for s in schedulers],
        loss=', '.join(_call(loss) for loss in losses),
        seed=(cfg.get('randomness') or {}).get('seed'))


def model_facts(model: nn.Module, cfg: Config, checkpoint: str, meta: dict,
                work_dir: str, folder_name: str) -> dict:
    """What the card says about the model and its training, from config and checkpoint."""
    model_cfg = cfg.model
    return dict(
        name=osp.basename(osp.normpath(work_dir)), folder=folder_name,
        encoder=_card_encoder(model_cfg.backbone), decoder=describe_decoder(model_cfg),
        params=sum(p.numel() for p in model.parameters()),
        train_crop=_size((model_cfg.get('data_preprocessor') or {}).get('size')),
        test_cfg=dict(model_cfg.get('test_cfg') or {}),
        checkpoint=osp.basename(checkpoint), epoch=meta.get('epoch'), iter=meta.get('iter'),
        schedule=describe_schedule(cfg))


def _pct(value) -> str:
    return 'n/a' if value is None else f'{float(value):.2f}'


def _model_section(facts: dict, classes: dict) -> List[str]:
    test_cfg = facts['test_cfg']
    if test_cfg.get('mode') == 'slide':
        inference = (f"sliding windows of {_size(test_cfg.get('crop_size'))} px, stride "
                     f"{_size(test_cfg.get('stride'))}, {test_cfg.get('batch_size', 1)} "
                     'windows a batch, averaged logits: any image size')
    else:
        inference = 'the whole image at once'
    trained = f"epoch {facts['epoch']}, iteration {facts['iter']}" \
        if facts['epoch'] is not None else 'no epoch recorded'
    lines = [
        '## Model', '',
        '| | |', '|---|---|',
        f"| encoder | {facts['encoder']} |",
        f"| decoder | {facts['decoder']} |",
        f"| parameters | {facts['params'] / 1e6:.1f}M ({facts['params']:,}) |",
        f"| classes | {len(classes['classes'])}: {', '.join(classes['classes'])} |",
        f"| training input | {facts['train_crop'] or 'as loaded'} px crops |",
        f'| inference | {inference} |',
        f"| weights | `{WEIGHTS}`, from `{facts['checkpoint']}` ({trained}) |",
        '', '| id | class | colour |', '|---|---|---|']
    lines += [f'| {i} | {name} | #{r:02x}{g:02x}{b:02x} |'
              for i, (name, (r, g, b)) in enumerate(zip(classes['classes'],
                                                         classes['palette']))]
    return lines + ['']


def _split_where(split: dict) -> str:
    prefix = split.get('data_prefix') or {}
    where = osp.join(split.get('data_root') or '', prefix.get('img_path', ''))
    return f'`{where}`' + (f" listed in `{split['ann_file']}`" if split.get('ann_file') else '')


def _data_section(data: dict) -> List[str]:
    lines = ['## Training data', '',
             f"Data root `{data['data_root']}` (label mode "
             f"{data['splits']['train'].get('label_mode') or 'n/a'}).", '']
    if not data['found']:
        return lines + [f"Not summarised: {data['note']}. The splits as the config names "
                        'them:', ''] + [f'- {s}: {_split_where(d)}'
                                        for s, d in data['splits'].items()] + ['']
    lines += ['| split | images | from |', '|---|---|---|']
    lines += [f"| {s} | {d['images']} | {_split_where(d)} |" for s, d in data['splits'].items()]
    total = sum(data['train_class_pixels'].values())
    lines += ['', f'Class shares of the {total:,} labelled training pixels (train masks '
              'after the label map, ignored pixels left out):', '',
              '| class | pixels | share |', '|---|---|---|']
    lines += [f"| {c} | {n:,} | {100 * data['train_class_share'][c]:.2f}% |"
              for c, n in data['train_class_pixels'].items()]
    records = data.get('records') or {}
    settings = (records.get(layout.META_JSON) or {}).get('settings') or {}
    meta = records.get('meta.json') or {}
    if settings.get('generator'):
        lines += ['', f"Made by `{settings['generator']}` (version "
                  f"{settings.get('generator_version')}): "
                  + ', '.join(f'{k} {v}' for k, v in sorted(settings.items())
                              if k not in ('generator', 'generator_version')) + '.']
    elif meta.get('converter'):
        lines += ['', f"Converted by `{meta['converter']}` (version "
                  f"{meta.get('converter_version')}), masks on disk: "
                  f"{meta.get('label_mode_on_disk')} class ids, split seed {meta.get('seed')}."]
    if records:
        lines += ['', 'The data root\'s records (' + ', '.join(f'`{n}`' for n in records)
                  + ') are copied in `data_summary.json`.']
    return lines + ['']


def _training_section(facts: dict) -> List[str]:
    schedule = facts['schedule']
    return ['## Training', '',
            f"- {schedule['length']}, batch size {schedule['batch_size']} per process, "
            f"seed {schedule['seed']}",
            f"- optimizer {schedule['optimizer']}",
            f"- learning-rate schedule: {', then '.join(schedule['schedulers']) or 'constant'}",
            f"- loss {schedule['loss']}",
            f"- the weights are `{facts['checkpoint']}` of the work dir `{facts['name']}`; "
            f"the full configuration is `{CONFIG}`", '']


def _test_section(tables: Optional[dict], data: dict, facts: dict,
                  metrics_dir: str) -> List[str]:
    if tables is None:
        return ['## Test results', '',
                f'No test tables: `{osp.join(metrics_dir, "metrics.json")}` was not found '
                'when the model was packaged. Run `python tools/test.py CONFIG CHECKPOINT '
                '--work-dir WORK_DIR/test` and package the model again.', '']
    metrics = tables['metrics']
    boot = tables.get('bootstrap')
    test = data['splits'].get('test') or {}
    lines = ['## Test results', '',
             f"`tools/test.py` on the {tables['n_images']} images of the test split "
             f'({_split_where(test)})' + (
                 f", 95% expanded percentile bootstrap intervals over images ({boot['n_boot']} "
                 'resamples; they are about this checkpoint: another training run of the same '
                 'configuration can differ by more):' if boot else
                 ', without bootstrap intervals:'), '',
             '| metric | value | 95% interval |', '|---|---|---|']
    for key, label in (('mIoU', 'mIoU'), ('damage_IoU', 'damage IoU')):
        if key in metrics:
            interval = (f"[{_pct(metrics.get(f'{key}_ci_low'))}, "
                        f"{_pct(metrics.get(f'{key}_ci_high'))}]" if boot else '')
            lines.append(f'| {label} | {_pct(metrics[key])} | {interval} |')
    lines += [f'| {key} | {_pct(metrics[key])} | |' for key in ('mDice', 'aAcc')
              if key in metrics]
    lines += ['', '| class | IoU [95% interval] | Dice [95% interval] | precision | recall '
              '| test images with the class |', '|---|---|---|---|---|---|']
    for row in tables['per_class']:
        cells = [f"{_pct(row.get(m))} [{_pct(row.get(f'{m}_ci_low'))}, "
                 f"{_pct(row.get(f'{m}_ci_high'))}]" if boot else _pct(row.get(m))
                 for m in ('IoU', 'Dice')]
        note = f" ({row['note']})" if row.get('note') else ''
        lines.append(f"| {row['Class']} | {cells[0]} | {cells[1]} | {_pct(row.get('Precision'))}"
                     f" | {_pct(row.get('Recall'))} | {row.get('gt_images')}{note} |")
    val = data['splits'].get('val')
    if val is not None and {k: v for k, v in val.items() if k != 'images'} == \
            {k: v for k, v in test.items() if k != 'images'}:
        use = ('the best checkpoint was chosen on it' if facts['checkpoint'].startswith('best')
               else 'training was watched on it')
        lines += ['', f'The test split is the validation split and {use}: these figures '
                  'are optimistic.']
    return lines + ['', 'Tables: ' + ', '.join(f'`{name}`' for name in tables['copied'])
                    + '.', '']


def trained_on_synthetic_data(data: dict) -> bool:
    """True when the data summary's records say the demo generator made the data,
    the model's own or that of the weights it was fine-tuned from."""
    from ..data_prep.demo_generator import GENERATOR_NAME
    settings = ((data.get('records') or {}).get(layout.META_JSON) or {}).get('settings') or {}
    start = (data.get('started_from') or {}).get('data')
    return settings.get('generator') == GENERATOR_NAME or bool(
        start and trained_on_synthetic_data(start))


def limitations(data: dict, tables: Optional[dict], classes: dict) -> List[str]:
    """What the model is for and what it cannot do, one sentence each: the card's
    "Intended use and limitations" and the provenance of every infer report."""
    lines = ['For: marking damage (per pixel) in scans of heritage artworks (paintings, '
             'photographs, prints, manuscripts) to help a conservator survey them. Every '
             'mask is a suggestion to be checked by a person, not a condition report.',
             'It knows only what its training data showed: other materials, imaging set-ups, '
             'resolutions far from the training scale or damage types outside its classes '
             'are not covered and fail without warning.']
    if trained_on_synthetic_data(data):
        lines.append(SYNTHETIC_DATA_LIMITATION if not data.get('started_from') else
                     'Trained on, or fine-tuned from weights trained on, synthetic demo '
                     'images: it is not a model for real scans.')
    if tuple(classes['classes']) == tuple(BINARY_CLASSES) and data.get('train_class_share'):
        share = data['train_class_share'][BINARY_CLASSES[DAMAGE_CLASS_INDEX_BINARY]]
        lines.append(f'Damage is {100 * share:.1f}% of the training pixels: thin or faint '
                     'damage is the first to be missed.')
    if tables is not None:
        lines.append(f"The test figures come from {tables['n_images']} images; the "
                     'intervals above say how far they can be trusted.')
    return lines


def _use_section(data: dict, tables: Optional[dict], classes: dict) -> List[str]:
    return ([LIMITATIONS_HEADING, '']
            + [f'- {line}' for line in limitations(data, tables, classes)] + [''])


def _load_section(folder: str) -> List[str]:
    return [
        '## How to load it', '',
        'With artseg-mm installed (`pip install -e .` in its repository), from its root:',
        '', '```python',
        'from artseg_mm.apis import ScanInferencer, init_model',
        '',
        f"model = init_model('{folder}')                     # strict, fetches nothing",
        f"mask = ScanInferencer('{folder}')('scan.png')      # uint8 class ids, any size",
        '```', '', '```bash',
        f'python tools/infer.py SCANS --model {folder} --out OUT   # masks, overlays, summary',
        f'python tools/analysis_tools/visualization_cam.py {folder} '
        f'{folder}/{WEIGHTS} IMAGE --out OUT',
        '```', '',
        'Share it on the Hugging Face hub (`hf` comes with `huggingface_hub`; older '
        'releases call it `huggingface-cli`):', '', '```bash',
        f'hf upload USER/{folder} {folder} .',
        f'hf download USER/{folder} --local-dir {folder}',
        '```', '', '```python',
        'from huggingface_hub import snapshot_download',
        '',
        f"model = init_model(snapshot_download('USER/{folder}'))",
        '```', '',
        f'`init_model` checks `{CONFIG}`, `{WEIGHTS}` and `{CLASSES}` against the sha256 in '
        f'`{MANIFEST}` and loads the weights strictly: a changed or partly copied file, or '
        'weights that do not fit the model, stop it with the file named.', '']


def model_card(facts: dict, classes: dict, data: dict, tables: Optional[dict],
               metrics_dir: str) -> str:
    """The card's Markdown, with Hugging Face front matter."""
    head = [f"# {facts['name']}", '',
            f"Damage segmentation for heritage artworks: a {facts['encoder']} encoder with a "
            f"{facts['decoder'].split(',')[0]} decoder, {facts['params'] / 1e6:.1f}M "
            f"parameters, that labels every pixel of a scan as one of "
            f"{len(classes['classes'])} classes. Trained with artseg-mm, an MMSegmentation "
            '1.x plugin.', '']
    sections = (head + _model_section(facts, classes) + _data_section(data)
                + _training_section(facts) + _test_section(tables, data, facts, metrics_dir)
                + _use_section(data, tables, classes) + _load_section(facts['folder']))
    return HUB_FRONT_MATTER + '\n' + '\n'.join(sections)
