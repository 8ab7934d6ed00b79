"""Every family: exact targets that sum to 1 and match independent checks, strict parsers,
and draws that pass a goodness-of-fit test (while a wrong target fails it)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from entropy_lab.config import parse_params
from entropy_lab.tasks.base import Target
from entropy_lab.tasks.families import FAMILIES, instantiate


@pytest.fixture(scope="module")
def families():
    import yaml

    from tests.conftest import REPO

    return instantiate(parse_params(yaml.safe_load((REPO / "params.yaml").read_text())).tasks)


def instances(family, n=25, seed=0):
    rng = np.random.default_rng(seed)
    return [family.instance(rng) for _ in range(n)]


def test_every_family_is_configured_in_params(families):
    assert set(families) == set(FAMILIES)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_targets_sum_to_one(families, name):
    fam = families[name]
    for inst in instances(fam):
        t = fam.target(inst)
        dists = [t.probs] if t.support else [m.probs for m in t.marginals]
        assert dists and all(len(d) for d in dists)
        for probs in dists:
            assert all(p >= 0 for p in probs)
            if all(isinstance(p, Fraction) for p in probs):
                assert sum(probs) == 1  # exactly
            else:
                assert math.isclose(sum(float(p) for p in probs), 1.0, rel_tol=0, abs_tol=1e-12)
        assert len(set(t.support)) == len(t.support)


def test_3d6_matches_the_known_table(families):
    t = families["dice"].target({"n": 3, "sides": 6, "modifier": 0})
    ways = [1, 3, 6, 10, 15, 21, 25, 27, 27, 25, 21, 15, 10, 6, 3, 1]
    assert t.support == tuple(map(str, range(3, 19)))
    assert t.probs == tuple(Fraction(w, 216) for w in ways)


def test_2d6_plus_3_is_shifted(families):
    t = families["dice"].target({"n": 2, "sides": 6, "modifier": 3})
    assert t.as_dict()["10"] == Fraction(6, 36) and t.support[0] == "5" and t.support[-1] == "15"


def test_binomial_matches_scipy(families):
    t = families["binomial"].target({"n": 20, "p": "1/3"})
    assert np.allclose(
        [float(p) for p in t.probs], stats.binom.pmf(range(21), 20, 1 / 3), rtol=1e-12
    )
    assert all(isinstance(p, Fraction) for p in t.probs)


def test_poisson_matches_scipy(families):
    t = families["poisson"].target({"rate": 3.5})
    ks = np.array([int(s) for s in t.support])
    assert ks[0] == 0 and stats.poisson.sf(ks[-1], 3.5) < 1e-9
    assert np.allclose([float(p) for p in t.probs], stats.poisson.pmf(ks, 3.5), rtol=1e-8)


def test_geometric_matches_scipy(families):
    t = families["geometric"].target({"p": "1/4"})
    ks = np.array([int(s) for s in t.support])
    assert ks[0] == 1 and stats.geom.sf(ks[-1], 0.25) < 1e-9
    assert np.allclose([float(p) for p in t.probs], stats.geom.pmf(ks, 0.25), rtol=1e-8)


def test_normal_and_exponential_are_rounded_cdf_differences(families):
    t = families["normal"].target({"mean": 10.0, "sd": 2.0, "decimals": 0})
    d = t.as_dict()
    assert math.isclose(d["10"], stats.norm.cdf(0.25) - stats.norm.cdf(-0.25), rel_tol=1e-5)
    assert math.isclose(d["12"], stats.norm.cdf(1.25) - stats.norm.cdf(0.75), rel_tol=1e-5)
    e = families["exponential"].target({"mean": 2.0, "decimals": 0}).as_dict()
    assert math.isclose(e["0"], stats.expon.cdf(0.5, scale=2), rel_tol=1e-5)
    assert math.isclose(
        e["3"], stats.expon.cdf(3.5, scale=2) - stats.expon.cdf(2.5, scale=2), rel_tol=1e-5
    )


@pytest.mark.parametrize(
    ("name", "n", "k", "count"),
    [
        ("shuffle", 5, None, math.factorial(5)),
        ("k_of_n", 6, 2, math.comb(6, 2)),
        ("permutation", 5, 3, math.perm(5, 3)),
    ],
)
def test_combinatorial_support_sizes(families, name, n, k, count):
    inst = {"items": list("abcdef"[:n])} | ({"k": k} if k else {})
    t = families[name].target(inst)
    assert len(t.support) == count
    assert set(t.probs) == {Fraction(1, count)}


def test_password_marginals_match_brute_force(families):
    fam = families["password"]
    n = 3
    valid = [
        "".join(s)
        for s in itertools.product("abcdefghijklmnopqrstuvwxyz0123456789", repeat=n)
        if any(c.isdigit() for c in s)
    ]
    t = fam.target({"n": n})
    for pos, marginal in enumerate(t.marginals):
        counts = {c: 0 for c in marginal.values}
        for s in valid:
            counts[s[pos]] += 1
        assert marginal.probs == tuple(Fraction(counts[c], len(valid)) for c in marginal.values)


def test_lottery_marginals_match_brute_force(families):
    n, k = 9, 3
    combos = list(itertools.combinations(range(1, n + 1), k))
    t = families["lottery"].target({"n": n, "k": k})
    for j, marginal in enumerate(t.marginals):
        expected = tuple(
            Fraction(sum(c[j] == x for c in combos), len(combos)) for x in range(1, n + 1)
        )
        assert marginal.probs == expected


def test_uuid_marginals(families):
    t = families["uuid"].target({})
    assert len(t.marginals) == 32
    assert t.marginals[12].probs[4] == 1
    assert [t.marginals[16].probs[int(h, 16)] for h in "89ab"] == [Fraction(1, 4)] * 4


# --- parsers -------------------------------------------------------------------------------

OUT_OF_SUPPORT = {
    "integer_range": ["-1000", "1.5", "seven", "", "3 4"],
    "list_item": ["banana-split", "", "apple pear"],
    "weighted_choice": ["not-a-fruit", ""],
    "shuffle": ["", "apple"],
    "k_of_n": ["", "zzz, yyy"],
    "permutation": ["", "zzz, yyy"],
    "dice": ["-50", "999", "3d6", "four"],
    "coins": ["HX", "", "HHHHHHHHHHHH"],
    "cards": ["Joker", "Queen of Stars", ""],
    "spinner": ["purple-ish", ""],
    "binomial": ["-1", "999", "2.5"],
    "poisson": ["-1", "1e3", "many"],
    "geometric": ["0", "-3", "x"],
    "normal": ["1e9", "abc", "10.0.0"],
    "exponential": ["-1", "1e9", "x"],
    "deterministic": ["twenty", "", "1 2", "zucchini"],
    "password": ["", "ABCDEFGH", "abcdefgh!", "abcdefgh"],
    "uuid": ["not-a-uuid", "123e4567-e89b-12d3-a456-426614174000"],
    "lottery": ["1, 1, 2, 3, 4, 5", "0, 1, 2, 3, 4, 5", "", "1, 2"],
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_parser_accepts_support_and_rejects_the_rest(families, name):
    fam = families[name]
    rng = np.random.default_rng(1)
    for inst in instances(fam, n=10):
        t = fam.target(inst)
        canonical = t.support or tuple(fam.sample(inst, rng, 20))
        for answer in canonical:
            assert fam.parse(answer, inst) == answer
            assert fam.parse(f"  {answer}\n", inst) == answer
        for bad in OUT_OF_SUPPORT[name]:
            assert fam.parse(bad, inst) is None, (inst, bad)


def test_parsers_canonicalise_harmless_variants(families):
    assert families["cards"].parse("queen of hearts.", {"deck": "full"}) == "Queen of Hearts"
    assert families["k_of_n"].parse("c, a", {"items": ["a", "b", "c"], "k": 2}) == "a, c"
    assert families["permutation"].parse("c, a", {"items": ["a", "b", "c"], "k": 2}) == "c, a"
    assert families["lottery"].parse("5,3, 1", {"n": 9, "k": 3}) == "1, 3, 5"
    assert families["coins"].parse("h t h", {"n": 3, "p": "1/2"}) == "HTH"
    assert families["normal"].parse("-0", {"mean": 0.0, "sd": 1.0, "decimals": 0}) == "0"


# --- draws against the target --------------------------------------------------------------


def chi_square_p(observed: dict[str, int], target: Target) -> float:
    """Pearson chi-square against `target`, pooling cells with expected count < 5."""
    n = sum(observed.values())
    exp = np.array([float(p) * n for p in target.probs])
    obs = np.array([observed.get(s, 0) for s in target.support], dtype=float)
    assert sum(obs) == n, "a draw fell outside the support"
    order = np.argsort(exp)
    cells_o, cells_e, acc_o, acc_e = [], [], 0.0, 0.0
    for i in order:
        acc_o, acc_e = acc_o + obs[i], acc_e + exp[i]
        if acc_e >= 5:
            cells_o.append(acc_o)
            cells_e.append(acc_e)
            acc_o = acc_e = 0.0
    if acc_e and cells_e:
        cells_o[-1] += acc_o
        cells_e[-1] += acc_e
    if len(cells_e) < 2:
        return 1.0
    return float(stats.chisquare(cells_o, cells_e).pvalue)


def draw_p_values(fam, inst, draws: list[str], target: Target) -> list[float]:
    if target.support:
        counts: dict[str, int] = {}
        for d in draws:
            counts[d] = counts.get(d, 0) + 1
        return [chi_square_p(counts, target)]
    ps = []
    parts = [fam.positions(d, inst) for d in draws]
    for pos, m in enumerate(target.marginals):
        values = [p[pos] for p in parts]
        counts = {v: values.count(v) for v in set(values)}
        ps.append(chi_square_p(counts, Target(m.values, m.probs)))
    return ps


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_draws_fit_the_target_and_a_wrong_target_fails(families, name):
    fam = families[name]
    rng = np.random.default_rng(7)
    inst = instances(fam, n=1, seed=3)[0]
    target = fam.target(inst)
    draws = fam.sample(inst, rng, 4000)
    assert all(fam.parse(d, inst) == d for d in draws)
    ps = draw_p_values(fam, inst, draws, target)
    # Holm-style family-wise threshold over the positions tested.
    assert min(ps) > 1e-3 / len(ps), ps

    if name == "deterministic":
        return  # a point mass: every in-support draw is the answer, so no wrong target to fit
    wrong = skew(target)
    assert min(draw_p_values(fam, inst, draws, wrong)) < 1e-6


def skewed(probs) -> tuple[float, ...]:
    """Mass moved towards the first outcomes: weight 2 at the bottom quantile, 0.5 at the top."""
    p = np.array([float(x) for x in probs])
    w = p * (2.0 - 1.5 * (np.cumsum(p) - p / 2))
    return tuple(w / w.sum())


def skew(t: Target) -> Target:
    """A deliberately wrong distribution (on the first marginal, for marginal-only targets)."""
    if t.support:
        return Target(t.support, skewed(t.probs))
    m = t.marginals[0]
    return Target(marginals=(type(m)(m.label, m.values, skewed(m.probs)), *t.marginals[1:]))


def test_curriculum_covers_levels_one_to_four():
    levels = {cls.level for cls in FAMILIES.values()}
    assert levels == {1, 2, 3, 4}
    categories = {cls.category for cls in FAMILIES.values()}
    assert categories == {"basic", "combinatorial", "game", "statistical", "contextual"}
    assert all(len(cls.templates) >= 4 for cls in FAMILIES.values())


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_longest_answer_is_valid_and_bounds_every_draw(families, name):
    fam = families[name]
    rng = np.random.default_rng(5)
    for inst in instances(fam, n=5):
        longest = fam.longest_answer(inst)
        assert fam.parse(longest, inst) == longest
        target = fam.target(inst)
        for d in fam.sample(inst, rng, 50):
            assert len(d) <= len(longest)
            if target.marginals:
                values = fam.positions(d, inst)
                assert len(values) == len(target.marginals)
                assert all(v in m.values for v, m in zip(values, target.marginals, strict=True))
