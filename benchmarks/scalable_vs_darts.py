"""Scalable-DARTS against NNI's own DARTS on the same factored space, in the same run.

The space is ``search_spaces/darts_factorized.yml``: per edge, 8 activations x 4 convolutions
= 32 combinations, 3 unfactored operations and the zero operation. NNI's DARTS searches it as
36 plain candidates (one architecture parameter and one operation per combination);
Scalable-DARTS with one parameter vector per factor, running the 4 convolution bodies on the
mixed activation. Reported: median step time, saved activations, peak memory (GPU), operation
weights, architecture parameters, each as a ratio of NNI's DARTS on the product space. For
context, NNI's DARTS on DARTS's own 7 operations (``darts.yml``) runs too.

A step is as :mod:`side_by_side` measures it (forward, backward, SGD update).

    python benchmarks/scalable_vs_darts.py                      # CPU, a small supernet
    python benchmarks/scalable_vs_darts.py --device cuda --width 16 --cells 8 --image-size 32 --batch 64
"""

from __future__ import annotations

import torch

from nni_darts_ext import ScalableDARTS  # first: it quiets NNI's import-time warnings about new torch classes
from nni.nas.strategy import DARTS
from side_by_side import command_line, report, supernet_cost


def main() -> None:
    arguments = command_line(__doc__.splitlines()[0]).parse_args()
    torch.manual_seed(0)
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    runs = {
        'darts, product space': supernet_cost(DARTS(), 'darts_factorized', arguments, arguments.batch),
        'scalable, product space': supernet_cost(ScalableDARTS(), 'darts_factorized', arguments, arguments.batch),
        'darts, darts.yml (7 operations)': supernet_cost(DARTS(), 'darts', arguments, arguments.batch),
    }
    report(runs, 'darts, product space',
           ['median_step_s', 'activation_mb', 'peak_mb', 'operation_weights', 'arch_parameters'], arguments)


if __name__ == '__main__':
    main()
