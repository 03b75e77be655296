"""The machine a benchmark ran on, as its results record it."""

from __future__ import annotations

import platform
import re
from pathlib import Path


def cpu_name() -> str:
    """The processor's model name, as Linux reports it."""
    cpuinfo = Path('/proc/cpuinfo')
    names = re.findall(r'model name\s*:\s*(.+)', cpuinfo.read_text()) if cpuinfo.is_file() else []
    return names[0].strip() if names else platform.processor() or 'unknown CPU'
