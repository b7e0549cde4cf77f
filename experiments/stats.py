"""Paired differences across seeds with Student-t intervals, and mean ± std (no JAX, no SciPy).

Two settings trained with the same seeds (same initialisation, data order and perturbation draws)
are compared seed by seed: ``d_s = b_s − a_s``. The 95 % interval of the mean difference is
``d̄ ± t₀.₉₇₅(n − 1)·s_d/√n``; a difference "exceeds the seed noise" when the interval leaves out 0.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Mapping, Optional

# Two-sided 95 % quantiles t₀.₉₇₅ of Student's t by degrees of freedom; beyond 30, the normal's.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120,
         17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064,
         25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042}
NORMAL_975 = 1.960

EXCEEDS = "exceeds the seed noise"
WITHIN = "does not exceed the seed noise"


def t_quantile_975(dof: int) -> float:
  """t₀.₉₇₅ with ``dof`` ≥ 1 degrees of freedom."""
  if dof < 1:
    raise ValueError(f"degrees of freedom must be >= 1, got {dof}")
  return T_975.get(dof, NORMAL_975)


@dataclasses.dataclass(frozen=True)
class PairedDifference:
  """``b − a`` paired by seed: mean, sample std of the differences, the seeds, the 95 % interval
  (None with one pair) and the verdict."""
  mean: float
  std: Optional[float]
  seeds: tuple
  low: Optional[float]
  high: Optional[float]

  @property
  def n(self) -> int:
    return len(self.seeds)

  @property
  def verdict(self) -> str:
    if self.low is None:
      return "one seed: no interval"
    return EXCEEDS if self.low > 0 or self.high < 0 else WITHIN


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> Optional[PairedDifference]:
  """``b − a`` over the seeds both have; None when they share none.

  Args:
    a, b: value per seed (for example robust accuracy in %).
  """
  seeds = tuple(sorted(set(a) & set(b)))
  if not seeds:
    return None
  diffs = [b[s] - a[s] for s in seeds]
  n = len(diffs)
  mean = sum(diffs) / n
  if n == 1:
    return PairedDifference(mean=mean, std=None, seeds=seeds, low=None, high=None)
  std = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
  half = t_quantile_975(n - 1) * std / math.sqrt(n)
  return PairedDifference(mean=mean, std=std, seeds=seeds, low=mean - half, high=mean + half)


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
  """Mean, sample standard deviation (n − 1; 0 for one value) and count."""
  values = [float(v) for v in values]
  n = len(values)
  if not n:
    return math.nan, math.nan, 0
  mean = sum(values) / n
  if n == 1:
    return mean, 0.0, 1
  var = sum((v - mean) ** 2 for v in values) / (n - 1)
  return mean, math.sqrt(var), n
