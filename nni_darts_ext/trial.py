"""The nnictl trial: parameters -> search -> export -> retrain -> test -> report.

Run by NNI (``trialCommand: python3 -m nni_darts_ext.trial ...``) or standalone, with the same
outputs in ``--output-dir``. It drives the strategy directly (``mutate_model``,
``mutate_evaluator``, ``evaluate``, ``export``): ``NasExperiment`` inside a trial would take
over NNI's trial channel, and per-epoch results would never reach the web UI.

Files written: ``arch.json`` (the architecture and what produced it), ``<cell>.png`` (a
drawing of each found cell), ``metrics.json`` (every per-epoch record and the final result),
``tensorboard/`` (the same records, the architecture's probabilities and the drawings as
TensorBoard event files: :mod:`nni_darts_ext.board`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import json
import logging
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import nni
import pytorch_lightning as pl
import torch
from nni.nas.evaluator.pytorch import DataLoader, Lightning
from pytorch_lightning.utilities.exceptions import SIGTERMException

from . import architecture
from .board import TENSORBOARD_DIR, TrialBoard
from .checkpoints import CHECKPOINT_DIR, SearchSettings, checkpoint_to_resume
from .collapse import CollapseMonitor
from .connected import NoConnectedArchitecture, by_joint_probability, first_connected, is_connected
from .config import TrialConfig, command_line, merge_parameters, parse_options, split_parameters
from .data import ImageData, load_dataset, search_split
from .drawing import draw_cell
from .epoch_reporter import EpochReporter, is_rank_zero, under_nni
from .errors import ConfigError, check_directory
from .files import held, remove_partial_files, write_atomically
from .latency.measurement import TimingSettings, measure
from .nb201 import NB201_SPACE, GroundTruth, load_table
from .reference_sample import matching_sample
from .spaces import Regularization, Size, Space, load_space
from .spaces.cell_network import check_auxiliary_head
from .spaces.hub import HUB_PREFIX, HUB_SPACES
from .spaces.yaml_space import check_resolution
from .strategies.search import TrialStrategy
from .training import (BatchNormStatistics, ClassifierModule, DropPathSchedule, check_accelerator, count_parameters,
                       make_trainer, terminated_by_sigterm)
from .trial_parameters import next_parameters
from .variants import find_variant

_logger = logging.getLogger('nni_darts_ext.trial')



def prepare(config: TrialConfig, options: dict[str, Any]) -> tuple[TrialStrategy, ImageData, Space, Size, Size]:
    """Check everything the user named before any training: variant, accelerator, data, space, sizes."""
    variant = find_variant(config.variant)
    check_accelerator(config.accelerator, config.devices)
    strategy_options = dict(options)
    if 'seed' in variant.options:
        strategy_options.setdefault('seed', config.seed)
    strategy = variant.build(**strategy_options)
    data = load_dataset(config.dataset, config.data_dir, config.train_subset, config.test_subset, config.image_size)
    space = load_space(config.space, data.channels, data.num_classes, data.image_size)
    data = data.with_channels(space.input_channels)
    for setting in ('search_width', 'search_cells', 'retrain_width', 'retrain_cells'):
        if getattr(config, setting) is not None and setting.split('_')[1] not in space.sized:
            raise ConfigError(f'{setting} does not apply to {space.name}, whose constructor takes '
                              f'{" and ".join(space.sized) or "no size"}; leave it unset')
    search_size = Size(config.search_width or space.search.width, config.search_cells or space.search.cells)
    evaluation_size = Size(config.retrain_width or space.evaluation.width, config.retrain_cells or space.evaluation.cells)
    space.check_size(search_size, 'search_cells')
    space.check_size(evaluation_size, 'retrain_cells')
    search_images = min(config.search_subset or len(data.train), len(data.train))
    if strategy.searches:
        if config.batch_size > search_images // 2:
            raise ConfigError(f'batch_size ({config.batch_size}) exceeds the search split ({search_images // 2} '
                              'images): lower batch_size or raise search_subset or train_subset')
        strategy.check_trial(config.search_epochs, config.early_stop)
    elif not config.retrain_epochs and config.nb201_table is None:
        raise ConfigError(f'{config.variant} does not search: with retrain_epochs 0 and no nb201_table its trial '
                          'would measure nothing; retrain (retrain_epochs at least 1) or give nb201_table')
    apply_arc_travel(strategy, config, search_images, options)
    if not config.space.startswith('nni:'):
        check_resolution(search_size.cells, data.image_size, 'search_cells')
        check_resolution(evaluation_size.cells, data.image_size, 'retrain_cells')
    check_retraining_protocol(config, space, data.image_size, evaluation_size.cells)
    if strategy.deploys:  # the network that counts is the retrained one
        strategy.deploy(space.build(evaluation_size, True), (data.channels, data.image_size, data.image_size))
    return strategy, data, space, search_size, evaluation_size


def apply_arc_travel(strategy: TrialStrategy, config: TrialConfig, search_images: int, options: dict[str, Any]) -> None:
    """With ``arc_travel``, set a searching strategy's architecture learning rate to ``arc_travel``
    divided by the search's architecture steps, so that searches of any length, warm-up or stages
    move their architecture weights equally far (Adam's steps are about the learning rate each)."""
    if config.arc_travel is None or not strategy.searches:
        return
    if 'arc_learning_rate' in options:
        raise ConfigError('set arc_travel or arc_learning_rate, not both: arc_travel sets arc_learning_rate to '
                          'arc_travel / the search\'s architecture steps')
    batches = max(search_images // 2 // config.batch_size // config.devices, 1)
    steps = strategy.architecture_epochs(config.search_epochs) * batches
    strategy.arc_learning_rate = config.arc_travel / steps
    _logger.info('arc_travel %g over %d architecture steps: arc_learning_rate %.4g', config.arc_travel, steps,
                 strategy.arc_learning_rate)


def check_retraining_protocol(config: TrialConfig, space: Space, image_size: int, cells: int) -> None:
    """Refuse a cutout as large as the images, drop-path or an auxiliary head on a space that
    cannot build them, and an auxiliary head that cannot read the network's feature map."""
    if config.retrain_cutout >= image_size:
        raise ConfigError(f'retrain_cutout must be below the image size ({image_size} pixels), '
                          f'got {config.retrain_cutout}')
    regularized = ', '.join(HUB_PREFIX + name for name, entry in HUB_SPACES.items() if entry.regularized)
    for setting in ('retrain_drop_path', 'retrain_auxiliary_weight'):
        if getattr(config, setting) and not space.regularized:
            raise ConfigError(f'{setting} does not apply to {space.name}, which builds no drop-path or auxiliary '
                              f'head (the YAML spaces and {regularized} do); set it to 0')
    if config.retrain_auxiliary_weight:
        check_auxiliary_head(cells, image_size)


def search_evaluator(data: ImageData, config: TrialConfig, callbacks: list[pl.Callback],
                     checkpoint_dir: Path | None = None, resume_from: Path | None = None) -> Lightning:
    """The search's evaluator: weights trained on one half of the training split (or of its
    ``search_subset``), the architecture on the other (which also gives the per-epoch validation
    accuracy); a checkpoint after every epoch in ``checkpoint_dir``, the search resumed from
    ``resume_from``, where given."""
    weights_half, architecture_half = search_split(data.train, config.search_subset)
    return Lightning(
        ClassifierModule(config.learning_rate, config.min_learning_rate, config.momentum, config.weight_decay,
                         channels_last=config.channels_last),
        make_trainer(config.search_epochs, config.accelerator, config.devices, callbacks,
                     checkpoint_dir=checkpoint_dir),
        train_dataloaders=DataLoader(weights_half, batch_size=config.batch_size, shuffle=True,
                                     num_workers=config.num_workers, drop_last=True),
        # shuffled: the same loader feeds the architecture steps and the per-epoch validation
        val_dataloaders=DataLoader(architecture_half, batch_size=config.batch_size, shuffle=True,
                                   num_workers=config.num_workers, drop_last=True),
        fit_kwargs={'ckpt_path': str(resume_from)} if resume_from else None,
    )


Candidates = Iterator[dict[str, Any]]
"""Architectures in the order a strategy would hand them out: the one it found first."""


def search(strategy: TrialStrategy, space: Space, size: Size, data: ImageData, config: TrialConfig,
           records: list[dict[str, Any]], monitor: CollapseMonitor, output_dir: Path,
           settings: dict[str, Any], board: TrialBoard) -> Candidates:
    """Run the strategy on the space; the architectures it would export, first the one it found (or
    the one the monitor's early stop rolled back to), then the others by the derivation rule's order
    (:func:`~nni_darts_ext.connected.by_joint_probability`) or, for a strategy that does not search,
    its next draws. Checkpoints go to ``output_dir``, with the search's ``settings``, each epoch to
    ``board``, and with ``resume`` the search goes on from the last checkpoint there."""
    model_space = space.search_space(size)
    if not strategy.searches:
        return (strategy.sample(model_space) for _ in itertools.count())
    checkpoint_dir = output_dir / CHECKPOINT_DIR
    resume_from = checkpoint_to_resume(checkpoint_dir, settings) if config.resume else None
    evaluator = search_evaluator(data, config, [EpochReporter('search', records, monitor, board),
                                                SearchSettings(settings)], checkpoint_dir, resume_from)
    strategy.keep_measurements(checkpoint_dir, reuse=config.resume)
    supernet = strategy.mutate_model(model_space)
    search_module = strategy.mutate_evaluator(evaluator)
    search_module.evaluate(supernet)
    found = monitor.chosen or search_module.module.export()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # every rank must end with the same architecture parameters: the log shows it
        alphas = torch.cat([p.detach().cpu().flatten() for p in search_module.module.arch_parameters()])
        _logger.info('rank %d: architecture parameters sha1 %s; found %s', torch.distributed.get_rank(),
                     hashlib.sha1(alphas.numpy().tobytes()).hexdigest(), architecture.describe(found))

    def alternatives() -> Candidates:  # read only where the found architecture is disconnected
        yield from by_joint_probability(found, search_module.module.export_probs())
    return itertools.chain([found], alternatives())


RUN_SETTINGS = ('accelerator', 'threads', 'num_workers', 'channels_last', 'output_dir', 'resume', 'nb201_table',
                'test_subset', 'retrain_epochs',
                'retrain_batch_size', 'retrain_learning_rate', 'retrain_gradient_clip', 'retrain_cutout',
                'retrain_drop_path', 'retrain_auxiliary_weight')
"""Trial parameters a resumed search may change: where it runs and writes, and what comes after the search."""


def search_settings(config: TrialConfig, options: dict[str, Any]) -> dict[str, Any]:
    """What a resumed search must share with the one that saved its checkpoints: the trial
    parameters but :data:`RUN_SETTINGS`, and the variant's options with their defaults."""
    return {**{name: value for name, value in vars(config).items() if name not in RUN_SETTINGS},
            **find_variant(config.variant).defaults, **options}


def retrain_loaders(data: ImageData, config: TrialConfig) -> tuple[DataLoader, DataLoader]:
    """The retraining's loaders: the whole training split, with ``retrain_cutout`` (the search
    never cuts out), and the test split as it is."""
    batch_size = config.retrain_batch_size or config.batch_size
    train = data.train.with_cutout(config.retrain_cutout)
    return (DataLoader(train, batch_size=batch_size, shuffle=True, num_workers=config.num_workers,
                       drop_last=len(train) > batch_size),
            DataLoader(data.test, batch_size=batch_size, num_workers=config.num_workers))


STATISTICS_IMAGES = 4096
"""Training images that estimate the BatchNorm statistics before each retraining validation
(Wu and Johnson's precise BatchNorm: a few thousand suffice, a small part of a CIFAR epoch)."""


def statistics_loader(data: ImageData, config: TrialConfig) -> DataLoader:
    """A fixed sample of :data:`STATISTICS_IMAGES` training images (all of a smaller split), without
    cutout, drawn from the trial's seed by a generator of its own (the training's random state is
    left alone)."""
    chosen = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(config.seed))[:STATISTICS_IMAGES]
    return DataLoader(torch.utils.data.Subset(data.train, chosen.tolist()),
                      batch_size=config.retrain_batch_size or config.batch_size, num_workers=config.num_workers)


def retrain(model: torch.nn.Module, data: ImageData, config: TrialConfig, records: list[dict[str, Any]],
            board: TrialBoard | None = None) -> float:
    """Train ``model`` from scratch on the whole training split, each epoch to ``board``; return its
    test accuracy. The papers' protocol where set: cutout, drop-path rising linearly from 0
    (:class:`DropPathSchedule`), the auxiliary head's loss.

    Each epoch's record is the test accuracy of the network after that epoch's training, its
    BatchNorm statistics estimated over training images (:class:`BatchNormStatistics`).
    """
    module = ClassifierModule(config.retrain_learning_rate, min(config.min_learning_rate, config.retrain_learning_rate),
                              config.momentum, config.weight_decay, config.retrain_auxiliary_weight,
                              'retrain_learning_rate', config.channels_last)
    module.set_model(model)
    schedule = [DropPathSchedule(config.retrain_drop_path)] if config.retrain_drop_path else []
    statistics = BatchNormStatistics(statistics_loader(data, config))
    trainer = make_trainer(config.retrain_epochs, config.accelerator, config.devices,
                           [statistics, EpochReporter('retrain', records, board=board), *schedule],
                           gradient_clip_val=config.retrain_gradient_clip or None)
    trainer.fit(module, *retrain_loaders(data, config))
    return records[-1]['default']


def retrain_found(found: dict[str, Any], space: Space, size: Size, data: ImageData, config: TrialConfig,
                  records: list[dict[str, Any]], board: TrialBoard | None = None) -> tuple[torch.nn.Module, float | None]:
    """The network of architecture ``found`` at ``size``, retrained (:func:`retrain`), and its test
    accuracy; with ``retrain_epochs`` 0 the untrained network and ``None``.

    The retraining draws from the trial's seed, not from what the search (whole, resumed or
    absent) left: the same architecture and seed retrain to the same network, in a trial or in a
    reference sample's evaluation (:mod:`nni_darts_ext.reference_sample`).
    """
    pl.seed_everything(config.seed, workers=True, verbose=False)
    model = space.evaluation_model(found, size,
                                   Regularization(config.retrain_drop_path, config.retrain_auxiliary_weight > 0))
    return model, (retrain(model, data, config, records, board) if config.retrain_epochs else None)


def ground_truth(config: TrialConfig) -> GroundTruth | None:
    """The NB201 table of ``nb201_table``, read and checked before any work; refused on another space."""
    if config.nb201_table is None:
        return None
    if config.space != NB201_SPACE:
        raise ConfigError(f'nb201_table scores cells of {NB201_SPACE}; this trial searches {config.space}: '
                          'leave nb201_table unset')
    return load_table(config.nb201_table)


def connected_first(candidates: Candidates, space: Space, size: Size, data: ImageData) -> dict[str, Any]:
    """The first of the search's ``candidates`` whose network at ``size`` is connected
    (:mod:`~nni_darts_ext.connected`)."""
    shape = (data.channels, data.image_size, data.image_size)
    return first_connected(candidates, lambda found: is_connected(space.evaluation_model(found, size), shape))


def run(config: TrialConfig, options: dict[str, Any], output_dir: Path) -> dict[str, Any]:
    """One whole trial; returns the final result (also reported to NNI and written to ``metrics.json``)."""
    check_directory('output_dir', output_dir)
    if is_rank_zero():
        for directory in (output_dir, output_dir / CHECKPOINT_DIR):
            remove_partial_files(directory)
    if config.threads:
        torch.set_num_threads(config.threads)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    strategy, data, space, search_size, evaluation_size = prepare(config, options)
    table = ground_truth(config)
    # ranks Lightning starts run the trial again on the same directory: only the writer holds it
    with held(output_dir, 'output_dir') if is_rank_zero() else contextlib.nullcontext():
        records: list[dict[str, Any]] = []
        board = TrialBoard(output_dir / TENSORBOARD_DIR)

        monitor = CollapseMonitor(config.eigenvalue_batches, config.early_stop)
        started = time.perf_counter()
        candidates = search(strategy, space, search_size, data, config, records, monitor, output_dir,
                            search_settings(config, options), board)
        unconstrained = next(candidates)
        found = connected_first(itertools.chain([unconstrained], candidates), space, evaluation_size, data)
        search_seconds = time.perf_counter() - started
        _logger.info('found: %s', architecture.describe(found))
        if found != unconstrained:
            _logger.warning('no path leads from input to output in %s: took %s', architecture.describe(unconstrained),
                            architecture.describe(found))

        started = time.perf_counter()
        model, test_accuracy = retrain_found(found, space, evaluation_size, data, config, records, board)
        retrain_seconds = time.perf_counter() - started
        # the retrained network's latency, one image at a time on one CPU thread: the same yardstick for every variant
        latency = measure([model], (data.channels, data.image_size, data.image_size), TimingSettings())[0]
        truth = table.score(found) if table else {}
        unconstrained_truth = table.score(unconstrained) if table else {}

        final = {
            'default': score(test_accuracy, truth, records),
            'variant': config.variant,
            'seed': config.seed,
            'search_s': round(search_seconds, 2),
            'retrain_s': round(retrain_seconds, 2),
            'params': count_parameters(model),
            'latency_ms': round(latency.total_ms, 4),
            'skip_connects': architecture.skip_connects(found),
            'parameter_free': architecture.parameter_free(found),
            'none_edges': architecture.none_edges(found),
            'arch': architecture.describe(found),
            'unconstrained_arch': architecture.describe(unconstrained),
            'stopped_early': monitor.stopped,
            **truth,
            **{f'unconstrained_{name}': value for name, value in unconstrained_truth.items()
               if not name.endswith('percentile')},
            **strategy.search_summary(found),
            **convergence(strategy, records),
            **standing(found, config),
        }
        if is_rank_zero():
            _write_outputs(output_dir, config, options, found, records, final, board)
            if under_nni():
                nni.report_final_result(final)
        return final


def score(test_accuracy: float | None, truth: dict[str, float], records: list[dict[str, Any]]) -> float:
    """The trial's ``default``: the retrained network's test accuracy; without retraining, the found cell's
    NB201 CIFAR-10 accuracy as a fraction (its first dataset's, for a table without CIFAR-10), else the
    supernet's last validation accuracy."""
    if test_accuracy is not None:
        return test_accuracy
    if truth:
        name = 'nb201_cifar10' if 'nb201_cifar10' in truth else next(iter(truth))
        return truth[name] / 100
    return records[-1]['default']


def convergence(strategy: TrialStrategy, records: list[dict[str, Any]]) -> dict[str, Any]:
    """A search's end: its architecture learning rate, normalized entropy and whether it converged
    (:func:`~nni_darts_ext.architecture.converged`); nothing for a strategy that does not search."""
    entropies = [r['normalized_entropy'] for r in records if r['phase'] == 'search' and 'normalized_entropy' in r]
    if not entropies:
        return {}
    return {'arc_learning_rate': strategy.arc_learning_rate, 'normalized_entropy': round(entropies[-1], 4),
            'converged': architecture.converged(entropies[-1])}


def standing(found: dict[str, Any], config: TrialConfig) -> dict[str, Any]:
    """The reference sample whose protocol the trial followed, if one, and the found architecture's
    percentile in it once the sample has scored it (:mod:`~nni_darts_ext.reference_sample`)."""
    sample = matching_sample(config)
    if sample is None:
        return {}
    percentile = sample.percentile(architecture.describe(found))
    return {'reference': sample.name, **({} if percentile is None else {'percentile': round(percentile, 1)})}


def _write_outputs(output_dir: Path, config: TrialConfig, options: dict[str, Any], found: dict[str, Any],
                   records: list[dict[str, Any]], final: dict[str, Any], board: TrialBoard) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(output_dir / 'arch.json', lambda path: path.write_text(json.dumps(
        {'variant': config.variant, 'space': config.space, 'seed': config.seed, 'architecture': found}, indent=2)))
    cells = architecture.cell_edges(found)
    for cell, edges in cells.items():
        write_atomically(output_dir / f'{cell}.png', lambda path: draw_cell(cell, edges, path))
    board.images({cell: output_dir / f'{cell}.png' for cell in cells}, len(records))
    board.close()
    write_atomically(output_dir / 'metrics.json', lambda path: path.write_text(json.dumps(
        {'config': vars(config), 'options': options, 'epochs': records, 'final': final}, indent=2)))


def default_output_dir(config: TrialConfig) -> Path:
    """``--output-dir``, else NNI's trial directory, else ``runs/VARIANT-seedN-TIME``; ``~`` expanded
    here, once, so every file goes to one place (Lightning expands it in the checkpoints' path, the
    other writers do not)."""
    if config.output_dir:
        return Path(config.output_dir).expanduser()
    if os.environ.get('NNI_OUTPUT_DIR'):
        return Path(os.environ['NNI_OUTPUT_DIR']).expanduser()
    return Path('runs') / f'{config.variant}-seed{config.seed}-{time.strftime("%Y%m%d-%H%M%S")}'


def configure_output() -> None:
    """A trial program's output: the package's log lines to the current ``sys.stderr`` (once however
    often a process calls it), without what NNI and Lightning say of what the trial does on purpose."""
    package_logger = logging.getLogger('nni_darts_ext')
    package_logger.handlers = [h for h in package_logger.handlers if h.get_name() != __name__]
    handler = logging.StreamHandler()
    handler.set_name(__name__)
    handler.setFormatter(logging.Formatter('[%(asctime)s] %(name)s: %(message)s'))
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    # NNI logs every node's sorted weights at each export (every epoch here): keep only warnings.
    logging.getLogger('nni.nas.oneshot.pytorch.supermodule.differentiable').setLevel(logging.WARNING)
    # The search's validation loader is shuffled on purpose (it also feeds the architecture steps).
    warnings.filterwarnings('ignore', message=".*val_dataloader.*shuffling enabled")
    # Every epoch overwrites checkpoints/last.ckpt on purpose (P-DARTS's stages and resumed runs find it there).
    warnings.filterwarnings('ignore', message='Checkpoint directory .* exists and is not empty')


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m nni_darts_ext.trial`` and ``nni-darts-trial``."""
    configure_output()
    arguments = vars(command_line().parse_args(argv))
    try:
        options = parse_options(arguments.pop('option'))
        variant_settings = arguments.pop('variant_settings')
        parameters = merge_parameters(arguments, options, variant_settings, next_parameters())
        config, options = split_parameters(parameters)
        output_dir = default_output_dir(config)
        with terminated_by_sigterm():
            final = run(config, options, output_dir)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    except SIGTERMException:  # a SystemExit, which would exit 0 with no result: NNI would mark the trial SUCCEEDED
        print(f'error: the trial was stopped (SIGTERM) before its result; run it again with --resume true and '
              f'--output-dir {output_dir} to continue from its last checkpoint', file=sys.stderr)
        return 128 + signal.SIGTERM
    except FloatingPointError as err:
        print(f'error: training diverged: {err}', file=sys.stderr)
        return 1
    except NoConnectedArchitecture as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    except OSError as err:
        if err.errno not in UNWRITABLE:
            raise
        print(f'error: {err.filename}: {err.strerror}; what the trial wrote before is kept: make room (or make '
              f'{output_dir} writable) and run it again with --resume true and --output-dir {output_dir} to '
              'continue from its last checkpoint', file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as err:
        if not out_of_memory(err):
            raise
        print(f'error: out of memory ({str(err).splitlines()[0] if str(err) else type(err).__name__}); lower '
              'batch_size (retrain_batch_size for retraining) or search_width, or raise k with pcdarts',
              file=sys.stderr)
        return 1
    if is_rank_zero():
        print(json.dumps(final))
    return 0


UNWRITABLE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
"""The errors of a write that a full disk, a quota or a file system made read-only during the run gives."""


def out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says the device or the host ran out of memory."""
    message = str(error)
    return isinstance(error, (MemoryError, torch.OutOfMemoryError)) or \
        "can't allocate memory" in message or 'out of memory' in message


if __name__ == '__main__':
    sys.exit(main())
