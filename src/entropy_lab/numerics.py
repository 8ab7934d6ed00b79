"""How CPU float arithmetic is pinned, so that model outputs repeat on other machines.

PyPI torch runs fp32 matrix products in MKL, which picks its kernels by CPU vendor and ISA,
and its own vectorised kernels (random draws among them) by ISA. Both read an environment
variable once, when torch loads: `models.numerics` chooses the values, and `apply` sets them
before any stage imports torch. `native` leaves both to the machine (fastest; bytes repeat
only on the same kind of CPU); `portable` pins MKL's AVX2 code path and ATen's AVX2 kernels,
which every x86-64 CPU with AVX2 runs, Intel or AMD; `compatible` takes MKL's vendor-neutral
path and ATen's scalar kernels (slowest). `benchmarks/bench_numerics.py` measures the cost.
"""

from __future__ import annotations

import os
import sys

from entropy_lab.errors import UserError

SETTINGS: dict[str, dict[str, str]] = {
    "native": {},
    "portable": {"MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
    "compatible": {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default"},
}


def apply(setting: str) -> None:
    """Set the environment for `setting` before torch loads; refuse where torch already loaded
    under other values (the setting would silently not hold)."""
    wanted = SETTINGS[setting]
    names = ("MKL_CBWR", "ATEN_CPU_CAPABILITY")
    if "torch" in sys.modules:
        have = {k: os.environ.get(k) for k in names}
        if have != {k: wanted.get(k) for k in names}:
            raise UserError(
                f"models.numerics = {setting!r}: torch was loaded before it could be set "
                f"(environment {have}); run the stage through the entropy-lab command"
            )
        return
    for name in names:
        os.environ.pop(name, None)
    os.environ.update(wanted)
