"""Run a benchmark's child script under one `models.numerics` setting (both MKL and ATen read
their variables when torch loads, so each setting needs its own process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from entropy_lab.numerics import NAMES, SETTINGS


def run_child(code: str, setting: str, *args: object) -> dict:
    """The JSON last line that `python -c code *args` prints under `setting`, with none of the
    numerics variables inherited from this process."""
    env = {k: v for k, v in os.environ.items() if k not in NAMES} | SETTINGS[setting]
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])
