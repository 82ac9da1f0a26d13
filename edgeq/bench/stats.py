"""95% intervals for a quantized model's fidelity, paired over the same evaluation samples.

Pure numpy. On 100 or 2,000 samples, one point of accuracy is often inside the noise; these intervals
say how far a measured accuracy drop, agreement or SQNR can be trusted, and :func:`noise_note` says
plainly when the evaluation set cannot tell whether a budget is met.

- accuracy drop: Newcombe's hybrid score interval for a difference of paired proportions (Newcombe
  1998, "Improved confidence intervals for the difference between binomial proportions based on
  paired data", Stat Med 17:2635-2650, method 10): the Wilson score intervals of the float and the
  int8 accuracy, combined with the phi correlation of the paired 2x2 table. Unlike a bootstrap, it
  stays honest on a handful of samples: a bootstrap of 3 samples whose predictions agree is [0, 0],
  while 3 samples cannot rule out a drop of many points, and this interval says so.
- agreement: exact Clopper-Pearson binomial interval, the binomial CDF inverted by bisection.
- SQNR: bootstrap over samples, each sample's signal and noise power resampled together.

Bootstraps use a fixed seed, so the same outputs always give the same interval. Below
:data:`MIN_SAMPLES` samples no figure is judged: :func:`too_few` says so, the evaluation warns, and
the planner never calls a budget met.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

CONFIDENCE = 0.95
# Fewer evaluation samples than this and the figures cannot be judged: a bootstrap of a few samples
# draws the same few values again (an SQNR interval of zero width), and a budget of a point or two is
# far inside the noise of any interval. 30 is the usual floor of the normal approximations involved.
MIN_SAMPLES = 30
RESAMPLES = 2000
SEED = 0
_CHUNK_ELEMENTS = 2_000_000  # resampled indices held at once by the SQNR bootstrap (~16 MB)
_NAMES = {
    "accuracy_drop_points": "accuracy drop",
    "agreement": "agreement",
    "sqnr_db": "SQNR",
    "sqnr_gain_db": "SQNR gain",
}


@dataclass(frozen=True)
class Interval:
    """A measured value and its interval over ``n`` samples.

    ``what`` is ``accuracy_drop_points`` (float top-1 minus int8 top-1, in points), ``agreement``
    (a fraction 0..1) or ``sqnr_db``; ``method`` says how the interval was made.
    """

    what: str
    estimate: float
    low: float
    high: float
    n: int
    confidence: float
    method: str

    def __post_init__(self) -> None:
        if self.what not in _NAMES:
            raise ValueError(f"unknown interval kind {self.what!r}; one of {', '.join(_NAMES)}")
        if self.n < 1:
            raise ValueError("an interval needs at least one sample")
        if not self.low <= self.estimate <= self.high:
            raise ValueError(f"estimate {self.estimate} outside its interval {self.low}..{self.high}")

    @property
    def judgeable(self) -> bool:
        """Whether there are enough samples (:data:`MIN_SAMPLES`) to judge a budget on this interval."""
        return self.n >= MIN_SAMPLES

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("estimate", "low", "high"):
            d[k] = round(d[k], 6)
        d["judgeable"] = self.judgeable
        return d

    @classmethod
    def percentile(
        cls, what: str, estimate: float, low: float, high: float, n: int, confidence: float, method: str
    ) -> Interval:
        """A percentile-bootstrap interval, widened to hold its estimate (resamples can all fall on one side)."""
        return cls(what, estimate, min(float(low), estimate), max(float(high), estimate), n, confidence, method)

    @classmethod
    def from_dict(cls, d: dict) -> Interval:
        return cls(**{k: d[k] for k in ("what", "estimate", "low", "high", "n", "confidence", "method")})

    def text(self, unit: bool = True) -> str:
        """The bounds for people: ``-0.60..+1.70 points``, ``91.48-99.38%``, ``24.10..26.30 dB`` (no unit if asked)."""
        if self.what == "agreement":
            bounds, suffix = f"{100 * self.low:.2f}-{100 * self.high:.2f}", "%"
        elif self.what == "accuracy_drop_points":
            bounds, suffix = f"{self.low:+.2f}..{self.high:+.2f}", " points"
        elif self.what == "sqnr_gain_db":
            bounds, suffix = f"{self.low:+.2f}..{self.high:+.2f}", " dB"
        else:
            bounds, suffix = f"{self.low:.2f}..{self.high:.2f}", " dB"
        return bounds + (suffix if unit else "")


def _alpha(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence} is not between 0 and 1")
    return 1 - confidence


def _as_bool(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, one entry per sample")
    return arr.astype(bool)


def _percentiles(values: np.ndarray, alpha: float) -> tuple[float, float]:
    """The bootstrap's percentile bounds, each rounded outward to a resampled value: no interpolation,
    which would give NaN between two infinite SQNRs (resamples that drew only noiseless samples)."""
    low = np.quantile(values, alpha / 2, method="lower")
    high = np.quantile(values, 1 - alpha / 2, method="higher")
    return float(low), float(high)


def _z(confidence: float) -> float:
    """The two-sided standard normal quantile for ``confidence`` (1.959964 for 95%), by bisection on erfc."""
    alpha = _alpha(confidence)
    lo, hi = 0.0, 40.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if math.erfc(mid / math.sqrt(2)) > alpha:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def wilson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion: ``k`` successes in ``n`` trials (never zero width)."""
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    z = _z(confidence)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # the exact ends: at k = 0 (k = n) the lower (upper) bound is 0 (1), not a rounding error away
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def paired_difference(
    both: int, first_only: int, second_only: int, neither: int, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """Newcombe's hybrid score interval (1998, method 10) for p1 - p2 of paired proportions.

    The paired 2x2 table: ``both`` (e: a success in both), ``first_only`` (f), ``second_only`` (g),
    ``neither`` (h); p1 = (e + f) / n, p2 = (e + g) / n.

    Returns:
        (estimate, low, high), all in -1..1.
    """
    e, f, g, h = both, first_only, second_only, neither
    n = e + f + g + h
    if min(e, f, g, h) < 0 or n < 1:
        raise ValueError(f"a paired table needs counts >= 0 and n >= 1, got {e}, {f}, {g}, {h}")
    p1, p2 = (e + f) / n, (e + g) / n
    l1, u1 = wilson(e + f, n, confidence)
    l2, u2 = wilson(e + g, n, confidence)
    marginals = (e + f) * (g + h) * (e + g) * (f + h)
    phi = 0.0
    if marginals > 0:
        # Newcombe's phi: a positive association is reduced by n/2 (and a small one taken as none)
        a = float(e * h - f * g)
        a = a - n / 2 if a > n / 2 else (0.0 if a >= 0 else a)
        phi = a / math.sqrt(marginals)
    d1, d2 = p1 - l1, u2 - p2
    low = (p1 - p2) - math.sqrt(max(0.0, d1 * d1 - 2 * phi * d1 * d2 + d2 * d2))
    d3, d4 = p2 - l2, u1 - p1
    high = (p1 - p2) + math.sqrt(max(0.0, d3 * d3 - 2 * phi * d3 * d4 + d4 * d4))
    return p1 - p2, max(-1.0, low), min(1.0, high)


def drop_interval(reference_correct, quantized_correct, confidence: float = CONFIDENCE) -> Interval:
    """Accuracy drop in points (float top-1 minus int8 top-1) with its paired score interval
    (:func:`paired_difference`: Newcombe 1998, method 10).

    Args:
        reference_correct: per sample, whether the float model's top-1 is right.
        quantized_correct: per sample, whether the int8 model's top-1 is right (same samples, same order).
    """
    _alpha(confidence)
    ref = _as_bool(reference_correct, "reference_correct")
    test = _as_bool(quantized_correct, "quantized_correct")
    if ref.shape != test.shape:
        raise ValueError(f"{ref.size} reference and {test.size} quantized results: the samples must be the same")
    both, lost = int(np.sum(ref & test)), int(np.sum(ref & ~test))  # lost: float right, int8 wrong
    gained, neither = int(np.sum(~ref & test)), int(np.sum(~ref & ~test))
    estimate, low, high = paired_difference(both, lost, gained, neither, confidence)
    return Interval(
        "accuracy_drop_points",
        100.0 * estimate,
        100.0 * low,
        100.0 * high,
        ref.size,
        confidence,
        "Newcombe hybrid score interval for paired proportions (1998, method 10)",
    )


def too_few(n: int, what: str = "evaluation samples") -> str | None:
    """A sentence when ``n`` samples are fewer than :data:`MIN_SAMPLES` (nothing can be judged on them), else None."""
    if n >= MIN_SAMPLES:
        return None
    return (
        f"only {n} {what}, fewer than the {MIN_SAMPLES} needed to judge the figures: accuracy, agreement and SQNR"
        f" and their intervals cannot tell whether the quantized model is good enough; give at least"
        f" {MIN_SAMPLES} samples"
    )


def _log_binom_pmf(n: int, p: float) -> np.ndarray:
    """log P(X = i) for i = 0..n, X ~ Binomial(n, p), 0 < p < 1."""
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))])
    i = np.arange(n + 1)
    return log_fact[n] - log_fact[i] - log_fact[n - i] + i * math.log(p) + (n - i) * math.log1p(-p)


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    logs = _log_binom_pmf(n, p)
    head, tail = logs[: k + 1], logs[k + 1 :]
    # both sides scaled by the largest term: no underflow however far out k is
    top = max(head.max(), tail.max())
    h, t = np.exp(head - top).sum(), np.exp(tail - top).sum()
    return float(h / (h + t))


