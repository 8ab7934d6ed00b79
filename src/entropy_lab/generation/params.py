"""The `ab` params section: prompts, conditions, generation, metrics and analysis settings.

Kept free of torch so that validating params.yaml stays fast. Every bound that can be
checked from params alone is checked here, so a bad value is a one-line `params.yaml:` error
before any stage starts.
"""

from __future__ import annotations

import math
import re
from pathlib import PurePosixPath
from typing import Annotated, Literal

import regex
from pydantic import ConfigDict, Field, field_validator, model_validator

from entropy_lab.schema import Section, Seed, bad_value

# Every condition is (how the randomness enters, where it comes from). Seed conditions are the
# write-up's protocol: `torch.manual_seed(seed)` then HF `generate(do_sample=True)`, one call per
# sample. Stream conditions feed one uniform per generated token to the inverse-CDF sampler.
CONDITIONS: dict[str, tuple[str, str]] = {
    "fixed42": ("seed", "fixed"),
    "listed_seeds": ("seed", "listed"),
    "prng_seed": ("seed", "prng"),
    "entropy_seed": ("seed", "pool"),
    "prng_stream": ("stream", "prng"),
    "entropy_stream": ("stream", "pool"),
}
Condition = Literal[
    "fixed42", "listed_seeds", "prng_seed", "entropy_seed", "prng_stream", "entropy_stream"
]
AA_KIND = ("stream", "prng")  # every A/A arm is prng_stream under its own keys

# Per-sample metrics (metrics.py computes them; a best-of-K scorer may name any of them).
SAMPLE_METRICS = (
    "repeat_rate",
    "longest_repeat",
    "repetition",
    "echo",
    "distinct_1",
    "distinct_2",
    "n_tokens",
    "early_stop",
    "mean_logprob",
    "mean_entropy",
    "topicality",
    "accuracy",
)
GROUP_METRICS = ("self_bleu", "embedding_diversity", "best_score")
DISTRIBUTION_FEATURES = ("embedding", "ngram")  # what the distribution tests compare

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"  # ids that become parts of paths and sample ids
MAX_SAMPLES = 1_000_000  # per (model, length) stage


def aa_arms(pairs: int) -> list[tuple[str, str]]:
    """The A/A pairs: two prng_stream arms under keys of their own, per pair."""
    return [(f"aa{k}_a", f"aa{k}_b") for k in range(1, pairs + 1)]


def condition_kind(name: str) -> tuple[str, str]:
    """(kind, source) of a condition or an A/A arm."""
    if name in CONDITIONS:
        return CONDITIONS[name]
    if re.fullmatch(r"aa[1-9][0-9]*_[ab]", name):
        return AA_KIND
    raise KeyError(name)


def _unique(key: str, values: list) -> None:
    if len(set(values)) != len(values):
        raise bad_value(key, values, "each value at most once")


class ABParams(Section):
    """Every float of the `ab` section is finite."""

    model_config = ConfigDict(allow_inf_nan=False)


# Answer regexes run on the `regex` engine, whose matching stops at a time limit (Python's `re`
# cannot be interrupted: `(.|.)*ZZZ` ran for minutes on a 40-character text).
MATCH_SECONDS = 1.0  # one match in ab-metrics; linear patterns take microseconds
PROBE_SECONDS = 0.1  # one probe when params are validated
PROBE_CHARS = 1024
MAX_REPEATS = 1000  # the product of an answer's repeat counts: `regex` unrolls them to compile


def answer_found(answer: str, text: str, seconds: float = MATCH_SECONDS) -> bool:
    """Whether `text` contains a match of the answer regex, case-insensitively; TimeoutError
    after `seconds`."""
    return regex.search(answer, text, flags=regex.IGNORECASE, timeout=seconds) is not None


def probes(answer: str) -> list[str]:
    """Texts on which a catastrophically backtracking pattern shows itself: long runs of one
    character or pair (a few fixed ones, and the letters and digits the pattern names), each
    failing at its end."""
    named = list(dict.fromkeys(c for c in answer if c.isascii() and c.isalnum()))[:8]
    units = ("a", "0", " ", "\n", ".", "ab", "a ", "aA", *named)
    return [(u * PROBE_CHARS)[:PROBE_CHARS] + end for u in units for end in ("", "!")]


