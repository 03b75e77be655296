"""The machine a benchmark ran on, as its results record it."""

from __future__ import annotations

import argparse
import json
import platform
import re
from pathlib import Path


def cpu_name() -> str:
    """The processor's model name, as Linux reports it."""
    cpuinfo = Path('/proc/cpuinfo')
    names = re.findall(r'model name\s*:\s*(.+)', cpuinfo.read_text()) if cpuinfo.is_file() else []
    return names[0].strip() if names else platform.processor() or 'unknown CPU'


def write_results(arguments: argparse.Namespace, machine: str, **results) -> None:
    """``results`` as JSON at ``arguments.output`` (when given), with the machine and the arguments."""
    if arguments.output:
        arguments.output.write_text(json.dumps(
            {'machine': machine, 'arguments': {**vars(arguments), 'output': None}, **results}, indent=2))
