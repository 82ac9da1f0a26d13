"""95% intervals (edgeq.bench.stats): coverage on synthetic data with known rates, published values,
degenerate cases, and the note that says a budget is inside the noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeq.bench import fidelity, stats
from edgeq.bench.stats import Interval


def _binom_pmf(i: int, n: int, p: float) -> float:
    return math.comb(n, i) * p**i * (1 - p) ** (n - i)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (97, 100, 0.9148, 0.9938),  # the textbook n=100, k=97 example
        (0, 10, 0.0, 0.3085),  # k=0: the upper bound is 1 - (alpha/2)**(1/n)
        (10, 10, 0.6915, 1.0),
        (0, 1, 0.0, 0.975),
        (1, 1, 0.025, 1.0),
        (5, 20, 0.0866, 0.4910),
    ],
)
def test_clopper_pearson_matches_published_values(k, n, low, high):
    lo, hi = stats.clopper_pearson(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_clopper_pearson_bounds_invert_the_binomial_tail():
    k, n = 37, 120
    lo, hi = stats.clopper_pearson(k, n)
    assert sum(_binom_pmf(i, n, lo) for i in range(k, n + 1)) == pytest.approx(0.025, abs=1e-9)
    assert sum(_binom_pmf(i, n, hi) for i in range(k + 1)) == pytest.approx(0.025, abs=1e-9)
    assert stats.clopper_pearson(0, n)[1] == pytest.approx(1 - 0.025 ** (1 / n), abs=1e-12)


@pytest.mark.parametrize("p", [0.5, 0.9, 0.97])
def test_clopper_pearson_exact_coverage_is_at_least_95_percent(p):
    # the coverage at a known rate, summed exactly over every outcome: the exact interval never undercovers
    n = 60
    bounds = [stats.clopper_pearson(k, n) for k in range(n + 1)]
    coverage = sum(_binom_pmf(k, n, p) for k, (lo, hi) in enumerate(bounds) if lo <= p <= hi)
    assert 0.95 <= coverage < 0.995


def test_agreement_interval_covers_the_true_rate_in_random_trials():
    rng = np.random.default_rng(7)
    n, p, trials = 100, 0.93, 1000
    cache: dict[int, tuple[float, float]] = {}
    hits = 0
    for _ in range(trials):
        agree = rng.random(n) < p
        k = int(agree.sum())
        if k not in cache:
            iv = stats.agreement_interval(agree)
            assert iv.estimate == k / n and iv.n == n
            cache[k] = (iv.low, iv.high)
        hits += cache[k][0] <= p <= cache[k][1]
    assert 0.94 <= hits / trials <= 0.995  # conservative by construction; 0.94 leaves room for the draw


@pytest.mark.parametrize(
    ("table", "estimate", "low", "high"),
    [
        # Cavo et al. (2012), complete response before/after consolidation therapy, the worked example of the
        # Newcombe square-and-add (hybrid score) interval in Fagerland, Lydersen & Laake, "Statistical Analysis
        # of Contingency Tables" (2017), chapter 8; the same figures are asserted by the book's R package
        # contingencytables (tests: "estimate = -0.0621 (95% CI -0.1186 to -0.0046)").
        ((59, 6, 16, 80), -0.0621, -0.1186, -0.0046),
    ],
)
def test_paired_difference_matches_published_values(table, estimate, low, high):
    e, lo, hi = stats.paired_difference(*table)
    assert e == pytest.approx(estimate, abs=1e-4)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_matches_published_values():
    # Newcombe (1998, single proportion, method 3): 81/263 -> 0.2553..0.3662; 0/10 -> 0..0.2775; 1/29 -> 0.0061..0.1718
    for (k, n), (low, high) in {(81, 263): (0.2553, 0.3662), (0, 10): (0.0, 0.2775), (1, 29): (0.0061, 0.1718)}.items():
        lo, hi = stats.wilson(k, n)
        assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def _paired_pmf(n: int, probs: tuple[float, float, float, float]):
    """Every paired 2x2 table of n samples with its multinomial probability."""
    for e in range(n + 1):
        for f in range(n + 1 - e):
            for g in range(n + 1 - e - f):
                h = n - e - f - g
                coef = math.factorial(n) // (
                    math.factorial(e) * math.factorial(f) * math.factorial(g) * math.factorial(h)
                )
                yield (e, f, g, h), coef * probs[0] ** e * probs[1] ** f * probs[2] ** g * probs[3] ** h


@pytest.mark.parametrize("n", [3, 10, 30])
def test_drop_interval_coverage_is_near_nominal_for_small_n(n):
    # the coverage at a known drop, summed exactly over every table: a paired score interval keeps close to 95%
    # where a bootstrap of a few samples collapses (0% coverage of any nonzero drop from identical predictions)
    probs = (0.80, 0.08, 0.02, 0.10)  # both right, float only, int8 only, neither: a true drop of 6 points
    true = probs[1] - probs[2]
    coverage = 0.0
    for (e, f, g, h), p in _paired_pmf(n, probs):
        _, lo, hi = stats.paired_difference(e, f, g, h)
        coverage += p * (lo <= true <= hi)
    assert coverage >= 0.93


@pytest.mark.parametrize("n", [1, 2, 3])
def test_drop_interval_of_a_handful_of_samples_is_never_zero_width(n):
    # issue 19, defect 7: the bootstrap gave [0.00, 0.00] on 1, 2 or 3 samples whose predictions agree
    same = np.ones(n, dtype=bool)
    iv = stats.drop_interval(same, same)
    assert iv.estimate == 0 and iv.low < -50 and iv.high > 50
    assert not iv.judgeable and iv.to_dict()["judgeable"] is False
    note = stats.noise_note(iv, 1.0)
    assert note is not None and f"{n} samples" in note and f"{stats.MIN_SAMPLES} needed" in note


def test_drop_interval_is_paired_and_counts_only_changed_samples():
    ref_ok = np.array([True] * 90 + [False] * 10)
    iv = stats.drop_interval(ref_ok, ref_ok.copy())
    # identical predictions on 100 samples do not prove a discordance rate of 0: no zero-width interval
    assert iv.estimate == 0.0 and -5 < iv.low < 0 < iv.high < 5 and iv.judgeable
    test_ok = ref_ok.copy()
    test_ok[:2] = False  # two samples lost, one gained
    test_ok[95] = True
    iv = stats.drop_interval(ref_ok, test_ok)
    assert iv.estimate == pytest.approx(1.0) and iv.low < 0 < 1.0 < iv.high and iv.n == 100
    # unpaired, 90% against 89% on 100 samples would span about +-8 points; paired, 3 changed samples are all
    assert iv.high - iv.low < 11
    assert "Newcombe" in iv.method
    assert stats.drop_interval(ref_ok, test_ok) == iv


def test_too_few():
    assert stats.too_few(stats.MIN_SAMPLES) is None
    msg = stats.too_few(3)
    assert msg is not None and "only 3 evaluation samples" in msg and f"the {stats.MIN_SAMPLES} needed" in msg


def test_compare_warns_below_the_minimum_sample_count():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(3, 10))
    r = fidelity.compare(ref, ref + 0.01, ref.argmax(-1))
    assert r["judgeable"] is False and any("only 3 evaluation samples" in w for w in r["warnings"])
    assert r["intervals"]["sqnr_db"]["judgeable"] is False  # the SQNR bootstrap of 3 samples is flagged too
    big = rng.normal(size=(stats.MIN_SAMPLES, 10))
    r = fidelity.compare(big, big + 0.01, big.argmax(-1))
    assert r["judgeable"] is True and not any("evaluation samples" in w for w in r["warnings"])


def test_degenerate_samples():
    iv = stats.drop_interval([True], [False])
    assert iv.estimate == 100.0 and iv.low < 50 and iv.high == 100.0 and iv.n == 1
    iv = stats.agreement_interval([False])
    assert (iv.estimate, iv.low) == (0.0, 0.0) and iv.high == pytest.approx(0.975)
    iv = stats.agreement_interval([True] * 50)
    assert iv.high == 1.0 and iv.low == pytest.approx(0.025 ** (1 / 50))
    with pytest.raises(ValueError, match="non-empty"):
        stats.drop_interval([], [])
    with pytest.raises(ValueError, match="the samples must be the same"):
        stats.drop_interval([True, False], [True])


def test_sqnr_interval():
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(400, 10))
    test = ref + 0.05 * rng.normal(size=ref.shape)
    iv = stats.sqnr_interval(ref, test)
    assert iv.estimate == pytest.approx(fidelity.sqnr_db(ref, test))
    assert iv.low < iv.estimate < iv.high and iv.high - iv.low < 1.0 and iv.n == 400
    # ten times the samples: an interval about sqrt(10) narrower
    big = rng.normal(size=(4000, 10))
    wide, narrow = iv.high - iv.low, stats.sqnr_interval(big, big + 0.05 * rng.normal(size=big.shape))
    assert 2.0 < wide / (narrow.high - narrow.low) < 5.0
    assert stats.sqnr_interval(ref, ref) is None  # no noise: infinite SQNR, no interval
    few = ref.copy()
    few[:2] += 0.1  # noise in 2 of 400 samples: many resamples draw neither, an infinite SQNR
    iv = stats.sqnr_interval(few, ref)
    assert math.isfinite(iv.low) and iv.low <= iv.estimate and iv.high == math.inf


def test_noise_note():
    wide = Interval("accuracy_drop_points", 0.5, -0.8, 1.6, 100, 0.95, "paired bootstrap")
    note = stats.noise_note(wide, 1.0)
    assert note == (
        "the 95% interval of the accuracy drop (-0.80..+1.60 points on 100 samples) spans the 1.0-point budget:"
        " the evaluation set cannot tell whether the budget is met"
    )
    assert "includes 0" in stats.noise_note(wide, 0.0)
    assert stats.noise_note(wide, 2.0) is None  # the whole interval meets the budget
    assert stats.noise_note(Interval("accuracy_drop_points", 3.0, 2.1, 4.0, 100, 0.95, "-"), 1.0) is None  # misses it
    assert stats.noise_note(Interval("accuracy_drop_points", 0.0, 0.0, 0.0, 100, 0.95, "-"), 0.0) is None
    sqnr = Interval("sqnr_db", 25.0, 24.2, 25.9, 100, 0.95, "bootstrap")
    assert "spans the 25.5 dB floor" in stats.noise_note(sqnr, 25.5)
    assert stats.noise_note(sqnr, 24.0) is None


def test_interval_round_trips_and_validates():
    iv = stats.agreement_interval([True] * 97 + [False] * 3)
    assert Interval.from_dict(iv.to_dict()).to_dict() == iv.to_dict()
    assert iv.text() == "91.48-99.38%" and iv.text(unit=False) == "91.48-99.38"
    with pytest.raises(ValueError, match="outside its interval"):
        Interval("agreement", 0.5, 0.6, 0.9, 10, 0.95, "-")
    with pytest.raises(ValueError, match="confidence"):
        stats.clopper_pearson(1, 2, confidence=95)


def test_compare_carries_the_intervals():
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(200, 10))
    test = ref + 0.3 * rng.normal(size=ref.shape)
    labels = ref.argmax(-1)
    labels[:20] = (labels[:20] + 1) % 10
    iv = fidelity.compare(ref, test, labels)["intervals"]
    drop = iv["accuracy_drop_points"]
    assert drop["low"] <= drop["estimate"] <= drop["high"] and drop["n"] == 200
    agree = iv["agreement"]
    assert agree["estimate"] == pytest.approx(fidelity.compare(ref, test, None)["agreement"])
    assert iv["sqnr_db"]["low"] < iv["sqnr_db"]["estimate"] < iv["sqnr_db"]["high"]
    unlabeled = fidelity.compare(ref, test, None)["intervals"]
    assert unlabeled["accuracy_drop_points"] is None and unlabeled["agreement"] is not None
    single = fidelity.compare(ref[:, :1], test[:, :1], None)["intervals"]  # one output: no classes to agree on
    assert single["agreement"] is None and single["sqnr_db"] is not None


def test_sqnr_gain_interval_is_paired():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(200, 8))
    base = ref + rng.normal(scale=0.1, size=ref.shape)
    better = ref + (base - ref) * 0.5  # half the error on every sample: +6.02 dB exactly
    g = stats.sqnr_gain_interval(ref, better, base)
    assert g.what == "sqnr_gain_db" and abs(g.estimate - 6.0206) < 1e-3
    assert g.high - g.low < 1e-6  # the same gain on every resample: pairing removes the noise
    same = stats.sqnr_gain_interval(ref, base, base)
    assert same.estimate == 0 and same.low == same.high == 0
    other = ref + rng.normal(scale=0.1, size=ref.shape)  # as good, independent errors: the interval spans 0
    g = stats.sqnr_gain_interval(ref, other, base)
    assert g.low < 0 < g.high and "dB" in g.text()
