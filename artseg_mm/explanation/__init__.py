"""Why a trained segmentor predicts what it does: Grad-CAM (``cam``) and attention maps
(``attention``).

Not imported by ``import artseg_mm``: it pulls in grad-cam and matplotlib, which
training does not need. The tools in ``tools/analysis_tools/`` import it.
"""
from .attention import (CoatAttentionResult, NoAttentionError, SwinAttentionResult,
                        coat_factor_attention, find_attention_blocks, select_block,
                        swin_window_attention, swin_window_cells)
from .cam import (AnalysisInputError, CamResult, FeatureReshape, LayerNotFoundError,
                  SegLogitsWrapper, compute_gradcam, default_target_layer_names, get_module,
                  load_segmentor, prepare_image)

__all__ = [
    'AnalysisInputError', 'CamResult', 'CoatAttentionResult', 'FeatureReshape',
    'LayerNotFoundError', 'NoAttentionError', 'SegLogitsWrapper', 'SwinAttentionResult',
    'coat_factor_attention', 'compute_gradcam', 'default_target_layer_names',
    'find_attention_blocks', 'get_module', 'load_segmentor', 'prepare_image', 'select_block',
    'swin_window_attention', 'swin_window_cells'
]
