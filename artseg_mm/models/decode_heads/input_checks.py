"""Input checks shared by the multi-level decode heads."""
from typing import Sequence

from torch import Tensor


def check_num_inputs(head, inputs: Sequence[Tensor]) -> None:
    """Raise a ValueError naming the head when fewer feature maps arrive than
    its ``in_index`` selects (mmseg would fail with a bare IndexError)."""
    needed = max(head.in_index) + 1
    if len(inputs) < needed:
        raise ValueError(
            f'{type(head).__name__}: expected {needed} feature maps '
            f'(in_index={list(head.in_index)}), got {len(inputs)}')
