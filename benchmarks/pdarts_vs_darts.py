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

``--stages cpu`` compares the CPU preset's stages (3/4/5 cells) instead of the paper's in part 1;
``--stage-epochs`` sets the epochs of each stage in part 2 (default the CPU preset's: 2, one of warm-up).
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from nni_darts_ext import PDARTS, DifferentiableSearch  # first: quiets NNI's import-time warnings about new torch classes
from nni.nas.strategy import DARTS
from nni_darts_ext import trial
from nni_darts_ext.config import split_parameters
from nni_darts_ext.data import load_dataset
from nni_darts_ext.spaces import Size, load_space
from nni_darts_ext.strategies.pdarts import CPU_STAGES, STAGE_PRESETS
from side_by_side import command_line, report, step_cost


def stage_costs(arguments) -> dict[str, dict]:
    """Step cost of NNI's DARTS at the first stage's depth and of each P-DARTS stage's supernet
    (the stages of the ``--stages`` preset)."""
    device = torch.device(arguments.device)
    space = load_space('darts', 3, 10, arguments.image_size)
    images = torch.randn(arguments.batch, 3, arguments.image_size, arguments.image_size, device=device)
    labels = torch.randint(0, 10, (arguments.batch,), device=device)

    def cost(net, cells, operations) -> dict:
        measured = step_cost(net.to(device), images, labels, arguments.steps)
        if device.type == 'cuda':
            torch.cuda.empty_cache()
        return {'batch': arguments.batch, 'cells': cells, 'operations': operations, **measured}

    first = STAGE_PRESETS[arguments.stages][0].cells
    runs = {f'darts ({first} cells)': cost(DARTS().mutate_model(space.search_space(Size(arguments.width, first))),
                                           first, 8)}
    strategy = PDARTS(stages=arguments.stages)
    supernet = strategy.mutate_model(space.search_space(Size(arguments.width, first)))
    for index, stage in enumerate(strategy.slots.schedule.stages):
        if index:
            generator = torch.Generator().manual_seed(index)
            with torch.no_grad():
                for name, alpha in supernet.named_parameters():
                    if '_arch_alpha' in name:
                        alpha.copy_(torch.randn(alpha.shape, generator=generator))
            supernet = strategy.slots.schedule.next_stage_supernet(supernet, index)
        runs[f'pdarts stage {index + 1} ({stage.cells} cells)'] = cost(supernet, stage.cells, stage.operations or 8)
    return runs


def search_seconds(strategy, stages_epochs: int, arguments) -> float:
    """Seconds of a whole search of ``darts_small`` on digits (the trial's search, no retraining)."""
    config, _ = split_parameters({'dataset': 'digits', 'space': 'darts_small', 'batch_size': arguments.search_batch,
                                  'search_subset': arguments.search_subset, 'search_epochs': stages_epochs,
                                  'accelerator': arguments.device.split(':')[0]})
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
    parser.add_argument('--search-subset', type=int,
                        help="training images of the whole-search comparison (default: all of digits')")
    parser.add_argument('--stages', choices=STAGE_PRESETS, default='paper',
                        help="the per-stage comparison's P-DARTS stages: the paper's or the CPU preset's")
    parser.add_argument('--stage-epochs', type=int,
                        help="epochs of each stage of the whole search, the first half (rounded down) warm-up "
                             "(default: the CPU preset's)")
    arguments = parser.parse_args()
    stages = STAGE_PRESETS[arguments.stages]
    arguments.cells = stages[0].cells  # the depth of DARTS's supernet and of the first stage
    torch.manual_seed(0)
    if arguments.threads:
        torch.set_num_threads(arguments.threads)

    runs = stage_costs(arguments)
    stage_runs = list(runs.values())[1:]
    memory = 'peak_mb' if 'peak_mb' in stage_runs[0] else 'activation_mb'
    growth = stage_runs[-1][memory] / stage_runs[0][memory]

    search_stages = CPU_STAGES if arguments.stage_epochs is None else tuple(
        replace(stage, epochs=arguments.stage_epochs, warmup_epochs=arguments.stage_epochs // 2)
        for stage in CPU_STAGES)
    epochs = sum(stage.epochs for stage in search_stages)
    pdarts = search_seconds(PDARTS(stages=search_stages), epochs, arguments)
    darts = search_seconds(DifferentiableSearch(), epochs, arguments)

    report(runs, f'darts ({stages[0].cells} cells)', ['median_step_s', 'activation_mb', 'peak_mb'], arguments,
           setting=f", P-DARTS's {arguments.stages} stages ({'/'.join(str(s.cells) for s in stages)} cells over "
                   f"{'/'.join(str(s.operations or 8) for s in stages)} operations)",
           extra={'whole_search': {'batch': arguments.search_batch, 'epochs': epochs, 'pdarts_s': pdarts,
                                   'darts_s': darts, 'ratio': pdarts / darts}})
    print(f'deepest stage / first stage, {memory}: {growth:.3f} (target <= 1.3)')
    print(f'whole search on digits, {epochs} epochs, batch {arguments.search_batch}: pdarts (cells '
          f'{"/".join(str(s.cells) for s in CPU_STAGES)}) {pdarts:.1f} s, darts ({CPU_STAGES[0].cells} cells) '
          f'{darts:.1f} s, ratio {pdarts / darts:.3f} (target <= 1.0)')

if __name__ == '__main__':
    main()