def _solve_decreasing(f, target: float, iterations: int = 60) -> float:
    """The p in [0, 1] where the decreasing function ``f`` crosses ``target``, by bisection."""
    lo, hi = 0.0, 1.0
    for _ in range(iterations):  # 2**-60: far below any printed digit
        mid = (lo + hi) / 2
        if f(mid) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval for a binomial proportion: ``k`` successes in ``n`` trials.

    The lower bound is the p at which P(X >= k) = alpha/2, the upper the p at which P(X <= k) = alpha/2;
    both are found by bisection on the binomial CDF (no beta quantile function needed).
    """
    alpha = _alpha(confidence)
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    # P(X >= k) = 1 - cdf(k - 1) grows with p; 1 - that is decreasing in p
    low = 0.0 if k == 0 else _solve_decreasing(lambda p: binom_cdf(k - 1, n, p), 1 - alpha / 2)
    high = 1.0 if k == n else _solve_decreasing(lambda p: binom_cdf(k, n, p), alpha / 2)
    return low, high


def agreement_interval(agree, confidence: float = CONFIDENCE) -> Interval:
    """Top-1 agreement (float and int8 predict the same class) with its exact binomial interval.

    Args:
        agree: per sample, whether the two models' top-1 classes are the same.
    """
    a = _as_bool(agree, "agree")
    k, n = int(a.sum()), a.size
    low, high = clopper_pearson(k, n, confidence)
    return Interval("agreement", k / n, low, high, n, confidence, "exact binomial (Clopper-Pearson)")


def sqnr_interval(reference, test, confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED):
    """Output SQNR in dB over all samples with a bootstrap percentile interval over samples.

    Returns None when the outputs are identical (no noise: the SQNR is infinite and has no interval).
    """
    alpha = _alpha(confidence)
    ref = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    noise = ref - np.asarray(test, dtype=np.float64).reshape(len(test), -1)
    signal_power, noise_power = np.sum(ref**2, axis=1), np.sum(noise**2, axis=1)
    n = len(ref)
    if n == 0 or noise_power.sum() == 0:
        return None
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    values = []
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        s, e = signal_power[idx].sum(axis=1), noise_power[idx].sum(axis=1)
        # a resample of noiseless samples only: infinite SQNR, which sorts above every finite one
        with np.errstate(divide="ignore"):
            values.append(10 * np.log10(np.maximum(s, 1e-30) / e))
    low, high = _percentiles(np.concatenate(values), alpha)
    estimate = float(10 * np.log10(max(signal_power.sum(), 1e-30) / noise_power.sum()))
    return Interval.percentile(
        "sqnr_db",
        estimate,
        low,
        high,
        n,
        confidence,
        f"bootstrap over samples, percentile, {resamples} resamples, seed {seed}",
    )


def sqnr_gain_interval(
    reference, test, baseline, confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED
) -> Interval:
    """How many dB ``test``'s output SQNR is above ``baseline``'s, both against ``reference`` on the same
    samples, with a paired bootstrap percentile interval (each resample draws the same samples for both).
    """
    alpha = _alpha(confidence)
    ref = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    noise_t = np.sum((ref - np.asarray(test, dtype=np.float64).reshape(len(ref), -1)) ** 2, axis=1)
    noise_b = np.sum((ref - np.asarray(baseline, dtype=np.float64).reshape(len(ref), -1)) ** 2, axis=1)
    n = len(ref)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    with np.errstate(divide="ignore"):
        gains = 10 * np.log10(np.maximum(noise_b[idx].sum(axis=1), 1e-30) / np.maximum(noise_t[idx].sum(axis=1), 1e-30))
    low, high = _percentiles(gains, alpha)
    estimate = float(10 * np.log10(max(noise_b.sum(), 1e-30) / max(noise_t.sum(), 1e-30)))
    # the signal power cancels in the difference of two SQNRs on the same samples
    return Interval.percentile(
        "sqnr_gain_db",
        estimate,
        low,
        high,
        n,
        confidence,
        f"paired bootstrap over samples, percentile, {resamples} resamples, seed {seed}",
    )


def noise_note(interval: Interval, budget: float) -> str | None:
    """A sentence when ``interval`` spans ``budget`` (the evaluation set cannot tell whether it is met), else None.

    ``budget`` is in the interval's unit: points of accuracy drop (0 asks whether int8 is worse than
    float at all), a fraction for agreement, dB for SQNR.
    """
    if not interval.judgeable:
        return (
            f"the {_NAMES[interval.what]} was measured on {interval.n} samples, fewer than the {MIN_SAMPLES}"
            " needed to judge it: the evaluation set cannot tell whether the budget is met"
        )
    if interval.what == "accuracy_drop_points":  # met at or below the budget
        undecided = interval.low <= budget < interval.high
    else:  # a floor: met at or above it
        undecided = interval.low < budget <= interval.high
    if not undecided:
        return None
    pct = f"{round(100 * interval.confidence)}%"
    said = f"the {pct} interval of the {_NAMES[interval.what]} ({interval.text()} on {interval.n} samples)"
    if interval.what == "accuracy_drop_points" and budget == 0:
        return f"{said} includes 0: the evaluation set cannot tell whether the int8 model is less accurate than float"
    if interval.what == "agreement":
        target = f"{_num(100 * budget)}% floor"
    elif interval.what == "sqnr_db":
        target = f"{_num(budget)} dB floor"
    else:
        target = f"{_num(budget)}-point budget"
    return f"{said} spans the {target}: the evaluation set cannot tell whether the budget is met"


def _num(x: float) -> str:
    """1 as 1.0 and 0.25 as 0.25: a budget as people wrote it, with at least one decimal."""
    return f"{x:.1f}" if round(x, 1) == x else f"{x:g}"
