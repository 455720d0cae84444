"""What importing and installing artseg_mm leaves alone: mmseg, mmengine and mmcv
keep every function and class they had, and no start-up file of the package changes
how other programs of the environment import modules."""
import json
import site
from pathlib import Path

from conftest import PY, run_tool

SNAPSHOT = '''
import importlib, inspect, json, sys
import mmseg.apis, mmseg.apis.utils, mmseg.apis.inference, mmseg.apis.mmseg_inferencer
import mmseg.models, mmseg.datasets, mmengine.runner, mmengine.runner.checkpoint, mmcv.transforms

def snapshot():
    names = sorted(m for m in sys.modules if m.split('.')[0] in ('mmseg', 'mmengine', 'mmcv'))
    seen = {}
    for name in names:
        module = sys.modules[name]
        for attr, value in list(vars(module).items()):
            if inspect.isfunction(value) or inspect.isclass(value):
                seen[f'{name}.{attr}'] = id(value)
            if inspect.isclass(value) and value.__module__ == name:
                for key, member in vars(value).items():
                    if inspect.isfunction(member):
                        seen[f'{name}.{attr}.{key}'] = id(member)
    return seen

before = snapshot()
import artseg_mm, artseg_mm.apis
after = snapshot()
print(json.dumps(sorted(k for k in before if after.get(k) != before[k])))
'''


def test_importing_artseg_mm_replaces_nothing_in_mmseg_mmengine_or_mmcv():
    proc = run_tool([PY, '-c', SNAPSHOT])
    changed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert changed == []


def test_the_package_installs_no_import_hook_of_its_own():
    # the only start-up file is setuptools' editable-install finder, which maps the
    # name artseg_mm to this checkout and nothing else
    folders = [Path(p) for p in site.getsitepackages() + [site.getusersitepackages()]]
    ours = [pth.name for folder in folders if folder.is_dir() for pth in folder.glob('*.pth')
            if 'artseg' in pth.read_text(errors='replace')]
    assert all(name.startswith('__editable__.artseg_mm') for name in ours), ours
    proc = run_tool([PY, '-c', 'import importlib.util, mmcv; '
                     'print(importlib.util.find_spec("mmcv.ops").origin)'])
    import mmcv
    assert proc.stdout.strip().startswith(str(Path(mmcv.__file__).parent))


def test_held_back_import_output_is_written_out_even_when_the_import_fails(capsys):
    import pytest
    from artseg_mm.utils.known_warnings import without_optional_import_notices
    with pytest.raises(ImportError):
        with without_optional_import_notices():
            print('Could not import OneDL')
            print('mmfoo: the reason this import fails')
            raise ImportError('mmfoo')
    assert capsys.readouterr().out == 'mmfoo: the reason this import fails\n'
