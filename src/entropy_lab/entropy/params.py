"""The `harvest` params section: every check that params alone allow, done when params load.

Each error is one `params.yaml: harvest.<key> = <value>: <what is allowed>` line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from entropy_lab.schema import Section, bad_value

EXTERNAL_DIR = Path("data/external")  # where imported dumps live: a dependency of the stage
MAX_SOURCE_BYTES = 1 << 28  # conditioned bytes one source may add to the pool (256 MiB)
# raw samples the SP 800-90B estimators get: MultiMCW's widest window (4095) + 1 at least
# (estimators.MIN_SAMPLES; not imported, so loading params does not load numba)
MIN_ASSESSED_SAMPLES = 4096
MAX_ASSESSED_SAMPLES = 4_000_000  # SP 800-90B asks for 1,000,000
SHA256 = re.compile(r"[0-9a-f]{64}")


class SourceSpec(Section):
    name: Literal["kernel", "jitter", "external"]
    bytes: Annotated[int, Field(ge=1, le=MAX_SOURCE_BYTES)]  # conditioned bytes for the pool
    # bits per 8-bit sample the health tests assume
    claimed_h: Annotated[float, Field(gt=0, le=8)]
    path: Annotated[str, Field(max_length=255)] | None = None  # external only: under data/external/
    sha256: str | None = None  # external only: its expected hash

    @model_validator(mode="after")
    def _external_dump(self) -> SourceSpec:
        external = self.name == "external"
        if external != (self.path is not None):
            raise bad_value("path", self.path, "required for the external source, and only for it")
        if external != (self.sha256 is not None):
            raise bad_value(
                "sha256", self.sha256, "required for the external source, and only for it"
            )
        if external:
            root = Path.cwd().resolve()
            where = (root / self.path).resolve()
            if not where.is_relative_to(root / EXTERNAL_DIR):
                raise bad_value(
                    "path",
                    self.path,
                    f"must resolve inside {EXTERNAL_DIR}/ of the repository "
                    "(a dependency of the harvest stage)",
                )
            if not SHA256.fullmatch(self.sha256):
                raise bad_value("sha256", self.sha256, "64 lowercase hex digits")
        return self


class Assessment(Section):
    samples: Annotated[int, Field(ge=MIN_ASSESSED_SAMPLES, le=MAX_ASSESSED_SAMPLES)]
    sts_sequence_bits: Annotated[int, Field(ge=1000)]  # SP 800-22 sequence length
    margin_bits: Annotated[int, Field(ge=0, le=256)]  # conditioning margin over 256 bits


class HarvestSection(Section):
    sources: Annotated[list[SourceSpec], Field(min_length=1)]
    false_alarm_log2: Annotated[int, Field(ge=20, le=60)]  # health tests' alpha = 2^-k
    apt_form: Literal["sp800-90b", "jitterentropy"]
    assessment: Assessment

    @model_validator(mode="after")
    def _consistent(self) -> HarvestSection:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise bad_value("sources", names, "each source may appear once")
        smallest = min(self.sources, key=lambda s: s.bytes)
        if self.assessment.sts_sequence_bits > 8 * smallest.bytes:
            raise bad_value(
                "assessment.sts_sequence_bits",
                self.assessment.sts_sequence_bits,
                f"at most {8 * smallest.bytes}, the bits source {smallest.name!r} adds to the "
                "pool (SP 800-22 runs on every source)",
            )
        return self
