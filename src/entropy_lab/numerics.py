"""How CPU float arithmetic is pinned, so that model outputs repeat on other machines.

PyPI torch runs fp32 matrix products in MKL, which picks its kernels by CPU vendor and ISA,
and its own vectorised kernels (random draws among them) by ISA; numpy's OpenBLAS picks its
kernels by CPU model. Each reads an environment variable once, when it loads: `models.numerics`
chooses the values, and `apply` sets them before any stage imports torch or numpy. `native` leaves both to the machine (fastest; bytes repeat
only on the same kind of CPU); `portable` pins MKL's AVX2 code path, ATen's AVX2 kernels and OpenBLAS's
Haswell kernels, which every x86-64 CPU with AVX2 runs, Intel or AMD; `compatible` takes MKL's vendor-neutral
path and ATen's scalar kernels (slowest). `benchmarks/bench_numerics.py` measures the cost.
"""

from __future__ import annotations

import os
import sys

from entropy_lab.errors import UserError

NAMES = ("MKL_CBWR", "ATEN_CPU_CAPABILITY", "OPENBLAS_CORETYPE")
DEFAULT = "portable"
SETTINGS: dict[str, dict[str, str]] = {
    "native": {},
    "portable": {"MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "OPENBLAS_CORETYPE": "Haswell"},
    "compatible": {
        "MKL_CBWR": "COMPATIBLE",
        "ATEN_CPU_CAPABILITY": "default",
        "OPENBLAS_CORETYPE": "Prescott",
    },
}


def apply(setting: str) -> None:
    """Set the environment for `setting` before torch and numpy load; refuse where one already
    loaded under other values (the setting would silently not hold)."""
    wanted = {name: SETTINGS[setting].get(name) for name in NAMES}
    if "torch" in sys.modules or "numpy" in sys.modules:
        have = {name: os.environ.get(name) for name in NAMES}
        if have != wanted:
            raise UserError(
                f"models.numerics = {setting!r}: torch or numpy was loaded before it could be set "
                f"(environment {have}); run the stage through the entropy-lab command"
            )
        return
    for name, value in wanted.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value
