"""One store of an evaluation's results: ``robustness.json`` and its per-example flags.

Every task's result, a plain attack's or a cascade stage's, is reused the same way: its entry is
stored under the fingerprint of its record (:func:`jsnn.evaluation.plan.task_record`, plus the
fingerprint of the task it follows), and its flags under that fingerprint. A result is reused when
the entry and flags with the same fingerprint are there. Files of another ``schema`` are moved
aside (``robustness_schema<k>.json``) the first time this one writes, not deleted.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional

import numpy as np

from jsnn.evaluation.plan import Task, TaskKey
from jsnn.evaluation.records import (FLAGS_FILE, RESULTS_FILE, read_flags, read_json,
                                     settings_fingerprint, write_flags, write_json)

# 2: per-kind attack records, flags keyed by fingerprint, cascade stages chained by "after".
SCHEMA = 2
SECTIONS = ("attacks", "check_runs", "cascades")


@dataclasses.dataclass(frozen=True, eq=False)
class Result:
  """A task's result: its JSON entry and its per-example flags ([N] bool: still correct; for the
  zero-gradient count: the gradient is zero)."""
  entry: dict
  flags: np.ndarray

  @property
  def accuracy(self) -> float:
    return self.entry["accuracy"]


class ResultStore:
  """``robustness.json`` + ``robustness_flags.npz`` of a workdir, read once, written atomically
  (flags first: an entry is only trusted when its flags are stored too)."""

  def __init__(self, workdir: str, *, writes: bool = True):
    self.paths = {"json": os.path.join(workdir, RESULTS_FILE),
                  "flags": os.path.join(workdir, FLAGS_FILE)}
    self.writes = writes
    self.results = read_json(self.paths["json"], "robustness results") or {}
    self.flags = read_flags(self.paths["flags"])
    self.old_schema = (self.results.get("schema", 1) if self.results and
                       self.results.get("schema") != SCHEMA else None)
    if self.old_schema is not None:
      self.results, self.flags = {}, {}
    for section in SECTIONS:
      self.results.setdefault(section, {})
      if not isinstance(self.results[section], dict):
        raise ValueError(f"{self.paths['json']} has a malformed {section!r} section; move it "
                         "away to start afresh (it is left untouched)")
    self.results["schema"] = SCHEMA
    self.fingerprints: dict[TaskKey, str] = {}

  def _entries(self, task: Task) -> dict:
    if task.section == "cascade":
      cascade = self.results["cascades"].setdefault(task.key.cascade, {})
      return cascade.setdefault("stages", {})
    return self.results[task.section]

  def _entry_name(self, task: Task) -> str:
    return task.key.attack if task.section == "cascade" else task.key.name

  def fingerprint(self, task: Task, record: Mapping) -> str:
    """The task's fingerprint: of its record and of the task it follows."""
    if task.after is not None:
      record = {**record, "after": self.fingerprints[task.after]}
    fingerprint = settings_fingerprint(record)
    self.fingerprints[task.key] = fingerprint
    return fingerprint

  def get(self, task: Task, fingerprint: str, total: int) -> Optional[Result]:
    """The stored result with this fingerprint, or None."""
    entry = self._entries(task).get(self._entry_name(task))
    flags = self.flags.get(fingerprint)
    if (isinstance(entry, dict) and entry.get("fingerprint") == fingerprint
        and flags is not None and flags.shape == (total,)):
      return Result(entry, np.asarray(flags, bool))
    return None

  def put(self, task: Task, fingerprint: str, entry: dict, flags: np.ndarray) -> Result:
    """Stores a computed result and writes both files."""
    entry = {**entry, "fingerprint": fingerprint}
    if task.after is not None:
      entry["after"] = self.fingerprints[task.after]
    self._entries(task)[self._entry_name(task)] = entry
    self.flags[fingerprint] = np.asarray(flags, bool)
    self.save()
    return Result(entry, self.flags[fingerprint])

  def _live(self) -> set[str]:
    entries = [e for section in ("attacks", "check_runs") for e in self.results[section].values()]
    for cascade in self.results["cascades"].values():
      if isinstance(cascade, dict):
        entries += list(cascade.get("stages", {}).values())
    return {e.get("fingerprint") for e in entries if isinstance(e, dict)}

  def save(self) -> None:
    if not self.writes:
      return
    if self.old_schema is not None:
      for key, path in self.paths.items():
        stem, ext = os.path.splitext(path)
        aside = f"{stem}_schema{self.old_schema}{ext}"
        if os.path.exists(path) and not os.path.exists(aside):
          os.replace(path, aside)
      self.old_schema = None
    live = self._live()
    self.flags = {k: v for k, v in self.flags.items() if k in live}
    write_flags(self.paths["flags"], self.flags)
    write_json(self.paths["json"], self.results)


def number(value: float):
  """A count per image for the JSON: an int when it is one, else 4 decimals."""
  return int(round(value)) if abs(value - round(value)) < 1e-9 else round(float(value), 4)


def budget(out: Mapping[str, np.ndarray], total: int, scored: int) -> dict:
  """Passes and queries per image of ``total`` images, from a step's per-example stats.

  ``scored`` images got one more forward (the scoring of the adversarial image).
  """
  forward = int(out["forward"].astype(np.int64).sum()) + scored
  backward = int(out["backward"].astype(np.int64).sum())
  queries = out["queries"].astype(np.int64)
  spent = {"forward_passes_per_image": number(forward / max(total, 1)),
           "backward_passes_per_image": number(backward / max(total, 1)),
           "queries_per_image": number(int(queries.sum()) / max(total, 1))}
  attacked = queries[queries > 0]
  if attacked.size:
    spent.update(queries_mean_attacked=number(float(attacked.mean())),
                 queries_median_attacked=number(float(np.median(attacked))),
                 queries_max=int(attacked.max()))
  return spent
