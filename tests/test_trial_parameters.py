"""A local trial's parameter record, read from the REST API its channel names: plain JSON, nothing else."""

from __future__ import annotations

import base64
import json
import pickle
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from nni.runtime import trial_command_channel

from nni_darts_ext import trial
from nni_darts_ext.trial_parameters import OwnParameterChannel

from .conftest import CreatesFile

TRIAL_ID = 'AbCdE'


class FakeManager:
    """A REST server that answers every trial job's request with ``hyper_parameters``."""

    def __init__(self) -> None:
        self.hyper_parameters: list = []
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = json.dumps({'trialJobId': TRIAL_ID, 'hyperParameters': served.hyper_parameters}).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.channel = f'http://127.0.0.1:{self.server.server_address[1]}/env/local-env/{TRIAL_ID}'


@pytest.fixture
def manager(monkeypatch) -> Iterator[FakeManager]:
    """A fake NNI manager whose channel this test's trials use, as a local trial's; NNI's default channel
    restored after."""
    fake = FakeManager()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv('NNI_PLATFORM', 'local')
    monkeypatch.setenv('NNI_TRIAL_COMMAND_CHANNEL', fake.channel)
    monkeypatch.setenv('NNI_TRIAL_JOB_ID', TRIAL_ID)
    monkeypatch.setattr(trial_command_channel, '_channel', None)
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def error_lines(stderr: str) -> list[str]:
    """The ``error:`` lines of ``stderr`` (beside the log's), or all of it where it holds a traceback."""
    return stderr.splitlines() if 'Traceback' in stderr else [line for line in stderr.splitlines()
                                                              if line.startswith('error:')]


def test_a_pickled_object_in_the_record_is_never_loaded(manager, tmp_path, capsys):
    created = tmp_path / 'created-by-the-server'
    payload = base64.b64encode(pickle.dumps(CreatesFile(created))).decode()
    manager.hyper_parameters = [json.dumps({'parameter_id': 0, 'parameters': {'seed': {'__nni_obj__': payload}}})]
    assert trial.main(['--output-dir', str(tmp_path / 'out')]) == 2
    assert not created.exists()
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and errors[0].startswith("error: seed must be of type int, got {'__nni_obj__': "), errors
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('record', ['not json', '[1, 2]', '{"parameter_id": 0}', '{"parameter_id": 0, "parameters": [1]}',
                                    '{"parameter_id": "0", "parameters": {}}', '{"parameter_id": true, "parameters": {}}',
                                    {'parameter_id': 0, 'parameters': {}}])
def test_a_record_that_is_not_parameters_is_one_line(record, manager, tmp_path, capsys):
    manager.hyper_parameters = [record]
    assert trial.main(['--output-dir', str(tmp_path / 'out')]) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and errors[0].startswith(
        f'error: the parameter record at {manager.channel.split("/env/")[0]}/api/v1/nni/trial-jobs/{TRIAL_ID} '
        'must be a JSON object of "parameters" (a mapping of names to values) and "parameter_id" (an integer or '
        'null), got '), errors
    assert not (tmp_path / 'out').exists()


def test_the_record_comes_out_as_nni_wrote_it(manager):
    record = {'parameter_id': 3, 'parameter_source': 'algorithm', 'parameter_index': 0,
              'parameters': {'variant': 'darts', 'seed': 1, 'arc_learning_rate': float('nan'),
                             'nested': {'_name': 'a', 'values': [1, None, True, 'x']}}}
    manager.hyper_parameters = [json.dumps({**record, 'parameter_id': 2}), json.dumps(record)]
    received = OwnParameterChannel(manager.channel, TRIAL_ID, timeout_s=5).receive_parameter()
    assert json.dumps(received) == json.dumps(record)  # NaN compares unequal to itself; its JSON does not
