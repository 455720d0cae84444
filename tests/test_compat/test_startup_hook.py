"""The start-up hook installed with the package: ``mmcv.ops`` on mmcv-lite from a
plain interpreter, before (and without) ``import artseg_mm``."""
import importlib.util
import site
from pathlib import Path

from conftest import PY, REPO, run_tool

HOOK_FILE = REPO / 'artseg_mm' / 'compat' / 'mmcv_startup_hook.py'
STANDIN_FILE = REPO / 'artseg_mm' / 'compat' / 'mmcv_ops.py'


def load_hook():
    """The hook module loaded by path, as the installed .pth loads it."""
    spec = importlib.util.spec_from_file_location('startup_hook_under_test', HOOK_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pth_file_is_installed_with_the_package():
    pth_files = [path for folder in site.getsitepackages()
                 for path in Path(folder).glob('*.pth')]
    hooks = [path for path in pth_files if 'mmcv_startup_hook' in path.read_text()]
    assert len(hooks) == 1, f'no start-up .pth among {pth_files}'


def test_plain_interpreter_imports_mmseg_models_without_artseg_mm():
    proc = run_tool([PY, '-c', 'import sys, mmseg.models, mmcv.ops\n'
                     "assert 'artseg_mm' not in sys.modules, 'artseg_mm was imported'\n"
                     'from mmseg.registry import MODELS\n'
                     "assert MODELS.get('PointHead') is not None\n"
                     'print(mmcv.ops.__file__)'])
    assert Path(proc.stdout.strip().splitlines()[-1]).samefile(STANDIN_FILE)
    assert 'MultiScaleDeformableAttention' not in proc.stderr


def test_finder_serves_the_standin_only_without_compiled_ops(monkeypatch):
    hook = load_hook()
    finder = hook.PurePytorchOpsFinder()
    assert finder.find_spec('mmcv.cnn') is None
    spec = finder.find_spec('mmcv.ops')
    assert Path(spec.origin).samefile(STANDIN_FILE) and spec.name == 'mmcv.ops'
    real_find_spec = importlib.util.find_spec

    def full_mmcv(name, *args):  # as if mmcv._ext were installed
        return object() if name == 'mmcv._ext' else real_find_spec(name, *args)
    monkeypatch.setattr(importlib.util, 'find_spec', full_mmcv)
    assert finder.find_spec('mmcv.ops') is None


def test_install_adds_one_finder_however_often_the_pth_runs(monkeypatch):
    import sys
    monkeypatch.setattr(sys, 'meta_path', [f for f in sys.meta_path
                                           if not getattr(f, 'serves_pure_pytorch_ops', 0)])
    for _ in range(2):  # site-packages read twice (lib and lib64), a fresh copy each time
        load_hook().install()
    assert sum(getattr(f, 'serves_pure_pytorch_ops', False) for f in sys.meta_path) == 1
    assert getattr(sys.meta_path[0], 'serves_pure_pytorch_ops', False)
