"""Test with ``optimize_for_inference``'s faster copy of the loaded model."""
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmseg.registry import HOOKS


@HOOKS.register_module()
class InferenceOptimizationHook(Hook):
    """Before the test loop (after the checkpoint is loaded), replace the
    runner's model by ``artseg_mm.acceleration.optimize_for_inference``'s copy.

    Why it exists: the speed-ups rewrite layers and weights, so they are applied
    to a copy once the weights are final, never to the model that trains; the
    test tool adds this hook unless ``--plain-model`` is given. A model wrapped
    for distributed testing, or one without a ``test_cfg`` (a TTA wrapper), is
    tested as it is, which the log says.
    """

    priority = 'LOWEST'

    def before_test(self, runner) -> None:
        from ...acceleration import optimize_for_inference
        model = runner.model
        if is_model_wrapper(model) or getattr(model, 'test_cfg', None) is None:
            print_log(f'InferenceOptimizationHook: {type(model).__name__} is tested as '
                      'built (no inference speed-ups for a wrapped or TTA model)',
                      logger='current')
            return
        runner.model = optimize_for_inference(model)
        print_log('InferenceOptimizationHook: testing optimize_for_inference\'s copy of the '
                  'loaded model (--plain-model tests the model as built)', logger='current')
