"""The DARTS family as one-shot strategies for Microsoft NNI 3.0.

>>> from nni_darts_ext import PCDARTS, StabilizedDARTS, combine, make_strategy
>>> strategy = make_strategy('darts', arc_learning_rate=6e-4)
>>> both = make_strategy('pcdarts+stabilized', k=2)          # techniques composed by name
>>> same = combine(PCDARTS, StabilizedDARTS)(k=2, eta=1e-3)  # or by class

Each technique fills slots of one search (:mod:`nni_darts_ext.strategies.search`); a new one is a
:class:`Technique` and a :func:`preset` beside it.

Every strategy works in ``NasExperiment`` on any NNI model space built from ``LayerChoice``,
``InputChoice`` and ``Cell``, and in the nnictl trial (``python -m nni_darts_ext.trial``).
"""

from .nni_internals import import_strategies

import_strategies()  # before any of NNI's one-shot modules

# first: it imports the techniques in the order their variants are listed
from .variants import VARIANTS, Variant, find_variant, make_strategy  # noqa: E402
from .composition import combine  # noqa: E402
from .errors import ConfigError  # noqa: E402
from .registry import preset  # noqa: E402
from .strategies.darts import NNIDARTS  # noqa: E402
from .strategies.ladarts import LatencyAwareDARTS  # noqa: E402
from .strategies.pcdarts import PCDARTS  # noqa: E402
from .strategies.pdarts import PDARTS  # noqa: E402
from .strategies.random_architecture import RandomArchitecture  # noqa: E402
from .strategies.scalable import ScalableDARTS  # noqa: E402
from .strategies.search import DifferentiableSearch  # noqa: E402
from .strategies.protocols import ArchitectureTerm  # noqa: E402
from .strategies.slots import Slots, Technique  # noqa: E402
from .strategies.second_order import SecondOrderDARTS  # noqa: E402
from .strategies.stabilized import StabilizedDARTS  # noqa: E402
from .supermodules.probabilities import probability_rows  # noqa: E402

__all__ = ['ArchitectureTerm', 'ConfigError', 'DifferentiableSearch', 'LatencyAwareDARTS', 'NNIDARTS', 'PCDARTS',
           'PDARTS', 'RandomArchitecture', 'ScalableDARTS', 'SecondOrderDARTS', 'Slots', 'StabilizedDARTS', 'Technique',
           'VARIANTS', 'Variant', 'combine', 'find_variant', 'make_strategy', 'preset',
           'probability_rows']
