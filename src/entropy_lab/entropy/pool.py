"""The entropy pool: one file of conditioned bytes, handed out in disjoint, recorded ranges.

Allocation is a pure function: an experiment declares (source, samples, streams, bytes per
stream); experiments are laid out one after another inside their source's segment of the
pool, in the order declared, and sample i's stream s gets a fixed slice of its experiment's
block. So a sample's bytes are a function of the pool's hash and the sample's identity,
and no two samples ever share a byte. A ledger records every range handed out;
`check_ledger` proves there is no overlap.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from entropy_lab.artefacts import kind, read_yaml
from entropy_lab.errors import UserError

HARVEST = "run the harvest stage first"
POOL_DIR = Path("data/entropy")
POOL_FILE = "pool.bin"
CARD_FILE = "pool.json"
LOCK = Path("dvc.lock")  # records the frozen harvest stage's outputs (their md5)
WORD_BYTES = 4  # the pool's unit: one 32-bit word per uniform, per seed and per u


@dataclass(frozen=True)
class Segment:
    source: str
    start: int
    end: int


@dataclass(frozen=True)
class Experiment:
    name: str
    source: str
    samples: int
    streams: int
    bytes_per_stream: int

    @property
    def size(self) -> int:
        return self.samples * self.streams * self.bytes_per_stream


@dataclass(frozen=True)
class Range:
    experiment: str
    sample: int
    stream: int
    start: int
    end: int


def base_offsets(experiments: Sequence[Experiment], segments: Sequence[Segment]) -> dict[str, int]:
    """Where each experiment's block starts; fails before any work if a source runs out."""
    seg = {s.source: s for s in segments}
    cursor = {s.source: s.start for s in segments}
    out: dict[str, int] = {}
    for e in experiments:
        if e.name in out:
            raise UserError(f"experiment {e.name!r} is declared twice")
        if e.source not in seg:
            raise UserError(
                f"experiment {e.name!r}: source {e.source!r} is not in the pool; pool has {', '.join(seg)}"
            )
        out[e.name] = cursor[e.source]
        cursor[e.source] += e.size
    for source, end in cursor.items():
        have = seg[source].end - seg[source].start
        need = end - seg[source].start
        if need > have:
            raise UserError(f"entropy pool source {source!r}: need {need} bytes, pool has {have}")
    return out


def allocate(
    experiments: Sequence[Experiment],
    segments: Sequence[Segment],
    name: str,
    sample: int,
    stream: int,
) -> Range:
    """The byte range of (experiment, sample, stream): a pure function of the layout."""
    bases = base_offsets(experiments, segments)
    e = next((x for x in experiments if x.name == name), None)
    if e is None:
        raise UserError(
            f"unknown experiment {name!r}; declared: {', '.join(x.name for x in experiments)}"
        )
    if not (0 <= sample < e.samples and 0 <= stream < e.streams):
        raise UserError(
            f"experiment {name!r}: sample {sample}, stream {stream} outside {e.samples} x {e.streams}"
        )
    start = bases[name] + (sample * e.streams + stream) * e.bytes_per_stream
    return Range(name, sample, stream, start, start + e.bytes_per_stream)


def check_ledger(ranges: Iterable[Range]) -> None:
    """Raise if any two recorded ranges overlap, or one identity maps to two ranges."""
    seen: dict[tuple[str, int, int], Range] = {}
    ordered = []
    for r in ranges:
        key = (r.experiment, r.sample, r.stream)
        if key in seen:
            if seen[key] != r:
                raise UserError(f"ledger: {key} recorded as two different ranges")
            continue
        seen[key] = r
        ordered.append(r)
    ordered.sort(key=lambda r: r.start)
    for a, b in itertools.pairwise(ordered):
        if b.start < a.end:
            raise UserError(f"ledger: {a} overlaps {b}")


def write_ledger(path: Path, ranges: Iterable[Range]) -> None:
    from entropy_lab.provenance import write_json

    write_json(path, [asdict(r) for r in ranges])


def read_ledger(path: Path) -> list[Range]:
    if not Path(path).is_file():  # a FIFO would block the reader
        raise UserError(f"ledger {path}: not a regular file; rerun its stage")
    try:
        return [Range(**r) for r in json.loads(Path(path).read_bytes())]
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(
            f"ledger {path}: unreadable ({type(exc).__name__}); rerun its stage"
        ) from None


def regular(path: Path) -> Path:
    """`path`, unless it is there and not a regular file (reading a FIFO would block)."""
    if path.exists() and not path.is_file():
        raise UserError(f"{path}: not a regular file but {kind(path)}; {HARVEST}")
    return path


