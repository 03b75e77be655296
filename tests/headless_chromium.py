"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol, offline.

The command-line route (``--dump-dom``, ``--screenshot``) cannot click or keep a setting of the page; the
DevTools protocol can run a script in the page, wait for what it renders, and take the screenshot after.
Its socket is spoken with ``websockets``, which NNI itself depends on.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM = shutil.which('chromium')


class Page:
    """One browser tab: run scripts in it and take screenshots."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events that arrive meanwhile are dropped)."""
        message_id = next(self._ids)
        self._socket.send(json.dumps({'id': message_id, 'method': method, 'params': params}))
        while (reply := json.loads(self._socket.recv())).get('id') != message_id:
            pass
        assert 'error' not in reply, f'{method}: {reply["error"]}'
        return reply['result']

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.call('Runtime.evaluate', expression=expression, returnByValue=True)
        assert 'exceptionDetails' not in result, result['exceptionDetails']
        return result['result'].get('value')

    def wait_for(self, expression: str, done: Callable[[Any], bool], timeout_s: float) -> Any:
        """Evaluate ``expression`` every half second until ``done`` accepts its value; return that value."""
        deadline = time.monotonic() + timeout_s
        while not done(value := self.evaluate(expression)):
            assert time.monotonic() < deadline, f'after {timeout_s} s the page still gives {value!r}'
            time.sleep(0.5)
        return value

    def screenshot(self, path: Path) -> None:
        """Save what the tab shows as a PNG."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call('Page.captureScreenshot', format='png')['data']))


def _devtools_port(profile: Path, process: subprocess.Popen, log: Path, timeout_s: float = 30) -> int:
    """The port Chromium chose (``--remote-debugging-port=0``), from the file it writes into its profile."""
    active_port = profile / 'DevToolsActivePort'
    deadline = time.monotonic() + timeout_s
    while not active_port.exists() or not active_port.read_text().strip():
        assert process.poll() is None, f'chromium exited with {process.returncode}; its output is in {log}'
        assert time.monotonic() < deadline, f'chromium wrote no {active_port} in {timeout_s} s'
        time.sleep(0.2)
    return int(active_port.read_text().split()[0])


@contextmanager
def open_page(url: str, profile: Path, width: int = 1600, height: int = 1000) -> Iterator[Page]:
    """Start headless Chromium on ``url`` with ``profile`` as its user data directory; quit it afterwards.

    Chromium's output goes to ``<profile>.log`` beside the profile.

    Every host name resolves to nothing, so the page reaches only 127.0.0.1 (its CDN icon fonts show as boxes).
    """
    assert CHROMIUM, 'chromium is not on PATH'
    (profile / 'DevToolsActivePort').unlink(missing_ok=True)  # a profile used before keeps the old port's file
    log = profile.with_name(f'{profile.name}.log')
    with log.open('w') as output:
        process = subprocess.Popen(
            [CHROMIUM, '--headless', '--disable-gpu', f'--user-data-dir={profile}', '--remote-debugging-port=0',
             '--no-sandbox',  # Chromium's sandbox refuses to run as root, and many containers lack user namespaces
             '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', f'--window-size={width},{height}', url],
            stdout=output, stderr=subprocess.STDOUT)
    try:
        port = _devtools_port(profile, process, log)
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/json/list', timeout=10) as response:
            target = next(t for t in json.load(response) if t['type'] == 'page')
        with connect(target['webSocketDebuggerUrl'], max_size=None) as socket:
            yield Page(socket)
    finally:
        process.terminate()
        process.wait(timeout=30)