def check_answer(answer: str) -> None:
    """Compiles (as Python's `re` reads it, and with a bounded unrolled size as `regex` reads
    it), and matches every probe in PROBE_SECONDS."""
    try:
        re.compile(answer)
    except re.error as exc:
        raise bad_value("", answer, f"not a regular expression ({exc})") from None
    counts = re.findall(r"\{(\d*),?(\d*)\}", answer)  # {m}, {m,}, {,n}, {m,n}
    if math.prod(max(int(n) for n in c if n) for c in counts if any(c)) > MAX_REPEATS:
        raise bad_value("", answer, f"its repeat counts multiply to more than {MAX_REPEATS}")
    try:
        regex.compile(answer, flags=regex.IGNORECASE)
    except regex.error as exc:
        raise bad_value("", answer, f"not a regular expression ({exc})") from None
    for text in probes(answer):
        try:
            answer_found(answer, text, PROBE_SECONDS)
        except TimeoutError:
            raise bad_value(
                "",
                answer,
                f"backtracks catastrophically (over {PROBE_SECONDS} s on a {len(text)}-character "
                f"text {text[:6]!r}...); allowed: a regular expression without nested repetition",
            ) from None


class Prompt(ABParams):
    id: Annotated[str, Field(pattern=NAME, max_length=64)]
    text: Annotated[str, Field(min_length=1, max_length=10_000)]
    # a regex; a sample is accurate when its text matches it
    answer: Annotated[str, Field(max_length=1000)] | None = None

    @field_validator("answer")
    @classmethod
    def _matches_in_bounded_time(cls, answer: str | None) -> str | None:
        if answer is not None:
            check_answer(answer)
        return answer


class GenerateSection(ABParams):
    conditions: Annotated[list[Condition], Field(min_length=1)]
    aa_pairs: Annotated[int, Field(ge=0, le=200)]  # A/A pairs of prng_stream arms
    aa_replicates: Annotated[int, Field(ge=2, le=10_000)]  # samples per prompt of an A/A arm
    listed_seeds: Annotated[
        list[Annotated[int, Field(ge=0, lt=2**32)]], Field(min_length=1, max_length=1000)
    ]
    replicates: Annotated[int, Field(ge=2, le=10_000)]
    seed: Seed  # keys every PRNG draw
    source: str  # the pool source the entropy_* conditions read (a harvest.sources name)
    temperature: Annotated[float, Field(ge=0.05, le=10)]  # below 0.05 logits overflow
    top_k: Annotated[int, Field(ge=0, le=1_000_000)]  # 0: off
    top_p: Annotated[float, Field(gt=0, le=1)]  # 1: off
    batch_size: Annotated[int, Field(ge=1, le=4096)]
    pool_skip: Annotated[int, Field(ge=0, le=2**40)] = 0  # pool bytes before the first range

    @model_validator(mode="after")
    def _unique(self) -> GenerateSection:
        _unique("conditions", self.conditions)
        return self

    def arms(self) -> list[str]:
        """Every arm generated: the conditions, then the A/A pairs."""
        return [*self.conditions, *(a for pair in aa_arms(self.aa_pairs) for a in pair)]

    def replicates_of(self, arm: str) -> int:
        """Samples per prompt: fixed42 one (every replicate would be the same), listed_seeds
        one per seed, an A/A arm `aa_replicates`, every other arm `replicates`."""
        source = condition_kind(arm)[1]
        if source == "fixed":
            return 1
        if source == "listed":
            return len(self.listed_seeds)
        if arm not in CONDITIONS:
            return self.aa_replicates
        return self.replicates