def check_manifest(directory: Path, pool_sha: str, card_sha: str, segments) -> None:
    """The harvest manifest vouches for the pool: its recorded output hashes are the pool's and
    the card's, and its params' sources, in order and size, are the card's segments."""
    where = directory / "manifest.json"
    try:
        manifest = json.loads(regular(where).read_bytes())
        outputs, sources = manifest["outputs"], manifest["params"]["harvest.sources"]
        asked = [(str(s["name"]), int(s["bytes"])) for s in sources]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"entropy pool manifest {where}: unreadable ({exc!r})") from None
    for name, sha in ((POOL_FILE, pool_sha), (CARD_FILE, card_sha)):
        if outputs.get(name) != sha:
            raise UserError(
                f"entropy pool {directory / name} hashes to {sha}, the harvest manifest recorded "
                f"{outputs.get(name)}: it was changed after the harvest"
            )
    found = [(seg.source, seg.end - seg.start) for seg in segments]
    if found != asked:
        raise UserError(
            f"entropy pool card {directory / CARD_FILE}: segments {found} are not the harvested "
            f"sources {asked}"
        )


def dvc_md5(directory: Path) -> str:
    """A directory's md5 as dvc.lock records an output directory (dvc_data's tree hash: the md5
    of the JSON list of each file's md5 and relative path, sorted by path)."""
    entries = sorted(
        (
            {
                "md5": hashlib.md5(p.read_bytes()).hexdigest(),
                "relpath": p.relative_to(directory).as_posix(),
            }
            for p in Path(directory).rglob("*")
            if p.is_file()
        ),
        key=lambda e: e["relpath"],
    )
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"


def check_recorded(directory: Path, lock: Path) -> None:
    """The pool directory is the harvest output `lock` records, where it records one. The card
    and manifest only vouch for each other: rewritten together with the pool they agree, while
    dvc.lock (in git; the harvest stage is frozen) still holds the harvest's own hash."""
    if not lock.exists():
        return
    stages = read_yaml(lock)
    stages = stages.get("stages") if isinstance(stages, dict) else None
    harvest = stages.get("harvest") if isinstance(stages, dict) else None
    outs = harvest.get("outs") if isinstance(harvest, dict) else None
    recorded = [
        o.get("md5")
        for o in outs or []
        if isinstance(o, dict) and o.get("path") == POOL_DIR.as_posix()
    ]
    if not recorded:
        return
    if (found := dvc_md5(directory)) != recorded[0]:
        raise UserError(
            f"entropy pool {directory}: md5 {found}, but {lock} records the harvest's {recorded[0]}: "
            "it was changed after the harvest; restore it (`git checkout data/entropy`), or record a "
            "new harvest (`dvc repro harvest`, or `dvc commit harvest` after `entropy-lab harvest`)"
        )


@dataclass(frozen=True)
class Pool:
    """A harvested pool: its bytes and the card that says where each source's bytes are."""

    data: bytes
    sha256: str
    segments: tuple[Segment, ...]

    @classmethod
    def load(cls, directory: Path = POOL_DIR, lock: Path | None = None) -> Pool:
        """The pool, after checking its card against its bytes (size, sha256; segments sorted,
        disjoint and inside the pool) and both against the harvest manifest (their hashes, and
        each segment's source and size as params asked), so a relabelled card is refused; and,
        given `lock` (dvc.lock), the whole directory against the harvest output it records."""
        from entropy_lab.provenance import sha256_bytes

        path, card_path = Path(directory) / POOL_FILE, Path(directory) / CARD_FILE
        if not path.exists():
            raise UserError(f"no entropy pool at {path}; {HARVEST}")
        data = regular(path).read_bytes()
        try:
            card_bytes = regular(card_path).read_bytes()
            card = json.loads(card_bytes)
            size, sha256 = int(card.get("size", len(data))), str(card["sha256"])
            segments = tuple(
                Segment(str(s["source"]), int(s["start"]), int(s["end"])) for s in card["segments"]
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"entropy pool card {card_path}: unreadable ({exc!r})") from None
        if len(data) != size:
            raise UserError(f"entropy pool {path} has {len(data)} bytes, its card says {size}")
        digest = sha256_bytes(data)
        if digest != sha256:
            raise UserError(f"entropy pool {path} hashes to {digest}, its card says {sha256}")
        end = 0
        for seg in segments:
            if not end <= seg.start <= seg.end <= size:
                raise UserError(
                    f"entropy pool card {card_path}: segment {seg.source!r} [{seg.start}, "
                    f"{seg.end}) is not sorted, disjoint and inside the pool's {size} bytes"
                )
            end = seg.end
        check_manifest(Path(directory), digest, sha256_bytes(card_bytes), segments)
        if lock is not None:
            check_recorded(Path(directory), lock)
        return cls(data, digest, segments)

    def read(self, r: Range) -> bytes:
        if not 0 <= r.start <= r.end <= len(self.data):
            raise UserError(
                f"entropy pool: range [{r.start}, {r.end}) of {r.experiment!r} sample {r.sample} "
                f"is outside the pool's {len(self.data)} bytes"
            )
        return self.data[r.start : r.end]
