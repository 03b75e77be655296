"""P-DARTS against NNI's own DARTS in the same run: what each stage costs, and what the whole search costs.

1. Per stage: P-DARTS's supernet at the stage's depth over the operations the stage keeps
   (pruned from seeded random weights), against NNI's DARTS on all 8 operations at the first
   stage's depth: median step time, activation memory (bytes autograd saves for the backward
   pass), peak memory on CUDA; as ratios of DARTS's. Target: the deepest stage at most 1.3x
   the first stage's memory.
2. The whole search on real data (scikit-learn's digits, ``darts_small``): P-DARTS's stages
   against NNI's DARTS at the first stage's depth for the same total number of epochs, search
   seconds and their ratio. Target: at most 1.0.

    python benchmarks/pdarts_vs_darts.py --threads 2 --output benchmarks/results/pdarts_vs_darts_cpu.json
"""

from __future__ import annotations

import time

import torch

from nni_darts_ext import PDARTS, ValidatedDARTS  # first: quiets NNI's import-time warnings about new torch classes
from nni.nas.strategy import DARTS
from nni_darts_ext import trial
from nni_darts_ext.config import split_parameters
from nni_darts_ext.data import load_dataset
from nni_darts_ext.spaces import Size, load_space
from nni_darts_ext.strategies.pdarts import CPU_STAGES, PAPER_STAGES
from side_by_side import command_line, report, step_cost


def stage_costs(arguments) -> dict[str, dict]:
    """Step cost of NNI's DARTS at the first stage's depth and of each P-DARTS stage's supernet."""
    device = torch.device(arguments.device)
    space = load_space('darts', 3, 10, arguments.image_size)
    images = torch.randn(arguments.batch, 3, arguments.image_size, arguments.image_size, device=device)
    labels = torch.randint(0, 10, (arguments.batch,), device=device)

    def cost(net, cells, operations) -> dict:
        measured = step_cost(net.to(device), images, labels, arguments.steps)
        if device.type == 'cuda':
            torch.cuda.empty_cache()
        return {'batch': arguments.batch, 'cells': cells, 'operations': operations, **measured}

    first = PAPER_STAGES[0].cells
    runs = {f'darts ({first} cells)': cost(DARTS().mutate_model(space.search_space(Size(arguments.width, first))),
                                           first, 8)}
    strategy = PDARTS(stages='paper')
    supernet = strategy.mutate_model(space.search_space(Size(arguments.width, first)))
    for index, stage in enumerate(strategy.stages):
        if index:
            generator = torch.Generator().manual_seed(index)
            with torch.no_grad():
                for name, alpha in supernet.named_parameters():
                    if '_arch_alpha' in name:
                        alpha.copy_(torch.randn(alpha.shape, generator=generator))
            supernet = strategy.next_stage_supernet(supernet, index)
        runs[f'pdarts stage {index + 1} ({stage.cells} cells)'] = cost(supernet, stage.cells, stage.operations or 8)
    return runs


def search_seconds(strategy, stages_epochs: int, arguments) -> float:
    """Seconds of a whole search of ``darts_small`` on digits (the trial's search, no retraining)."""
    config, _ = split_parameters({'dataset': 'digits', 'space': 'darts_small', 'batch_size': arguments.search_batch,
                                  'search_epochs': stages_epochs, 'accelerator': arguments.device.split(':')[0]})
    torch.manual_seed(0)
    data = load_dataset('digits')
    space = load_space('darts_small', data.channels, data.num_classes, data.image_size)
    evaluator = trial.search_evaluator(data, config, [])
    started = time.perf_counter()
    strategy.mutate_evaluator(evaluator).evaluate(strategy.mutate_model(space.search_space()))
    return time.perf_counter() - started


def main() -> None:
    parser = command_line(__doc__.splitlines()[0])
    parser.add_argument('--search-batch', type=int, default=32, help='batch of the whole-search comparison')
    parser.set_defaults(cells=PAPER_STAGES[0].cells)
    arguments = parser.parse_args()
    torch.manual_seed(0)
    if arguments.threads:
        torch.set_num_threads(arguments.threads)

    runs = stage_costs(arguments)
    stages = list(runs.values())[1:]
    memory = 'peak_mb' if 'peak_mb' in stages[0] else 'activation_mb'
    growth = stages[-1][memory] / stages[0][memory]

    epochs = sum(stage.epochs for stage in CPU_STAGES)
    pdarts = search_seconds(PDARTS(stages='cpu'), epochs, arguments)
    darts = search_seconds(ValidatedDARTS(), epochs, arguments)

    report(runs, f'darts ({PAPER_STAGES[0].cells} cells)', ['median_step_s', 'activation_mb', 'peak_mb'], arguments,
           setting=", the paper's stages (5/11/17 cells over 8/5/3 operations)",
           extra={'whole_search': {'batch': arguments.search_batch, 'epochs': epochs, 'pdarts_s': pdarts,
                                   'darts_s': darts, 'ratio': pdarts / darts}})
    print(f'deepest stage / first stage, {memory}: {growth:.3f} (target <= 1.3)')
    print(f'whole search on digits, {epochs} epochs, batch {arguments.search_batch}: pdarts (cells '
          f'{"/".join(str(s.cells) for s in CPU_STAGES)}) {pdarts:.1f} s, darts ({CPU_STAGES[0].cells} cells) '
          f'{darts:.1f} s, ratio {pdarts / darts:.3f} (target <= 1.0)')

if __name__ == '__main__':
    main()
