"""A graded course on the history of deep learning.

The package holds the unit catalogue (:mod:`course.catalogue`), the isolated grading engine
(:mod:`course.grading`), the notebook builder (:mod:`course.build`), the command line
(:mod:`course.cli`) and the offline data generators (:mod:`course.data`).
"""

__version__ = "0.1.0"
