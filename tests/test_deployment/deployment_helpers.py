"""A tiny trained-model work dir (tests/test_apis/apis_helpers.py) with
128 px windows, the size the exports are tested at."""
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / 'tests' / 'test_apis'))
from apis_helpers import write_work_dir  # noqa: E402

__all__ = ['COAT_CONFIG', 'COAT_OPTIONS', 'WINDOW_FLAGS', 'WINDOW_OPTIONS', 'write_work_dir']

# the tiny ConvNeXt-atto model's windows: 128 px, stride 96, 2 per batch
WINDOW_OPTIONS = {'model.test_cfg.crop_size': (128, 128),
                  'model.test_cfg.stride': (96, 96),
                  'model.test_cfg.batch_size': 2}
# the same as --cfg-options of a tool
WINDOW_FLAGS = ['model.test_cfg.crop_size=(128,128)', 'model.test_cfg.stride=(96,96)',
                'model.test_cfg.batch_size=2']
# a demo CoaT config shrunk to CoaT-Lite-Tiny at 64 px: the fixed-size encoder
COAT_CONFIG = REPO / 'configs' / 'demo' / 'coat_lite_small_upernet_demo.py'
COAT_OPTIONS = {'model.backbone.model_name': 'coat_lite_tiny',
                'model.backbone.img_size': 64,
                'model.backbone.drop_path_rate': 0.0,
                'model.decode_head.in_channels': None,
                'model.decode_head.channels': 16,
                'model.data_preprocessor.size': (64, 64),
                'model.test_cfg.crop_size': (64, 64),
                'model.test_cfg.stride': (48, 48)}
