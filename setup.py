"""Install artseg_mm, the MMSegmentation 1.x plugin for heritage-artwork damage segmentation."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


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
)
