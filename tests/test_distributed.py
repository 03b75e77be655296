"""A search in two processes (Lightning's DDP over gloo, on the CPU): one architecture, one report.

The trial runs as a real process, as NNI starts it: with ``devices: 2`` Lightning starts the
second rank by running the same command again.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

FLAGS = ['--train-subset', '256', '--test-subset', '64', '--batch-size', '32', '--search-epochs', '2',
         '--retrain-epochs', '1', '--accelerator', 'cpu', '--devices', '2', '--threads', '1']


@pytest.mark.parametrize('variant', ['stabilized'])  # the estimator's all-reduce beside Lightning's DDP
def test_both_ranks_end_with_the_same_architecture_and_only_rank_zero_reports(variant, tmp_path):
    result = subprocess.run([sys.executable, '-m', 'nni_darts_ext.trial', *FLAGS, '--variant', variant,
                             '--output-dir', str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = dict(re.findall(r'rank (\d): (architecture parameters sha1 \w+; found .+)', result.stderr))
    assert set(ranks) == {'0', '1'}, result.stderr[-3000:]
    assert ranks['0'] == ranks['1']
    finals = [line for line in result.stdout.splitlines() if line.startswith('{')]
    assert len(finals) == 1  # only rank 0 prints, writes and reports
    final = json.loads(finals[0])
    assert ranks['0'].endswith(final['arch'])
    assert json.loads((tmp_path / 'metrics.json').read_text())['final'] == final
    assert 'MEMBER: 2/2' in result.stderr  # Lightning's line: the second process joined
