"""95% intervals for a quantized model's fidelity, paired over the same evaluation samples.

Pure numpy. On 100 or 2,000 samples, one point of accuracy is often inside the noise; these intervals
say how far a measured accuracy drop, agreement or SQNR can be trusted, and :func:`noise_note` says
plainly when the evaluation set cannot tell whether a budget is met.

- accuracy drop: paired bootstrap (percentile interval). Each sample contributes the float model's
  correctness minus the int8 model's (-1, 0 or +1), so resampling samples with replacement is the
  same as drawing the three counts from a multinomial with their observed shares: that is how it is
  drawn here, exact and independent of the sample count.
- agreement: exact Clopper-Pearson binomial interval, the binomial CDF inverted by bisection.
- SQNR: bootstrap over samples, each sample's signal and noise power resampled together.

Bootstraps use a fixed seed, so the same outputs always give the same interval.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

CONFIDENCE = 0.95
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

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("estimate", "low", "high"):
            d[k] = round(d[k], 6)
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


def drop_interval(
    reference_correct,
    quantized_correct,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """Accuracy drop in points (float top-1 minus int8 top-1) with its paired bootstrap interval.

    Args:
        reference_correct: per sample, whether the float model's top-1 is right.
        quantized_correct: per sample, whether the int8 model's top-1 is right (same samples, same order).
    """
    alpha = _alpha(confidence)
    ref = _as_bool(reference_correct, "reference_correct")
    test = _as_bool(quantized_correct, "quantized_correct")
    if ref.shape != test.shape:
        raise ValueError(f"{ref.size} reference and {test.size} quantized results: the samples must be the same")
    n = ref.size
    lost = int(np.sum(ref & ~test))  # float right, int8 wrong: +1 to the drop
    gained = int(np.sum(~ref & test))  # int8 right, float wrong: -1
    shares = np.array([lost, n - lost - gained, gained], dtype=np.float64) / n
    counts = np.random.default_rng(seed).multinomial(n, shares, size=resamples)
    drops = 100.0 * (counts[:, 0] - counts[:, 2]) / n
    low, high = _percentiles(drops, alpha)
    estimate = 100.0 * (lost - gained) / n
    return Interval.percentile(
        "accuracy_drop_points",
        estimate,
        low,
        high,
        n,
        confidence,
        f"paired bootstrap, percentile, {resamples} resamples, seed {seed}",
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
