"""End to end: ``nnictl create`` runs two trials of the real trial command to SUCCEEDED."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from nni_darts_ext import VARIANTS, report

from .nb201_table import fake_nb201_table
from .nnictl_helpers import REPOSITORY, rest


def test_two_trials_succeed_with_per_epoch_and_final_results(quickstart_run, capsys, tmp_path):
    experiment_id, port = quickstart_run
    trials = rest(port, 'trial-jobs')
    assert len(trials) == 2 and {t['status'] for t in trials} == {'SUCCEEDED'}, trials
    metrics = rest(port, 'metric-data')
    for trial in trials:
        kinds = {m['type'] for m in metrics if m['trialJobId'] == trial['trialJobId']}
        assert kinds == {'PERIODICAL', 'FINAL'}
        final = [report.decode_metric(m['data']) for m in metrics
                 if m['trialJobId'] == trial['trialJobId'] and m['type'] == 'FINAL']
        assert len(final) == 1
        # the two trials ran at once: the web UI's parameters are still the ones each ran
        assert json.loads(trial['hyperParameters'][0])['parameters'] == {
            'variant': final[0]['variant'], 'seed': final[0]['seed']}

    # the report, from the REST API while the experiment's server runs
    assert report.main([experiment_id, '--png', str(tmp_path / 'report' / 'chart.png')]) == 0
    table = capsys.readouterr().out
    assert '| darts | 1 |' in table and '| random | 1 |' in table


def test_quickstart_offers_every_registered_variant():
    config = yaml.safe_load((REPOSITORY / 'experiments' / 'quickstart.yml').read_text())
    assert set(config['searchSpace']['variant']['_value']) == set(VARIANTS)
    grid = len(config['searchSpace']['variant']['_value']) * len(config['searchSpace']['seed']['_value'])
    assert config['maxTrialNumber'] == grid  # so the experiment ends DONE
    assert config['trainingService']['platform'] == 'local'


def experiment_variants(name: str) -> list[tuple[str, str]]:
    config = yaml.safe_load((REPOSITORY / 'experiments' / f'{name}.yml').read_text())
    return [(name, variant) for variant in config['searchSpace']['variant']['_value']]


@pytest.fixture(scope='module')
def nb201_copy(tmp_path_factory) -> Path:
    """A made-up NB201 table: the experiments' plumbing is checked without ../shared/nb201 beside the clone."""
    return fake_nb201_table(tmp_path_factory.mktemp('nb201') / 'nb201.csv')


@pytest.mark.parametrize('experiment, variant', experiment_variants('quickstart') + experiment_variants('search_quality'))
def test_every_trial_of_the_quickstart_and_the_benchmark_builds_its_supernet(experiment, variant, fashion_mnist_copy,
                                                                            nb201_copy):
    """The experiment's command line and per-variant settings give each variant a valid setup
    (on generated Fashion-MNIST files and NB201 table, where the experiment names them)."""
    from nni.nas.oneshot.pytorch.strategy import OneShotStrategy
    from nni_darts_ext import trial
    from nni_darts_ext.config import command_line, merge_parameters, parse_options, split_parameters
    config = yaml.safe_load((REPOSITORY / 'experiments' / f'{experiment}.yml').read_text())
    command = shlex.split(config['trialCommand'])
    assert command[:3] == ['python3', '-m', 'nni_darts_ext.trial']
    flags = vars(command_line().parse_args(command[3:]))
    options = parse_options(flags.pop('option'))
    settings = flags.pop('variant_settings')
    tuned: dict[str, object] = {'variant': variant, 'seed': 0}
    if flags.get('dataset') == 'fashion_mnist':
        tuned['data_dir'] = str(fashion_mnist_copy)
    if flags.get('nb201_table') is not None:  # not None: a trial that does not search needs a table to score
        tuned['nb201_table'] = str(nb201_copy)
    trial_config, variant_options = split_parameters(merge_parameters(flags, options, settings, tuned))
    strategy, data, space, search_size, _ = trial.prepare(trial_config, variant_options)
    if trial_config.dataset == 'fashion_mnist':  # the experiment's subsets, none cut short by the smaller copy
        assert (len(data.train), len(data.test)) == (trial_config.train_subset, trial_config.test_subset)
    if isinstance(strategy, OneShotStrategy):
        strategy.mutate_model(space.search_space(search_size))


@pytest.mark.parametrize('name', ['quickstart', 'search_quality', 'cifar10', 'remote', 'ladarts_sweep'])
def test_experiment_configs_are_valid_nni_configs(name, tmp_path):
    from nni.experiment.config import ExperimentConfig
    config = yaml.safe_load((REPOSITORY / 'experiments' / f'{name}.yml').read_text())
    for machine in config['trainingService'].get('machineList', []):
        key = tmp_path / 'id_test'  # NNI checks that the key file exists
        key.write_text('not a real key')
        machine['sshKeyFile'] = str(key)
    config['trialCodeDirectory'] = str(REPOSITORY / 'experiments')
    ExperimentConfig(**config).validate()
