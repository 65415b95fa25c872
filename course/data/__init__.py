"""Offline, seeded data for lectures and checks. Nothing here touches the network.

- :mod:`course.data.digits`: scikit-learn's bundled 8×8 handwritten digits, upsampled on request.
- :mod:`course.data.captions`: the digits with captions ("a seven", "a thin three") whose
  words follow from the image and its label, for Part 05's conditional generation units.
- :mod:`course.data.toy2d`: 2-D toy distributions (swiss roll, moons, gaussian mixtures).
- :mod:`course.data.sequences`: synthetic sequence tasks with known structure.
- :mod:`course.data.linear_teacher`: noisy linear regression from a random linear teacher.
- :mod:`course.data.language`: a synthetic English-like language (number agreement across
  attractors, document topics) and its tasks, for the language-model units of Part 04
  (imported from its module, ``from course.data.language import corpus``: its names are
  too generic for the package namespace, and ``language`` would shadow the module).
"""

from course.data.captions import CaptionedDigits, captioned_digits
from course.data.cells import touching_cells
from course.data.digits import DigitSplit, load_digits
from course.data.linear_teacher import LinearTask, expected_test_error, noisy_linear_regression
from course.data.patterns import encoder_patterns, xor
from course.data.sequences import copy_task, long_lag_bits, reverse_task, sort_task
from course.data.toy2d import gaussian_mixture, moons, swiss_roll

__all__ = [
    "CaptionedDigits",
    "captioned_digits",
    "touching_cells",
    "DigitSplit",
    "load_digits",
    "LinearTask",
    "expected_test_error",
    "noisy_linear_regression",
    "encoder_patterns",
    "xor",
    "copy_task",
    "long_lag_bits",
    "reverse_task",
    "sort_task",
    "gaussian_mixture",
    "moons",
    "swiss_roll",
]
