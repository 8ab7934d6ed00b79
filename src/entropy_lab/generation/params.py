"""The `ab` params section: prompts, conditions, generation, metrics and analysis settings.

Kept free of torch so that validating params.yaml stays fast.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from entropy_lab.schema import PositiveInt, Section, bad_value

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
    "prng_stream_aa": ("stream", "prng"),  # arm B of the A/A control (arm A: prng_stream)
}
Condition = Literal[
    "fixed42",
    "listed_seeds",
    "prng_seed",
    "entropy_seed",
    "prng_stream",
    "entropy_stream",
    "prng_stream_aa",
]
AA_COMPARISON = ("prng_stream_aa", "prng_stream")


class Prompt(Section):
    id: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    text: Annotated[str, Field(min_length=1)]
    answer: str | None = None  # a regex; a sample is accurate when its text matches it


class GenerateSection(Section):
    conditions: Annotated[list[Condition], Field(min_length=1)]
    listed_seeds: Annotated[list[Annotated[int, Field(ge=0, lt=2**32)]], Field(min_length=1)]
    replicates: Annotated[int, Field(ge=2)]
    seed: Annotated[int, Field(ge=0)]  # keys every PRNG draw
    source: str  # the pool source the entropy_* conditions read
    temperature: Annotated[float, Field(gt=0)]
    top_k: Annotated[int, Field(ge=0)]  # 0: off
    top_p: Annotated[float, Field(gt=0, le=1)]  # 1: off
    batch_size: PositiveInt

    @model_validator(mode="after")
    def _unique(self) -> GenerateSection:
        if len(set(self.conditions)) != len(self.conditions):
            raise bad_value("conditions", self.conditions, "each condition at most once")
        return self


class MetricsSection(Section):
    embedder: Literal["auto", "minilm", "tfidf"]  # auto: MiniLM when installed, else TF-IDF
    ngram: Annotated[int, Field(ge=1, le=8)]
    best_of_k: Annotated[int, Field(ge=2)]
    scorer: str  # a per-sample metric (higher is better) or `reward:<local model dir>`


class AnalysisSection(Section):
    comparisons: Annotated[
        list[Annotated[list[Condition], Field(min_length=2, max_length=2)]], Field(min_length=1)
    ]  # [treatment, control]
    alpha: Annotated[float, Field(gt=0, lt=0.5)]
    correction: Literal["holm", "fdr_bh"]
    equivalence_margin_sd: Annotated[float, Field(gt=0)]  # TOST margin, in pooled SDs
    power: Annotated[float, Field(gt=0, lt=1)]
    bootstrap: Annotated[int, Field(ge=100)]
    permutations: Annotated[int, Field(ge=100)]
    aa_simulations: Annotated[int, Field(ge=10)]
    seed: Annotated[int, Field(ge=0)]


class ABSection(Section):
    models: Annotated[list[str], Field(min_length=1)]
    lengths: Annotated[list[PositiveInt], Field(min_length=1)]  # max_new_tokens
    prompts: Annotated[list[Prompt], Field(min_length=2)]
    generate: GenerateSection
    metrics: MetricsSection
    analysis: AnalysisSection

    @model_validator(mode="after")
    def _consistent(self) -> ABSection:
        ids = [p.id for p in self.prompts]
        if len(set(ids)) != len(ids):
            raise bad_value("prompts", ids, "prompt ids must be unique")
        if self.metrics.best_of_k > self.generate.replicates:
            raise bad_value(
                "metrics.best_of_k",
                self.metrics.best_of_k,
                f"at most generate.replicates ({self.generate.replicates})",
            )
        have = ", ".join(self.generate.conditions)
        for i, pair in enumerate(self.analysis.comparisons):
            for name in pair:
                if name not in self.generate.conditions:
                    raise bad_value(
                        f"analysis.comparisons[{i}]",
                        name,
                        f"not in generate.conditions; allowed: {have}",
                    )
            if pair[0] == pair[1]:
                raise bad_value(
                    f"analysis.comparisons[{i}]", list(pair), "two different conditions"
                )
        return self
