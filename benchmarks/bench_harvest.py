"""Harvest throughput per source, and the SP 800-90B assessment against NIST's C++, measured
side by side in one run (ratios; absolute times are this machine's).

    python benchmarks/bench_harvest.py [--samples 1000000]

For 1,000,000 jitter samples, 1,000,000 kernel bytes and a periodic sequence: the time of
each of the ten estimators on the samples and on their bit string, ours (`estimators`) and
NIST's (PyPI `sp800-90b`, `make install-reference`), in CPU seconds, the ratio, and whether
the estimates are identical (to 1e-9); then the whole assessment (`estimators.assess`)
against NIST's ten estimators. Debian's `ent` is the reference for the byte statistics.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from itertools import islice

import numpy as np

from entropy_lab.entropy import estimators, kernels, sources
from entropy_lab.entropy.harvest import byte_statistics

NIST = {  # our estimator -> NIST's Data method (t-tuple and LRS come from one call)
    "most_common_value": "most_common",
    "collision": "collision",
    "markov": "markov",
    "compression": "compression",
    "t_tuple+lrs": "t_tuple_and_lrs",
    "multi_mcw": "multi_most_common",
    "lag": "lag_prediction",
    "multi_mmc": "multi_markov",
    "lz78y": "lz78y",
}


def timed(fn, clock=time.perf_counter):
    t0 = clock()
    out = fn()
    return out, clock() - t0


def cpu(fn):
    """CPU seconds of this process: both sides run single-threaded, and CPU time is what a
    shared machine's other load does not inflate."""
    return timed(fn, time.process_time)


def throughput(name: str, chunks, n_chunks: int) -> float:
    data, s = timed(lambda: np.concatenate(list(islice(chunks, n_chunks))))
    rate = data.size / s
    print(f"{name:8s} raw bytes/s: {rate:,.0f}")
    return rate


def ours_per_estimator(s: np.ndarray, k: int) -> dict[str, tuple[object, float]]:
    """Each estimator on symbols 0..k-1, timed; the suffix array is charged to the t-tuple/LRS
    estimate and the context ids to MultiMMC, where they are first needed."""
    out: dict[str, tuple[object, float]] = {}
    out["most_common_value"] = cpu(lambda: estimators.most_common_value(s))
    if k == 2:
        out["collision"] = cpu(lambda: estimators.collision(s))
        out["markov"] = cpu(lambda: estimators.markov(s))
        out["compression"] = cpu(lambda: estimators.compression(s))
    sa, sa_s = cpu(lambda: estimators.suffix_array(s))
    (t, lrs), tl_s = cpu(lambda: estimators.tuple_and_lrs(s, sa))
    out["t_tuple+lrs"] = ((t, lrs), sa_s + tl_s)
    out["multi_mcw"] = cpu(lambda: estimators.multi_mcw(s, k))
    out["lag"] = cpu(lambda: estimators.lag(s, k))
    ids, ids_s = (None, 0.0) if k == 2 else cpu(lambda: kernels.substring_ids(*sa, 17))
    h, mmc_s = cpu(lambda: estimators.multi_mmc(s, k, ids))
    out["multi_mmc"] = (h, ids_s + mmc_s)
    out["lz78y"] = cpu(lambda: estimators.lz78y(s, k, ids))
    return out


def same(ours, ref) -> bool:
    if isinstance(ref, tuple):
        return all(same(a, b) for a, b in zip(ours, ref, strict=True))
    return (ours is None and ref < 0) or (ours is not None and abs(ours - ref) < 1e-9)


def compare(label: str, raw: np.ndarray, sp800_90b) -> None:
    symbols, k = estimators.translate(raw)
    bits = estimators.to_bits(raw, 8)
    data = sp800_90b.Data(raw.tobytes(), bits_per_symbol=8)
    bitdata = sp800_90b.Data(bits.tobytes(), bits_per_symbol=1)
    print(f"\n-- {label}: {raw.size:,} samples, {k} values")
    print(f"   {'estimator (CPU s)':28s} {'ours':>8s} {'NIST':>8s} {'ratio':>7s}  identical")
    total_ours = total_ref = 0.0
    all_same = True
    parts = (("samples", symbols, k, data), ("bit string", bits, 2, bitdata))
    # ours first, then NIST's: freeing the millions of map nodes of NIST's literal MultiMMC
    # and LZ78Y leaves glibc a heap to consolidate, which would be charged to the next caller
    ours_by_part = {part: ours_per_estimator(s, kk) for part, s, kk, _ in parts}
    for part, _, _, ref in parts:
        for name, (h, s_ours) in ours_by_part[part].items():
            r, s_ref = cpu(getattr(ref, f"h_{NIST[name]}"))
            ok = same(h, r)
            all_same &= ok
            total_ours += s_ours
            total_ref += s_ref
            print(
                f"   {name + ' (' + part + ')':28s} {s_ours:8.3f} {s_ref:8.3f} {s_ours / s_ref:6.2f}x  {ok}"
            )
    print(
        f"   {'all ten, both parts':28s} {total_ours:8.3f} {total_ref:8.3f} {total_ours / total_ref:6.2f}x  {all_same}"
    )
    ours, ours_s = cpu(lambda: estimators.assess(raw, 8))
    ref_h, ref_s = cpu(data.h_initial)
    print(
        f"ratio ours / NIST, whole assessment ({label}): {ours_s:.2f} s / {ref_s:.2f} s = "
        f"{ours_s / ref_s:.2f}x; min-entropy {ours['min_entropy']:.6f} vs {ref_h:.6f} "
        f"(identical: {abs(ours['min_entropy'] - ref_h) < 1e-9})"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1_000_000)
    args = ap.parse_args()

    kernel_rate = throughput("kernel", sources.kernel(), 32)
    jitter_rate = throughput("jitter", sources.jitter(), 4)
    print(f"ratio kernel / jitter throughput: {kernel_rate / jitter_rate:.1f}x")

    n = args.samples
    chunks = -(-n // sources.CHUNK)
    inputs = {
        "jitter": np.concatenate(list(islice(sources.jitter(), chunks)))[:n],
        "kernel": np.concatenate(list(islice(sources.kernel(), chunks)))[:n],
        "periodic (0..7 repeated)": (np.arange(n) % 8).astype(np.uint8),
    }
    _, warm_s = timed(lambda: estimators.assess(inputs["kernel"][:5000], 8))
    print(
        f"numba kernels loaded (or compiled, first run only) in {warm_s:.1f} s; not counted below"
    )

    try:
        import sp800_90b
    except ImportError:
        print("reference sp800-90b not installed (make install-reference): no ratios")
    else:
        for label, raw in inputs.items():
            compare(label, raw, sp800_90b)

    raw = inputs["jitter"]
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
