"""The numbers the report states, computed from results.json rows: plain JSON in, numbers out.

Nothing here writes Markdown or draws; :mod:`experiments.report.tables` and the other section
modules render what these functions return.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Optional, Sequence

from experiments import stats


class Stat:
  """Mean ± std (sample, n − 1) of one setting's accuracy (%) over seeds."""

  def __init__(self, values: Sequence[float]):
    self.values = [float(v) for v in values]
    self.mean, self.std, self.n = stats.mean_std(self.values)


def mean(values) -> Optional[float]:
  return sum(values) / len(values) if values else None


def stayed_at_chance(row: dict, num_classes: int = 10) -> bool:
  """Whether a run never left chance: clean test accuracy within 3 binomial standard errors of
  1/classes on its ``num_examples`` images (such a model does no better than guessing, so its
  "robust" accuracies say nothing about robustness)."""
  acc = (row.get("accuracies") or {}).get("clean")
  n = row.get("num_examples") or 0
  if acc is None or not n:
    return False
  chance = 1.0 / num_classes
  return acc <= chance + 3 * math.sqrt(chance * (1 - chance) / n)


def setting_stats(rows: Sequence[dict]) -> dict:
  """``{setting: {attack: Stat}}`` in %, over the rows (seeds) that have accuracies."""
  out = {}
  for row in rows:
    for attack, acc in (row.get("accuracies") or {}).items():
      out.setdefault(row["setting"], {}).setdefault(attack, []).append(100 * acc)
    if row.get("worst_case") is not None:
      out.setdefault(row["setting"], {}).setdefault("worst-case", []).append(
          100 * row["worst_case"])
  return {s: {a: Stat(v) for a, v in d.items()} for s, d in out.items()}


def failed_checks(row: dict) -> list:
  """Names of the gradient-masking checks (jsnn.evaluation.checks) that `row` failed."""
  return [c["name"] for c in row.get("checks", []) if not c.get("passed")]


def compare(stats_: dict, a: str, b: str, attack: str):
  """``(Δ = b − a, larger of the two stds, n_a, n_b)`` in percentage points, or None."""
  if attack not in stats_.get(a, {}) or attack not in stats_.get(b, {}):
    return None
  sa, sb = stats_[a][attack], stats_[b][attack]
  return sb.mean - sa.mean, max(sa.std, sb.std), sa.n, sb.n


def count_by(rows: Sequence[dict], key) -> dict:
  """How many of ``rows`` have each value of ``key(row)``, in first-seen order."""
  out = {}
  for r in rows:
    out[key(r)] = out.get(key(r), 0) + 1
  return out


@dataclasses.dataclass
class TableRuns:
  """A table's runs, sorted by what the table may average.

  Attributes:
    done: runs that have accuracies.
    at_chance: those of them that never left chance (left out of the means).
    learned: the others; ``stats`` are their means per setting and attack.
    masked: run id → the gradient-masking checks it failed (kept in the means, but marked).
  """
  done: list
  at_chance: list
  learned: list
  stats: dict
  masked: dict

  @property
  def masked_settings(self) -> set:
    return {r["setting"] for r in self.learned if r["id"] in self.masked}


def table_runs(rows: Sequence[dict], num_classes: int) -> TableRuns:
  done = [r for r in rows if r.get("accuracies")]
  at_chance = [r for r in done if stayed_at_chance(r, num_classes)]
  learned = [r for r in done if r not in at_chance]
  # A run that learned but failed a gradient-masking check stays in the mean (its attacks did run),
  # yet its robust accuracies may be inflated: its setting is marked so no reader takes it at face
  # value.
  masked = {r["id"]: names for r in learned if (names := failed_checks(r))}
  return TableRuns(done, at_chance, learned, setting_stats(learned), masked)


def scale_signature(row: dict) -> Optional[str]:
  """What must agree between the rows of one table: the scale, not the row's own setting."""
  if not (row.get("model") and row.get("training_config")):
    return None
  return json.dumps([{k: row["model"][k] for k in ("name", "width", "head_width", "time_steps",
                                                     "leak")},
                     {k: row["training_config"][k] for k in ("epochs", "batch_size",
                                                             "train_size")},
                     row.get("num_examples")], sort_keys=True)
