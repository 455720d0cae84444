"""Install artseg_mm, the MMSegmentation 1.x plugin for heritage-artwork damage segmentation."""
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent

# Installed into site-packages: every interpreter of the environment then answers
# `import mmcv.ops` with artseg_mm's pure-PyTorch stand-in when mmcv-lite lacks
# the compiled ops, so mmseg's own tools run from a plain shell. It loads the hook
# by path (the package itself is not imported) and does nothing if artseg_mm, or
# that file, is not there.
STARTUP_PTH = 'artseg_mm-mmcv-ops.pth'
STARTUP_LINE = (
    "import importlib.util as u, os.path as p; s = u.find_spec('artseg_mm'); "
    "f = s and p.join(s.submodule_search_locations[0], 'compat', 'mmcv_startup_hook.py'); "
    "h = f and p.isfile(f) and u.spec_from_file_location('artseg_mm_mmcv_startup_hook', f); "
    "m = h and u.module_from_spec(h); h and h.loader.exec_module(m); m and m.install()\n")


class BuildWithStartupHook(build_py):
    """build_py that also writes the start-up ``.pth`` (regular and editable installs)."""

    def run(self):
        super().run()
        self.startup_pth().write_text(STARTUP_LINE)

    def startup_pth(self) -> Path:
        # an editable wheel holds the files of install_lib, not of build_lib
        folder = (self.distribution.get_command_obj('install').install_lib
                  if self.editable_mode else self.build_lib)
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder) / STARTUP_PTH


def read_requirements(name):
    """Requirement lines of requirements/<name>.txt, comments dropped."""
    lines = (HERE / 'requirements' / f'{name}.txt').read_text().splitlines()
    return [line.split('#')[0].strip() for line in lines if line.split('#')[0].strip()]


setup(
    name='artseg_mm',
    version='0.1.0',
    description='ARTeFACT damage segmentation: timm encoders under one UPerNet decoder, '
                'as an MMSegmentation 1.x plugin',
    long_description=(HERE / 'README.md').read_text() if (HERE / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['artseg_mm', 'artseg_mm.*']),
    # the viewers (OpenSeadragon, Annotorious) infer and the annotation viewer copy out
    package_data={'artseg_mm.visualization': ['static/openseadragon/*',
                                              'static/openseadragon/images/*',
                                              'static/annotorious/*']},
    python_requires='>=3.9',
    install_requires=read_requirements('runtime'),
    extras_require={'tests': read_requirements('tests'),
                    'tensorboard': read_requirements('tensorboard')},
    license='Apache-2.0',
    cmdclass={'build_py': BuildWithStartupHook},
)
