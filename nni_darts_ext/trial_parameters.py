"""A trial's own parameters: the ones NNI's web UI shows for it, also with several trials at once.

NNI 3.0's local training service (``nni_node/training_service/v3/compat.js``, ``V3asV1``) puts
the parameters of each trial it submits at the end of one queue, and answers every trial's
``request_parameter`` with the parameters at the head of that queue. With
``trialConcurrency`` above 1 the trial that asks first gets the parameters of the trial
submitted first, whichever trial it is (microsoft/nni#5726): the web UI and the REST API
(``/api/v1/nni/trial-jobs``) show each trial with the parameters it was submitted with, while it
runs, and reports its results under the ``parameter_id`` of, the parameters it was handed.

The NNI manager does keep each trial's own parameters, keyed by its trial job id: the REST API
serves them. A local trial's command channel is served by the manager's own REST server
(``NNI_TRIAL_COMMAND_CHANNEL`` is ``http://localhost:PORT[/URL_PREFIX]/env/ENV/TRIAL``), so
:class:`OwnParameterChannel` reads the trial's parameter record from
``.../api/v1/nni/trial-jobs/NNI_TRIAL_JOB_ID`` at that address instead of asking the queue, and
sends metrics as NNI's channel does. :func:`next_parameters` installs it as NNI's default trial
channel, so ``nni.get_next_parameter`` returns the trial's own parameters and every reported
result carries their ``parameter_id`` (the tuner pairs each result with the right parameters).
Every process of a trial gets the same record (the ranks Lightning starts for ``devices`` > 1
included), and none takes a queued entry from another trial.

Other platforms keep NNI's channel: NNI 3.0's remote training service has the same queue, but
its trials' channel is served on the remote machine, which cannot tell the manager's address.

The record is read as plain JSON (:func:`parameter_record`), never with ``nni.load``: that would
unpickle the ``__nni_obj__`` payloads of whatever server ``NNI_TRIAL_COMMAND_CHANNEL`` names, and
parameters are names and values, which JSON holds.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import Any

import nni
import requests
from nni.runtime.trial_command_channel import set_default_trial_command_channel
from nni.runtime.trial_command_channel.v3 import TrialCommandChannelV3
from nni.typehint import ParameterRecord

from .errors import ConfigError

_logger = logging.getLogger(__name__)

CHANNEL_URL = re.compile(r'(?P<server>http://[^/]+(?:/.*)?)/env/[^/]+/(?P<trial>[^/]+)')
"""The URL of a local trial's command channel: the manager's REST server, then ``/env/ENV/TRIAL``."""


class OwnParameterChannel(TrialCommandChannelV3):
    """NNI's HTTP trial channel whose parameters are the record the NNI manager keeps for this trial.

    Parameters
    ----------
    channel_url
        ``NNI_TRIAL_COMMAND_CHANNEL`` of a local trial.
    trial_job_id
        ``NNI_TRIAL_JOB_ID``, the trial whose parameters to read.
    timeout_s
        How long to wait for the manager to record the trial (it does right after starting it).
    """

    def __init__(self, channel_url: str, trial_job_id: str, timeout_s: float = 120):
        super().__init__(channel_url)
        match = CHANNEL_URL.fullmatch(channel_url)
        if not match or match['trial'] != trial_job_id:
            raise RuntimeError(f'NNI_TRIAL_COMMAND_CHANNEL {channel_url!r} is not the local channel of trial '
                               f'{trial_job_id} (http://HOST:PORT[/PREFIX]/env/ENV/{trial_job_id})')
        self.trial_job_url = f'{match["server"]}/api/v1/nni/trial-jobs/{trial_job_id}'
        self.timeout_s = timeout_s

    def receive_parameter(self) -> ParameterRecord:
        """The trial's parameter record, as the REST API shows it; waits until the manager has recorded it."""
        deadline = time.monotonic() + self.timeout_s
        while (record := self._recorded_parameters()) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f'the NNI manager holds no parameters at {self.trial_job_url} '
                                   f'after {self.timeout_s:g} s')
            time.sleep(0.5)
        _logger.info('parameters of trial %s: %s', nni.get_trial_id(), record['parameters'])
        return record

    def _recorded_parameters(self) -> ParameterRecord | None:
        """The trial job's parameter record, or ``None`` while the manager has none for it."""
        try:
            response = requests.get(self.trial_job_url, timeout=10)
            job: Any = response.json() if response.ok and response.text.strip() else {}
        except (requests.ConnectionError, ValueError):  # the manager not serving its REST API (yet)
            return None
        recorded = job.get('hyperParameters') if isinstance(job, dict) else None
        if not recorded:
            return None
        # one record per parameter index; a trial of NNI 3.0's training services asks for one
        return parameter_record(recorded[-1] if isinstance(recorded, list) else recorded, self.trial_job_url)


def parameter_record(text: object, source: str) -> ParameterRecord:
    """The parameter record ``text`` (NNI's JSON, as the REST API at ``source`` serves it), read as
    plain JSON: only a mapping of parameter names to JSON values (``None``, booleans, numbers,
    strings, lists and mappings of them) and an integer ``parameter_id`` (or ``None``) come out.

    Raises
    ------
    ConfigError
        For anything else, naming ``source``: a parameter record is all a trial may take from it.
    """
    try:
        record = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        record = None
    parameter_id = record.get('parameter_id') if isinstance(record, dict) else None
    if not (isinstance(record, dict) and isinstance(record.get('parameters'), dict)
            and (parameter_id is None or type(parameter_id) is int)):
        raise ConfigError(f'the parameter record at {source} must be a JSON object of "parameters" (a mapping of '
                          f'names to values) and "parameter_id" (an integer or null), got {str(text)[:200]!r}')
    return record


def next_parameters() -> dict[str, Any]:
    """The parameters NNI gives this trial, ``{}`` outside NNI: ``nni.get_next_parameter()``, but
    under NNI 3.0's local training service the trial's own (see the module's docstring)."""
    channel_url = os.environ.get('NNI_TRIAL_COMMAND_CHANNEL', '')
    if os.environ.get('NNI_PLATFORM') == 'local' and channel_url.startswith('http://'):
        set_default_trial_command_channel(OwnParameterChannel(channel_url, os.environ['NNI_TRIAL_JOB_ID']))
    return nni.get_next_parameter() or {}
