"""Fetch the ImageNet weights of the study's encoders into one folder, for offline nodes.

Run it where there is internet (a cluster's login node); train on the compute nodes
with ``--cfg-options model.backbone.pretrained_dir=DIR``. Each timm model the
configs name is loaded with its pretrained weights through timm (from the hub, or
from a file given with ``--local NAME=FILE``), its classifier weights saved as
``DIR/<model>.safetensors``, and ``DIR/pretrained_index.json`` records for each the
file, its sha256 (checked when a run loads it), its source and the configs.

    python tools/misc/fetch_pretrained.py --out weights/                 # the four study configs
    python tools/misc/fetch_pretrained.py --out weights/ configs/swin_tiny_upernet_artefact.py
"""
import argparse
import glob
import os
import os.path as osp
import sys

from tqdm import tqdm

from artseg_mm.cli import config_with_options
from artseg_mm.models.backbones.pretrained_weights import (INDEX_FILE, hub_repository,
                                                           read_index, write_index)
from artseg_mm.utils.errors import error_summary
from artseg_mm.utils.hashing import sha256_of

STUDY_CONFIGS = sorted(glob.glob(osp.join(osp.dirname(__file__), '..', '..', 'configs',
                                          '*_artefact.py')))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='*', help='configs whose encoders to fetch '
                        '(default: the study configs, configs/*_artefact.py)')
    parser.add_argument('--out', required=True, help='the weights folder (created; an '
                        'existing index is extended)')
    parser.add_argument('--local', nargs='+', default=[], metavar='NAME=FILE',
                        help='take timm model NAME from a local file of its classifier '
                        'weights instead of the hub')
    return parser.parse_args(argv)


def encoder_names(configs) -> dict:
    """timm model name -> the configs that ask for its pretrained weights."""
    names = {}
    for config in configs:
        backbone = config_with_options(config, None).model.backbone
        if backbone.get('model_name') and backbone.get('pretrained'):
            names.setdefault(backbone.model_name, []).append(osp.basename(config))
    return names


def save_classifier_weights(model_name: str, path: str, local_file=None) -> None:
    """timm's pretrained classifier of ``model_name`` (hub or ``local_file``) -> safetensors."""
    import timm
    from safetensors.torch import save_file
    overlay = dict(file=local_file) if local_file else None
    model = timm.create_model(model_name, pretrained=True, pretrained_cfg_overlay=overlay)
    save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()},
              path, metadata=dict(timm_model=model_name))


def main(argv=None) -> int:
    args = parse_args(argv)
    configs = args.configs or STUDY_CONFIGS
    missing = [c for c in configs if not osp.isfile(c)]
    if missing:
        print(f'fetch_pretrained: no such config: {", ".join(missing)}', file=sys.stderr)
        return 2
    local = {}
    for item in args.local:
        name, sep, path = item.partition('=')
        if not sep or not osp.isfile(path):
            print(f'fetch_pretrained: --local {item}: expected NAME=FILE with an existing '
                  'file', file=sys.stderr)
            return 2
        local[name] = osp.abspath(path)
    names = encoder_names(configs)
    if not names:
        print('fetch_pretrained: none of these configs asks for pretrained weights',
              file=sys.stderr)
        return 2
    unused = sorted(set(local) - set(names))
    if unused:
        print(f'fetch_pretrained: --local {", ".join(unused)}: no config here uses it '
              f'(they use {", ".join(sorted(names))})', file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    try:
        index = read_index(args.out)['weights'] if osp.isfile(
            osp.join(args.out, INDEX_FILE)) else {}
    except ValueError as error:
        print(f'fetch_pretrained: {error}; give another --out or remove it', file=sys.stderr)
        return 2
    for name in tqdm(sorted(names), desc='encoders', unit='model'):
        path = osp.join(args.out, f'{name}.safetensors')
        try:
            save_classifier_weights(name, path, local.get(name))
        except Exception as error:  # the hub's errors are its HTTP client's, which changed
            # between huggingface_hub releases (requests, httpx, httpx2): each is named here
            first_line = error_summary(error)
            if name not in local:
                print(f'fetch_pretrained: {name}: cannot fetch its weights from '
                      f'{hub_repository(name)} ({first_line}); run this where there is '
                      f'internet, or give --local {name}=FILE', file=sys.stderr)
            elif isinstance(error, (OSError, RuntimeError, ValueError)):
                print(f'fetch_pretrained: --local {name}={local[name]}: not {name}\'s '
                      f'classifier weights ({first_line})', file=sys.stderr)
            else:
                raise
            return 2
        index[name] = dict(file=osp.basename(path), sha256=sha256_of(path),
                           source=f'local file {local[name]}' if name in local
                           else f'timm hub: {hub_repository(name)}',
                           configs=sorted(set(index.get(name, {}).get('configs', []))
                                          | set(names[name])))
        write_index(args.out, index)
    print(f'{len(names)} encoder(s) in {args.out}; train offline with '
          f'--cfg-options model.backbone.pretrained_dir={args.out}')
    for name in sorted(names):
        print(f'  {name}: {index[name]["file"]} sha256 {index[name]["sha256"][:16]}... '
              f'({index[name]["source"]})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
