"""A declared analysis stays declared: what params call declared is what git holds at the
declaring commit, and no text calls an analysis declared unless its declaring commit comes
strictly before the first committed results of that analysis (and, in an experiment record,
before the record's run). A change after the data is a labelled deviation, never a declaration.

Everything is read from git: the declaring commits from params.yaml's history and the texts'
citations, the first results from the history of the committed results (reports/metrics.json,
reports/report.md and every experiment record's metrics.json and report.md, removed records
included)."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from entropy_lab.config import parse_params
from entropy_lab.experiments import errata
from entropy_lab.generation.params import claim_digest
from tests.conftest import REPO


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)


def shallow() -> bool:
    return git("rev-parse", "--is-shallow-repository").stdout.strip() != "false"


pytestmark = pytest.mark.skipif(shallow(), reason="needs the repository's history")


# ---------------------------------------------------------------------------------------------
# git, cached: commits, ancestry, params and results as each commit held them


@functools.cache
def full(commit: str) -> str | None:
    """The full hash of `commit`, or None where git has no such commit."""
    out = git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
    return out.stdout.strip() if out.returncode == 0 else None


@functools.cache
def is_ancestor(early: str, late: str) -> bool:
    """`early` is `late` or one of its ancestors."""
    return git("merge-base", "--is-ancestor", early, late).returncode == 0


def strictly_before(early: str, late: str) -> bool:
    return full(early) != full(late) and is_ancestor(early, late)


@functools.cache
def commit_date(commit: str) -> str:
    return git("show", "-s", "--format=%ad", "--date=short", commit).stdout.strip()


@functools.cache
def show(commit: str, path: str) -> str | None:
    out = git("show", f"{commit}:{path}")
    return out.stdout if out.returncode == 0 else None


@functools.cache
def params_at(commit: str) -> dict:
    """params.yaml as `commit` held it (raw: older params need not validate today)."""
    text = show(commit, "params.yaml")
    return (yaml.safe_load(text) if text else None) or {}


@functools.cache
def params_history() -> tuple[str, ...]:
    """Every commit that changed params.yaml, oldest first."""
    out = git("log", "--reverse", "--topo-order", "--format=%H", "--", "params.yaml")
    return tuple(out.stdout.split())


def analysis_at(commit: str) -> dict:
    """The ab.analysis section of params.yaml as `commit` held it."""
    assert show(commit, "params.yaml") is not None, f"{commit} has no params.yaml"
    return params_at(commit)["ab"]["analysis"]


RESULT_FILES = (
    "reports/metrics.json",
    "reports/report.md",
    "reports/experiments/*/metrics.json",
    "reports/experiments/*/report.md",
)


@functools.cache
def result_versions() -> tuple[tuple[str, str], ...]:
    """(commit, path) for every committed version of a results file, oldest first."""
    out = git(
        "log", "--reverse", "--topo-order", "--format=@%H", "--name-only", "--diff-filter=AMR",
        "--", *RESULT_FILES,
    )  # fmt: skip
    versions, commit = [], None
    for line in out.stdout.splitlines():
        if line.startswith("@"):
            commit = line[1:]
        elif line.strip():
            versions.append((commit, line.strip()))
    return tuple(versions)


@functools.cache
def result_content(commit: str, path: str):
    text = show(commit, path)
    if text is None or not path.endswith(".json"):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# The analyses: where params hold each, and what in the committed results is a result of it

PRIMARY, CONFIRMATORY = "ab.analysis.primary", "ab.analysis.confirmatory"
TEACHING, CLOSE = "evaluate.primary", "evaluate.close_tvd"
VARIANTS = r"ce_kl|ce_multisample|soft_trie|seeded|kl|base"


def lookup(params: dict, key: str):
    node = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def fields(key: str, value):
    """What a declaration fixes: an ab analysis's fields without its `declared` note; a teaching
    comparison as the set of its two arms (either order is the same comparison)."""
    if key in (PRIMARY, CONFIRMATORY) and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "declared"}
    if key == TEACHING and isinstance(value, list | tuple):
        return frozenset(value)
    return value


def value_in(params: dict, key: str):
    """The analysis as `params` hold it, in the form `fields` compares."""
    return fields(key, lookup(params, key))


def freeze(value) -> str:
    return json.dumps(sorted(value) if isinstance(value, frozenset) else value, sort_keys=True)


@functools.cache
def first_declaring_commit(key: str, frozen: str) -> str | None:
    """The first commit whose params.yaml holds the analysis with these fields."""
    for commit in params_history():
        if freeze(value_in(params_at(commit), key)) == frozen:
            return commit
    return None


def declaring_commit(key: str, params: dict) -> str | None:
    """The commit that declared the analysis `params` hold: its `declared.commit` where params
    name one (its digest is checked against git below), else the first commit whose params.yaml
    held the same value."""
    stated = (lookup(params, key) or {}).get("declared") if key in (PRIMARY, CONFIRMATORY) else None
    if stated:
        return full(str(stated["commit"]))
    value = value_in(params, key)
    return None if value is None else first_declaring_commit(key, freeze(value))


def walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


def mentions_tvd(node) -> bool:
    return any("tvd" in d for d in walk(node))


def holds_results(key: str, value, content) -> bool:
    """Whether one committed results file holds results of the analysis."""
    if content is None:
        return False
    if isinstance(content, str):  # a report
        if key == PRIMARY:
            return "primary claim" in content
        if key == CONFIRMATORY:
            return (
                re.search(r"confirmatory\b[^\n]*\*\*(?:confirmed|refuted|inconclusive)", content)
                is not None
            )
        if key == TEACHING:
            a, b = sorted(value)
            pairs = [f"{x} {op} {y}" for x, y in ((a, b), (b, a)) for op in ("-", "minus")]
            return any(p in content for p in pairs)
        if key == CLOSE:
            v = re.escape(f"{value:g}")
            return (
                re.search(rf"close_tvd|(?:at most|within) (?:TVD )?{v}(?![\d])", content)
                is not None
            )
    ab, teaching = content.get("ab") or {}, content.get("teaching") or {}
    if key == PRIMARY:
        return bool(ab.get("primary"))
    if key == CONFIRMATORY:
        return bool(ab.get("confirmatory"))
    if key == TEACHING:  # both arms' TVD side by side, their paired difference, or the comparison
        a, b = sorted(value)
        for d in walk(teaching):
            if a in d and b in d and mentions_tvd(d[a]) and mentions_tvd(d[b]):
                return True
            if (
                f"{a} - {b}" in d
                or f"{b} - {a}" in d
                or {d.get("variant"), d.get("reference")} == {a, b}
            ):
                return True
        return False
    if key == CLOSE:
        return any("close_rate" in d for d in walk(teaching))
    raise AssertionError(key)


@functools.cache
def results_commits(key: str, frozen: str) -> tuple[str, ...]:
    """Every commit whose committed results hold results of the analysis, oldest first."""
    value = json.loads(frozen)
    value = frozenset(value) if key == TEACHING else value
    out = []
    for commit, path in result_versions():
        if commit not in out and holds_results(key, value, result_content(commit, path)):
            out.append(commit)
    return tuple(out)


def first_results(key: str, value) -> str | None:
    found = results_commits(key, freeze(value))
    return found[0] if found else None


# ---------------------------------------------------------------------------------------------
# The texts: every sentence that says an analysis was declared (before the data)

TEXTS = ("README.md", "docs/*.md", "reports/report.md", "reports/experiments/*/report.md")

KEYWORDS = (  # what names each analysis in a sentence
    (CONFIRMATORY, r"ab\.analysis\.confirmatory|confirmatory"),
    (
        PRIMARY,
        r"ab\.analysis\.primary(?![.\w])|primary (?:claim|analysis)|declared (?:claim|endpoints)"
        r"|seeding study's primary|±0\.3 within-prompt SD",
    ),
    (
        TEACHING,
        rf"evaluate\.primary|(?:declared|primary) (?:teaching )?comparison"
        rf"|\b(?:{VARIANTS})\b (?:minus|against|vs\.?|versus) \b(?:{VARIANTS})\b",
    ),
    (CLOSE, r"evaluate\.close_tvd|close_tvd|graded criteri(?:on|a)"),
)
PAIR = re.compile(rf"\b({VARIANTS})\b (?:minus|against|vs\.?|versus) \b({VARIANTS})\b")
HASH = r"`?([0-9a-f]{7,40})`?"
CITED = re.compile(  # "declared in commit X (date", "declared X", "fixed in X", "committed in X"
    rf"\b(?:declared|declaration|fixed|committed|written down)\s+(?:(?:in|at|by)\s+)?"
    rf"(?:(?:the\s+)?commit\s+)?{HASH}(?:\s+\((\d{{4}}-\d{{2}}-\d{{2}}))?",
    re.IGNORECASE,
)
STATISTICAL = re.compile(  # "declare" as a test's verdict, not as a declaration
    r"\bdeclares?\s+(?:a |any |no )?differen\w*|\bdeclared\s+different|would\s+declare"
    r"|correction\s+declares|declares\s+any",
    re.IGNORECASE,
)
LABEL = re.compile(r"\bdeclar(?:ed|ation)\b", re.IGNORECASE)
BEFORE = re.compile(  # an assertion that something came before the data
    r"\b(?:declared|fixed|committed|chosen|set|written(?: down)?|registered|pre-?specified)\b"
    r"[^.;]{0,60}?\bbefore\s+(?:the\s+|this\s+|its\s+|any\s+|each\s+|every\s+|a\s+)?(?:first\s+)?"
    r"(?:data|runs?|results?|experiments?)\b"
    r"|\bnot\s+(?:picked|chosen|selected)\s+after\s+(?:the\s+)?(?:fact|data|results?)",
    re.IGNORECASE,
)
DISOWNED = re.compile(  # explicitly negated, or labelled post hoc / a deviation
    r"post[\s-]hoc|\bdeviation|after\s+the\s+(?:data|results?|first\s+results)|chosen\s+after"
    r"|\b(?:not|never)\s+(?:\w+\s+){0,2}declared|undeclared|declared\s+`?[0-9a-f]{7,40}`?\s+changed",
    re.IGNORECASE,
)
RECORD_LINK = re.compile(r"reports/experiments/([\w.-]+)/")
SENTENCE_END = re.compile(r"(?<=[.!?])\**\s+(?=[A-Z*_`(\[])")


@dataclass
class Claim:
    where: str  # file:line
    sentence: str
    analysis: str
    value: object  # the analysis's fields as the sentence's context holds them
    commit: str | None  # the declaring commit: cited, or from params and git
    cited: bool
    date: str | None = None
    before_without_commit: bool = False
    post_hoc: bool = False  # the citing clause labels it post hoc: the citation need only be true
    record: str | None = None  # the experiment record the sentence reports
    problems: list[str] = field(default_factory=list)


def units(text: str):
    """(line, unit, label) for each sentence of the text: paragraphs and list items joined over
    their wrapped lines, table rows one cell at a time (label: the row's first cell)."""
    lines = text.splitlines()
    block: list[tuple[int, str]] = []

    def flush():
        if not block:
            return
        joined, starts = "", []
        for n, line in block:
            starts.append((len(joined), n))
            joined += line.strip() + " "
        pos = 0
        for part in SENTENCE_END.split(joined):
            start = joined.index(part, pos)
            pos = start + len(part)
            line = max(n for off, n in starts if off <= start)
            yield line, part.strip(), ""
        block.clear()

    for n, line in enumerate(lines, 1):
        s = line.strip()
        if s.startswith("|"):
            yield from flush()
            cells = [c.strip() for c in s.strip("|").split(" | ")]
            link = RECORD_LINK.search(s)
            for cell in cells:
                yield n, cell + (f" <{link.group(0)}>" if link else ""), cells[0]
        elif not s or s.startswith("#") or re.match(r"([-*+]|\d+\.)\s", s) or s.startswith("<!--"):
            yield from flush()
            if s:
                block.append((n, line))
        else:
            block.append((n, line))
    yield from flush()


def attribute(sentence: str, pos: int, label: str) -> str | None:
    """The analysis a declaration at `pos` speaks of: the name that covers it, else the nearest
    before it, else the nearest after it, else the table row's label."""
    found = [
        (m.start(), m.end(), key) for key, rx in KEYWORDS for m in re.finditer(rx, sentence, re.I)
    ]
    covering = [k for s, e, k in found if s <= pos < e]
    before = sorted((s, k) for s, e, k in found if e <= pos)
    after = sorted((s, k) for s, e, k in found if s > pos)
    if covering:
        return covering[0]
    if before:
        return before[-1][1]
    if after:
        return after[0][1]
    for key, rx in KEYWORDS:
        if re.search(rx, label, re.I):
            return key
    return None


@functools.cache
def record_info(name: str) -> tuple[str | None, dict]:
    """An experiment record's run commit and params (from the working tree)."""
    root = REPO / "reports" / "experiments" / name
    rec, params = root / "record.json", root / "params.yaml"
    commit = json.loads(rec.read_text())["commit"] if rec.exists() else None
    return commit, (yaml.safe_load(params.read_text()) if params.exists() else {})


@functools.cache
def current_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def claims_in(text: str, name: str, record: str | None = None) -> list[Claim]:
    """Every declaration a text makes, with the analysis, value and commit it speaks of. `record`:
    the experiment record the whole text reports (its report.md)."""
    out = []
    for line, sentence, label in units(text):
        if LABEL.search(sentence) or BEFORE.search(sentence) or CITED.search(sentence):
            rec = record
            if rec is None and (m := RECORD_LINK.search(sentence)):
                rec = m.group(1)  # a table row that reports a record
            out += sentence_claims(f"{name}:{line}", sentence, label, rec)
    return out


def new_claim(where, sentence, plain, rec, key, pos, commit, cited, date=None) -> Claim:
    """A declaration of `key` at `pos`: the value from the sentence (a teaching comparison's
    two arms) or from the params of its context; the commit cited, or else from params and git."""
    params = record_info(rec)[1] if rec else current_params()
    value = value_in(params, key)
    if key == TEACHING:
        pairs = sorted(PAIR.finditer(plain), key=lambda p: abs(p.start() - pos))
        value = frozenset(pairs[0].groups()) if pairs else value
    if not cited:
        commit = (
            declaring_commit(key, params)
            if value == value_in(params, key)
            else first_declaring_commit(key, freeze(value))
        )
    return Claim(where, sentence, key, value, commit, cited, date, record=rec)


def sentence_claims(where: str, sentence: str, label: str, rec: str | None) -> list[Claim]:
    """A sentence's declarations: each commit it cites as declaring an analysis; unless it is
    negated or labelled post hoc or a deviation, each analysis it calls declared; and each
    analysis it says was fixed before the data without citing a commit for it."""
    plain = STATISTICAL.sub(lambda m: " " * len(m.group(0)), sentence)
    out: list[Claim] = []
    cited_spans = []
    for m in CITED.finditer(plain):
        cited_spans.append((m.start(), m.end()))
        key = attribute(plain, m.start(), label)
        if key is None:
            c = Claim(where, sentence, "?", None, full(m.group(1)), True, m.group(2))
            c.problems.append(f"cites {m.group(1)} as a declaring commit, of no analysis it names")
        else:
            c = new_claim(
                where, sentence, plain, rec, key, m.start(), full(m.group(1)), True, m.group(2)
            )
            if c.commit is None:
                c.problems.append(f"cites {m.group(1)}, which is no commit git has")
            start = plain.rfind(";", 0, m.start()) + 1
            end = plain.find(";", m.end())
            c.post_hoc = DISOWNED.search(plain[start : end if end >= 0 else None]) is not None
        out.append(c)
    if DISOWNED.search(plain):
        return out
    for m in LABEL.finditer(plain):
        key = attribute(plain, m.start(), label)
        inside = any(s <= m.start() < e for s, e in cited_spans)
        if key is not None and not inside and all(c.analysis != key for c in out):
            out.append(new_claim(where, sentence, plain, rec, key, m.start(), None, False))
    for m in BEFORE.finditer(plain):
        key = attribute(plain, m.start(), label)
        if key is None:
            continue  # a definition, or a rule about no analysis in particular
        hits = [c for c in out if c.analysis == key]
        if not any(c.cited for c in hits):
            if not hits:
                hits = [new_claim(where, sentence, plain, rec, key, m.start(), None, False)]
                out += hits
            hits[0].before_without_commit = True
    return out


def check(c: Claim) -> list[str]:
    """What is wrong with one declaration."""
    problems = list(c.problems)
    if c.analysis == "?" or (c.cited and c.commit is None):
        return problems
    shown = sorted(c.value) if isinstance(c.value, frozenset) else c.value
    name = f"{c.analysis} = {json.dumps(shown)}" if c.analysis in (TEACHING, CLOSE) else c.analysis
    if c.before_without_commit:
        problems.append(
            f"says {c.analysis} was fixed before the data/run but cites no declaring commit"
        )
    if c.commit is None:
        problems.append(f"calls {name} declared, but no commit's params.yaml ever declared it")
        return problems
    short = c.commit[:7]
    if c.cited and c.date and commit_date(c.commit) != c.date:
        problems.append(f"dates {short} {c.date}; git dates it {commit_date(c.commit)}")
    held = value_in(params_at(c.commit), c.analysis) if c.cited else None
    if c.cited and held is None:
        problems.append(f"cites {short}, whose params.yaml holds no {c.analysis}")
    elif c.cited and c.analysis in (TEACHING, CLOSE) and held != c.value:
        problems.append(f"cites {short}, whose params.yaml declares another {c.analysis}")
    if c.post_hoc:
        return problems
    for results in results_commits(c.analysis, freeze(c.value)):
        if not strictly_before(c.commit, results):
            problems.append(
                f"{name} declared in {short}, not before its first committed results ({results[:7]})"
            )
            break
    if c.record:
        run = record_info(c.record)[0]
        if run and not is_ancestor(c.commit, run):
            problems.append(f"declared in {short}, after record {c.record}'s run ({run[:7]})")
    return problems


def texts() -> list[Path]:
    return sorted({p for pattern in TEXTS for p in REPO.glob(pattern)})


def text_claims(path: Path) -> list[Claim]:
    rel = path.relative_to(REPO)
    record = rel.parts[2] if rel.parts[:2] == ("reports", "experiments") else None
    return claims_in(path.read_text(encoding="utf-8"), str(rel), record)


# ---------------------------------------------------------------------------------------------
# Tests


def primary_fields(a: dict) -> dict:
    p = a["primary"]
    return {k: p[k] for k in ("comparisons", "endpoints", "margin_sd", "power")} | {
        "alpha": a["alpha"]}  # fmt: skip


def confirmatory_fields(a: dict) -> dict:
    return {k: v for k, v in a["confirmatory"].items() if k != "declared"}


def test_each_declaration_is_what_its_commit_declared():
    """params' `declared.digest` is the sha256 of the fields as the declaring commit held
    them, and its date is that commit's."""
    now = yaml.safe_load((REPO / "params.yaml").read_text())["ab"]["analysis"]
    checked = 0
    for key, fields_of in (("primary", primary_fields), ("confirmatory", confirmatory_fields)):
        declared = (now.get(key) or {}).get("declared")
        if not declared:
            continue
        assert claim_digest(fields_of(analysis_at(declared["commit"]))) == declared["digest"], key
        assert commit_date(declared["commit"]) == declared["date"], key
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize("key", [PRIMARY, CONFIRMATORY])
def test_params_declarations_come_before_the_first_results(key):
    """The commit params name for each declared ab analysis is strictly before the first
    committed results of it, and before every record that reports them."""
    params = current_params()
    if not (lookup(params, key) or {}).get("declared"):
        pytest.skip(f"params declare no {key}")
    commit = declaring_commit(key, params)
    value = value_in(params, key)
    first = first_results(key, value)
    assert first is not None, f"no committed results of {key}"
    assert strictly_before(commit, first), (key, commit, first)
    for rec in sorted((REPO / "reports" / "experiments").glob("*/record.json")):
        run, rec_params = record_info(rec.parent.name)
        if (lookup(rec_params, key) or {}).get("declared"):
            assert is_ancestor(declaring_commit(key, rec_params), run), (key, rec.parent.name)


def test_the_first_results_are_read_from_git():
    """The facts the planted claims below rest on, derived from git: the seeding primary claim's
    first results (the ab.primary section of reports/metrics.json) at 16008cf; ce_kl against
    ce_multisample compared in the results long before 9ed8369 put it in params."""
    assert first_results(PRIMARY, value_in(current_params(), PRIMARY)) == full("16008cf")
    assert first_declaring_commit(TEACHING, freeze(frozenset(["ce_kl", "ce_multisample"]))) == full(
        "9ed8369"
    )
    teaching = first_results(TEACHING, frozenset(["ce_kl", "ce_multisample"]))
    assert teaching is not None and strictly_before(teaching, "9ed8369")


def flagged(text: str, record: str | None = None) -> list[str]:
    return [p for c in claims_in(text, "planted.md", record) for p in check(c)]


def test_a_planted_false_declaration_is_flagged():
    """A text that dates the seeding primary claim's declaration to 9ed8369 (after its first
    results at 16008cf) fails; the true commit, 666a592, passes."""
    false = (
        "The primary claim was declared in commit 9ed8369 (2026-12-07), before this run: pool vs "
        "PRNG randomness is equivalent on every endpoint."
    )
    assert any("not before its first committed results (16008cf)" in p for p in flagged(false))
    assert not flagged(false.replace("9ed8369", "666a592"))
    # a commit that never declared it, or one git does not have
    assert any(
        "holds no ab.analysis.primary" in p for p in flagged(false.replace("9ed8369", "34a03ed"))
    )
    assert flagged(false.replace("9ed8369", "abcdef1"))
    # a post hoc label elsewhere in the sentence does not excuse the clause that cites the commit
    assert flagged(false.replace("endpoint.", "endpoint; its deviation is labelled."))
    # the honest wording: the commit that fixed it, after earlier results, labelled post hoc
    assert not flagged(
        "The teaching comparison (`evaluate.primary`: ce_kl against ce_multisample) was fixed in "
        "9ed8369, after earlier runs had reported both variants: post hoc."
    )


def test_a_record_run_before_its_declaration_is_flagged(monkeypatch):
    """In a record, the declaring commit must also be an ancestor of the record's run: a record
    run at the pilot (bc3bed4) cannot report the claim 666a592 declared as declared before it."""
    real = record_info
    monkeypatch.setattr(
        sys.modules[__name__], "record_info", lambda name: ("bc3bed4", real("smollm2-seeding")[1])
    )
    text = "The primary claim was declared in commit 666a592 (2026-12-07), before this run."
    assert any("after record planted's run (bc3bed4)" in p for p in flagged(text, "planted"))


def test_planted_declarations_without_a_commit():
    """ "Before the data" with no commit about a named analysis fails, as does calling a
    comparison declared that params declared only after its first results; a negated or post
    hoc sentence, or a definition naming no analysis, does not."""
    assert flagged("The seeding study's primary claim was fixed before the data.")
    assert flagged(
        "The declared teaching comparison (`evaluate.primary`: ce_kl against ce_multisample)."
    )
    assert flagged("The declared comparison, ce_kl minus base, favours ce_kl.")
    assert not flagged(
        "The primary claim's new endpoints were not declared before the data (post hoc)."
    )
    assert not flagged("The primary claim, deviation `x`: chosen after the data, commit 5c02df9.")
    assert flagged(
        "The share within 0.1 (`evaluate.close_tvd`, declared before the runs it reports)."
    )
    assert not flagged("*Declared*: the analysis was fixed in the named commit before the run.")
    assert not flagged("No secondary comparison declares a difference.")


@pytest.mark.parametrize("path", texts(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_text_calls_an_analysis_declared_after_its_results(path):
    """Every sentence that calls an analysis declared, or says it was fixed before the data,
    names (or params and git give) a declaring commit strictly before the analysis's first
    committed results, and before the run of the record it reports; a "before the data" cites
    that commit."""
    rel = path.relative_to(REPO)
    corrected = errata(path.parent) if rel.parts[:2] == ("reports", "experiments") else []
    failures = [
        f"{c.where}: {p}\n    {c.sentence[:240]}"
        for c in text_claims(path)
        if not any(q in c.sentence for q in corrected)
        for p in check(c)
    ]
    assert not failures, "\n".join(failures)


def test_an_erratum_excuses_only_the_phrase_it_quotes(tmp_path):
    """A record's report.md never changes (its lock holds its hash): a wrong "declared" in it
    is corrected by its errata.md, which quotes the phrase; the same sentence elsewhere, or a
    record without the erratum, is still flagged."""
    sentence = ("Declared comparison, ce_kl minus ce_multisample, exact full-space TVD per "
                "prompt: validation -0.1 [-0.2, -0.05] (Holm p 0.01: lower).")  # fmt: skip
    assert flagged(sentence, "kjv-small-teaching")
    (tmp_path / "report.md").write_text(sentence + "\n")
    (tmp_path / "errata.md").write_text(
        '- "Declared comparison, ce_kl minus ce_multisample": fixed in 9ed8369, post hoc.\n'
    )
    assert errata(tmp_path) == ["Declared comparison, ce_kl minus ce_multisample"]
    quoted = errata(tmp_path)
    assert all(
        any(q in c.sentence for q in quoted) for c in claims_in(sentence, "r", "kjv-small-teaching")
    )
    (tmp_path / "errata.md").write_text('- "Declared comparison, soft_trie": no.\n')
    assert not any(q in sentence for q in errata(tmp_path))


def test_a_run_that_changes_a_declared_field_is_post_hoc():
    """The report's words come from the digest: change the margin (as `dvc exp run -S` would)
    and the claim is post hoc."""
    from entropy_lab.report.numbers import profile

    data = yaml.safe_load((REPO / "params.yaml").read_text())
    declared = profile(parse_params(data))["ab"]["primary"]["declared"]
    assert declared["as_declared"]
    data["ab"]["analysis"]["primary"]["margin_sd"] = 0.15
    changed = profile(parse_params(data))["ab"]["primary"]["declared"]
    assert not changed["as_declared"]