def _inside_repository(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(path) and not p.is_absolute() and ".." not in p.parts and "\\" not in path


class MetricsSection(ABParams):
    embedder: Literal["auto", "minilm", "tfidf"]  # auto: MiniLM when installed, else TF-IDF
    ngram: Annotated[int, Field(ge=1, le=8)]
    best_of_k: Annotated[int, Field(ge=2, le=1000)]
    scorer: str  # a per-sample metric (higher is better) or `reward:<model dir in the repository>`

    @field_validator("scorer")
    @classmethod
    def _known(cls, scorer: str) -> str:
        if scorer.startswith("reward:"):
            if not _inside_repository(scorer.removeprefix("reward:")):
                raise bad_value(
                    "", scorer, "reward:<dir> takes a relative path inside the repository"
                )
        elif scorer not in SAMPLE_METRICS:
            raise bad_value("", scorer, f"allowed: {', '.join(SAMPLE_METRICS)}, reward:<model dir>")
        return scorer


Pair = Annotated[list[Condition], Field(min_length=2, max_length=2)]  # [treatment, control]


Endpoint = Literal[SAMPLE_METRICS + GROUP_METRICS]
HEX = r"^[0-9a-f]{7,40}$"


class Declaration(ABParams):
    """Where an analysis was declared: the commit that first gave its fields their values (a
    test checks it against git), its date, and the sha256 of those fields (`claim_digest`): a
    run whose fields differ from the declared ones is reported as post hoc."""

    commit: Annotated[str, Field(pattern=HEX)]
    date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    digest: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    note: Annotated[str, Field(max_length=300)] = ""  # what the report adds (e.g. a pilot)


class PrimarySection(ABParams):
    """The primary analysis (stats.primary): its comparisons, its endpoints, the equivalence
    margin in within-prompt SDs, and the power its plan aims for; `declared` says when."""

    declared: Declaration | None = None
    comparisons: Annotated[list[Pair], Field(min_length=1, max_length=10)]
    # per-sample metrics, or per-group ones (groups of `metrics.best_of_k` replicates)
    endpoints: Annotated[
        list[Endpoint], Field(min_length=1, max_length=len(SAMPLE_METRICS + GROUP_METRICS))
    ]
    margin_sd: Annotated[float, Field(gt=0, le=2)]
    power: Annotated[float, Field(gt=0, lt=1)]
    # an endpoint with fewer values off their prompt and arm's mode has no test ("no variation")
    min_varying: Annotated[int, Field(ge=1, le=100_000)] = 10

    def claim(self, alpha: float) -> dict:
        """The fields a declaration fixes."""
        return {"comparisons": self.comparisons, "endpoints": self.endpoints,
                "margin_sd": self.margin_sd, "power": self.power, "alpha": alpha}  # fmt: skip


class Deviation(ABParams):
    """An endpoint set chosen after the data, reported beside the declared one, labelled."""

    name: Annotated[str, Field(pattern=NAME, max_length=64)]
    commit: Annotated[str, Field(pattern=HEX)]  # the commit that made it
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    endpoints: Annotated[
        list[Endpoint], Field(min_length=1, max_length=len(SAMPLE_METRICS + GROUP_METRICS))
    ]


class Confirmatory(ABParams):
    """One effect, confirmed or refuted on fresh data: a within-prompt difference test and a
    TOST at +-effect_d on one endpoint, comparison and length, at the n its plan gives. It is
    analysed on a run whose generation is its declared design (`replicates`, fresh PRNG keys
    `seed`, fresh pool ranges after `pool_skip` bytes), never on the data that suggested it."""

    declared: Declaration | None = None
    endpoint: Endpoint
    comparison: Pair
    length: Annotated[int, Field(ge=1, le=32_768)]
    effect_d: Annotated[
        float, Field(gt=0, le=2)
    ]  # in within-prompt SDs; its sign: treatment > control
    alpha: Annotated[float, Field(gt=0, lt=0.5)]
    power: Annotated[float, Field(gt=0, lt=1)]
    replicates: Annotated[int, Field(ge=2, le=10_000)]
    seed: Seed
    pool_skip: Annotated[int, Field(ge=0, le=2**40)]

    def claim(self) -> dict:
        return self.model_dump(exclude={"declared"})

    def applies(self, ab: ABSection) -> bool:
        """Whether a run is this test's declared design."""
        g = ab.generate
        return (
            (g.seed, g.pool_skip, g.replicates) == (self.seed, self.pool_skip, self.replicates)
            and self.length in ab.lengths
            and set(self.comparison) <= set(g.conditions)
        )


def claim_digest(fields: dict) -> str:
    """sha256 of an analysis' declared fields, as canonical JSON."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class AnalysisSection(ABParams):
    primary: PrimarySection
    deviations: Annotated[list[Deviation], Field(default_factory=list, max_length=10)]
    confirmatory: Confirmatory | None = None
    comparisons: Annotated[
        list[Annotated[list[Condition], Field(min_length=2, max_length=2)]],
        Field(min_length=1, max_length=100),
    ]  # [treatment, control]
    alpha: Annotated[float, Field(gt=0, lt=0.5)]
    correction: Literal["holm", "fdr_bh"]
    equivalence_margin_sd: Annotated[float, Field(gt=0, le=2)]  # secondary TOSTs, pooled SDs
    power: Annotated[float, Field(gt=0, lt=1)]
    bootstrap: Annotated[int, Field(ge=100, le=100_000)]
    min_records_ci: Annotated[int, Field(ge=2, le=10_000)]  # no bootstrap CI from fewer
    permutations: Annotated[int, Field(ge=100, le=100_000)]
    mauve_permutations: Annotated[int, Field(ge=1, le=1000)]  # MAUVE's null at the same n
    seed: Seed  # keys the bootstrap, permutation and MAUVE draws


class ABSection(ABParams):
    models: Annotated[list[str], Field(min_length=1, max_length=100)]
    lengths: Annotated[
        list[Annotated[int, Field(ge=1, le=32_768)]], Field(min_length=1, max_length=100)
    ]  # max_new_tokens
    prompts: Annotated[list[Prompt], Field(min_length=2, max_length=1000)]
    generate: GenerateSection
    metrics: MetricsSection
    analysis: AnalysisSection

    @model_validator(mode="after")
    def _consistent(self) -> ABSection:
        _unique("models", self.models)
        _unique("lengths", self.lengths)
        _unique("prompts", [p.id for p in self.prompts])
        g = self.generate
        if self.metrics.best_of_k > g.replicates:
            raise bad_value(
                "metrics.best_of_k",
                self.metrics.best_of_k,
                f"at most generate.replicates ({g.replicates})",
            )
        samples = len(self.prompts) * sum(map(g.replicates_of, g.arms()))
        if samples > MAX_SAMPLES:
            raise bad_value(
                "generate.replicates",
                g.replicates,
                f"{samples:,} samples per model and length; at most {MAX_SAMPLES:,}",
            )
        a = self.analysis
        family = self.largest_family()
        if a.permutations * a.alpha < family:
            raise bad_value(
                "analysis.permutations",
                a.permutations,
                f"at least {math.ceil(family / a.alpha)}: the smallest permutation p-value, "
                f"1/(permutations+1), must pass alpha/m, the correction's threshold for a lone "
                f"effect among the {family} tests of the largest family",
            )
        have = ", ".join(g.conditions)
        primary = self.analysis.primary
        for key, pairs in (
            ("analysis.primary.comparisons", primary.comparisons),
            ("analysis.comparisons", self.analysis.comparisons),
        ):
            for i, pair in enumerate(pairs):
                for name in pair:
                    if name not in g.conditions:
                        raise bad_value(
                            f"{key}[{i}]", name, f"not in generate.conditions; allowed: {have}"
                        )
                if pair[0] == pair[1]:
                    raise bad_value(f"{key}[{i}]", list(pair), "two different conditions")
        _unique("analysis.primary.endpoints", primary.endpoints)
        return self

    def largest_family(self) -> int:
        """Tests in the secondary analysis' correction family (at most: not every metric exists
        for every arm). The A/A tests calibrate at alpha, before correction, so their family's
        size sets no floor on the permutations."""
        runs = len(self.models) * len(self.lengths)
        metrics = len(SAMPLE_METRICS) + len(GROUP_METRICS)
        return runs * len(self.analysis.comparisons) * max(metrics, len(DISTRIBUTION_FEATURES))
