"""Harvest throughput per source, and assessment time against independent references,
measured side by side in one run (ratios; absolute times are this machine's).

    python benchmarks/bench_harvest.py [--samples 1000000]

References, where installed: NIST's SP 800-90B C++ (PyPI `sp800-90b`, `make install-reference`)
for the same six estimators on the same 1,000,000 samples, and Debian's `ent` for byte statistics.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from itertools import islice

import numpy as np

from entropy_lab.entropy import estimators, sources
from entropy_lab.entropy.harvest import byte_statistics


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def throughput(name: str, chunks, n_chunks: int) -> float:
    data, s = timed(lambda: np.concatenate(list(islice(chunks, n_chunks))))
    rate = data.size / s
    print(f"{name:8s} raw bytes/s: {rate:,.0f}")
    return rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1_000_000)
    args = ap.parse_args()

    kernel = throughput("kernel", sources.kernel(), 32)
    jitter = throughput("jitter", sources.jitter(), 4)
    print(f"ratio kernel / jitter throughput: {kernel / jitter:.1f}x")

    raw = np.concatenate(list(islice(sources.jitter(), -(-args.samples // sources.CHUNK))))[
        : args.samples
    ]
    ours, ours_s = timed(lambda: estimators.assess(raw.astype(np.int64), 8))
    print(
        f"ours: 90B assessment of {raw.size:,} jitter samples: {ours_s:.1f} s, min-entropy {ours['min_entropy']:.4f}"
    )
    try:
        import sp800_90b
    except ImportError:
        print("reference sp800-90b not installed (make install-reference): no ratio")
    else:
        bits = estimators.to_bits(raw.astype(np.int64), 8).astype(np.uint8)

        def reference():
            d = sp800_90b.Data(raw.tobytes(), bits_per_symbol=8)
            b = sp800_90b.Data(bits.tobytes(), bits_per_symbol=1)
            orig = [d.h_most_common(), *d.h_t_tuple_and_lrs()]
            bit = [
                b.h_most_common(),
                b.h_collision(),
                b.h_markov(),
                b.h_compression(),
                *b.h_t_tuple_and_lrs(),
            ]
            return min(min(orig), 8 * min(bit))

        ref, ref_s = timed(reference)
        print(f"NIST reference, same six estimators: {ref_s:.1f} s, min-entropy {ref:.4f}")
        print(
            f"ratio ours / reference time: {ours_s / ref_s:.2f}x (same estimate: {abs(ref - ours['min_entropy']) < 1e-9})"
        )

    if shutil.which("ent"):
        with tempfile.NamedTemporaryFile() as fh:
            fh.write(raw.tobytes())
            fh.flush()
            _, ent_s = timed(
                lambda: subprocess.run(["ent", "-t", fh.name], capture_output=True, check=True)
            )
        _, stats_s = timed(lambda: byte_statistics(raw.tobytes()))
        print(
            f"byte statistics: ours {stats_s * 1e3:.0f} ms, ent {ent_s * 1e3:.0f} ms; ratio ours / ent: {stats_s / ent_s:.2f}x"
        )
    else:
        print("Debian `ent` not installed: no byte-statistics ratio")


if __name__ == "__main__":
    main()
