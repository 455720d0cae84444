"""A config as data: what shared models carry instead of Python.

Why it exists: mmengine reads a ``.py`` config by executing it (``Config.fromfile``,
``Config.fromstring``), so the config inside a model someone else made would run
their code the moment it is loaded, before any weight is read. Model folders and
exported files therefore carry the config as JSON, which is read as data: nothing
in it is executed, it may not inherit other files (``_base_``), and the only module
it may ask to import is artseg_mm itself (importing a module runs its code).
A work dir's ``.py`` dump is still read with mmengine: that is the user's own run.
"""
import json

from mmengine.config import Config

# what a shared config may name in custom_imports: the package that reads it
ALLOWED_IMPORTS = ('artseg_mm', )


class ConfigDataError(ValueError):
    """A shared model's config that is not plain, safe data."""


def config_to_json(cfg: Config) -> str:
    """The config as JSON text (tuples become lists); an error for values JSON
    cannot hold (functions, classes, NaN), naming the reason."""
    try:
        return json.dumps(cfg.to_dict(), indent=2, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ConfigDataError(f'the config holds a value that cannot be shared as data '
                              f'({error}); use plain numbers, strings, lists and dicts') from error


def config_from_json(text: str, source: str) -> Config:
    """A ``Config`` from JSON text, checked; ``source`` names it in errors.

    Python text (a model written by an older artseg-mm, or a crafted one) is
    refused, never executed.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigDataError(
            f'{source}: the config is not JSON ({error}). Shared models carry their config '
            'as JSON; a Python config is not run. If this model was written by an older '
            'artseg-mm, package or export it again from its work dir') from error
    if not isinstance(data, dict) or not isinstance(data.get('model'), dict):
        raise ConfigDataError(f'{source}: not a model config (a JSON object with a "model" '
                              'object)')
    if '_base_' in data:
        raise ConfigDataError(f'{source}: a shared config cannot inherit other files '
                              '(_base_); it must be complete')
    imports = (data.get('custom_imports') or {}).get('imports', [])
    imports = [imports] if isinstance(imports, str) else list(imports)
    others = [name for name in imports if name not in ALLOWED_IMPORTS]
    if others:
        raise ConfigDataError(f'{source}: custom_imports names {others}; a shared model may '
                              f'import only {", ".join(ALLOWED_IMPORTS)} (importing a module '
                              'runs its code)')
    return Config(data)


def read_config_json(path: str) -> Config:
    """:func:`config_from_json` of a file."""
    with open(path, encoding='utf-8') as f:
        return config_from_json(f.read(), path)
