"""PC-DARTS against NNI's own DARTS on the same supernet, in the same run: step time,
activation memory, peak memory (GPU), operation weights; PC-DARTS's figures as ratios of DARTS's.

A step is as :mod:`side_by_side` measures it (forward, backward, SGD update). PC-DARTS runs at the
same batch and at ``--pc-batch-factor`` times it (the paper raises 64 to 256).

    python benchmarks/pcdarts_vs_darts.py                      # CPU, a small supernet
    python benchmarks/pcdarts_vs_darts.py --device cuda --width 16 --cells 8 --image-size 32 --batch 64
    python benchmarks/pcdarts_vs_darts.py --space nni:DARTS --precision bfloat16 --channels-last   # NNI's hub space
"""

from __future__ import annotations

import torch

from nni_darts_ext import PCDARTS  # first: it quiets NNI's import-time warnings about new torch classes
from nni.nas.strategy import DARTS
from side_by_side import command_line, report, supernet_cost


def main() -> None:
    parser = command_line(__doc__.splitlines()[0])
    parser.add_argument('--k', type=int, default=4)
    parser.add_argument('--space', default='darts', help="a space name, as trials take it (nni:DARTS: NNI's hub space)")
    parser.add_argument('--pc-batch-factor', type=int, default=4)
    parser.add_argument('--no-cudnn', action='store_true',
                        help="PyTorch's own convolutions instead of cuDNN's (whose workspaces count in the peak)")
    arguments = parser.parse_args()
    torch.manual_seed(0)
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    torch.backends.cudnn.enabled = not arguments.no_cudnn

    runs = {
        'darts': supernet_cost(DARTS(), arguments.space, arguments, arguments.batch),
        f'pcdarts k={arguments.k}': supernet_cost(PCDARTS(k=arguments.k), arguments.space, arguments, arguments.batch),
        f'pcdarts k={arguments.k}, batch x{arguments.pc_batch_factor}':
            supernet_cost(PCDARTS(k=arguments.k), arguments.space, arguments, arguments.batch * arguments.pc_batch_factor),
    }
    report(runs, 'darts', ['step_s', 'activation_mb', 'peak_mb', 'operation_weights', 'arch_gradient_cosine'],
           arguments, setting=f', cuDNN {"off" if arguments.no_cudnn else "on"}, {arguments.precision}'
                              f'{", channels-last" if arguments.channels_last else ""}')


if __name__ == '__main__':
    main()
