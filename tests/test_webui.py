"""NNI's web UI in a real browser: the quick start's trial table shows each trial's variant and final metric."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from nni_darts_ext import report

from .conftest import require_system_tool
from .headless_chromium import CHROMIUM, open_page
from .nnictl_helpers import REPOSITORY, rest

SCREENSHOT = REPOSITORY / 'test-artifacts' / 'webui.png'
"""The latest run's screenshot of the trial table, kept where a CI job can pick it up (git ignores it)."""

ROWS = """Array.from(document.querySelectorAll('[data-automationid="DetailsRow"]'), row => Object.fromEntries(
    Array.from(row.querySelectorAll('[data-automation-key]'), cell => [cell.dataset.automationKey, cell.innerText])))"""
"""The trial table (a Fluent UI list) as one {column key: cell text} per row."""

COLUMNS = ['sequenceId', 'id', 'space/variant', 'duration', 'status', 'latestAccuracy']
"""The web UI's default columns and the variant, which it shows only once a user adds it."""


def _text(cell: str) -> str:
    """A cell's text without the icon glyphs (private-use characters) of its buttons."""
    return re.sub(r'[\ue000-\uf8ff]', '', cell).strip()


@pytest.fixture
def chromium() -> None:
    require_system_tool(CHROMIUM is not None, 'chromium', 'chromium')


def test_the_trial_table_shows_each_variant_and_its_final_metric(quickstart_run: tuple[str, int], chromium: None,
                                                               tmp_path: Path) -> None:
    experiment_id, port = quickstart_run
    finals = {m['trialJobId']: report.decode_metric(m['data']) for m in rest(port, 'metric-data') if m['type'] == 'FINAL'}
    # what "Add/Remove columns" saves for this experiment, in the format of the web UI's Storage class
    choice = json.dumps({'value': json.dumps(COLUMNS), 'time': int(time.time() * 1000),
                         'expire': 24 * 60 * 60 * 1000, 'isSelectall': False})
    url = f'http://127.0.0.1:{port}/detail'
    with open_page(url, tmp_path / 'chromium') as page:
        page.wait_for(ROWS, lambda rows: len(rows) == len(finals), timeout_s=60)
        page.evaluate(f'localStorage.setItem({json.dumps(experiment_id + "_columns")}, {json.dumps(choice)})')
        page.call('Page.navigate', url=url)  # the table reads the choice when it loads
        rows = page.wait_for(ROWS, lambda rows: len(rows) == len(finals) and all('space/variant' in r for r in rows),
                             timeout_s=60)
        time.sleep(2)  # for the screenshot: the rows fade in and the chart animates once the data are there
        page.screenshot(tmp_path / 'webui.png')
    SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copyfile(tmp_path / 'webui.png', SCREENSHOT)

    shown = {_text(row['id']): (_text(row['space/variant']), _text(row['status']), _text(row['latestAccuracy']))
             for row in rows}
    assert shown.keys() == finals.keys()
    for trial, (variant, status, metric) in shown.items():
        assert (variant, status) == (finals[trial]['variant'], 'SUCCEEDED')
        # the web UI rounds to 6 decimals (JavaScript's toFixed, not Python's rounding)
        assert float(re.match(r'[0-9.]+', metric)[0]) == pytest.approx(finals[trial]['default'], abs=1e-6)
    assert {variant for variant, _, _ in shown.values()} == {'darts', 'random'}
