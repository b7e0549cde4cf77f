"""A sweep root's files: which phases each row still needs, and the ``results.json`` of them all.

``<root>/<row-id>/row.json`` is the sweep's record of one row: the row (:class:`rows.Row` as a
dict), the config it trains with, and per phase (``train``, ``evaluate``, ``sweep``,
``factors``) its calls with their wall times. ``<root>/results.json`` is rebuilt from every row
directory: row id, config argument, seed, clean and per-attack accuracies (per gradient), the
worst case, the cascade and the suites, training and evaluation wall times, and the sanity checks.
It is what ``python -m experiments.report`` reads. The suites come from the per-example flags,
which git ignores; ``<root>/<row-id>/suite_accuracies.json`` keeps them for a clean checkout.
Only JSON (and NumPy for the flags) is needed here: the sweep decides what a row still needs
before JAX starts.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Optional, Sequence

from experiments import common, rows
from jsnn import _io

ROW_FILE = "row.json"
RESULTS_FILE = "results.json"
SUITES_FILE = "suite_accuracies.json"   # a row's accuracy per suite, from its ignored flags
# jsnn.evaluation.settings.TRANSFER, repeated: that module imports JAX (a test keeps them equal).
TRANSFER = "transfer"
# A row's phases, in the order they run (the keys of row.json's "phases").
PHASES = ("train", "evaluate", "sweep", "factors")


# -------------------------------------------------------------------------------------------------
# Which phases a row still needs: files only, nothing is loaded into JAX
# -------------------------------------------------------------------------------------------------


def training_config_differences(saved: dict, current: dict) -> list[str]:
  """Config keys that differ and change the trained model (`jsnn.config_diff.config_differences`).

  A key the saved run lacks (added to jsnn after it trained) differs only if the current value is
  not its default in configs/default.py, so a new option left at its default keeps old rows done.
  """
  from configs import default   # pylint: disable=import-outside-toplevel
  from jsnn import config_diff   # pylint: disable=import-outside-toplevel  (no JAX import)
  return config_diff.config_differences(saved, current, defaults=default.get_config().to_dict())


def _training_done(rowdir: str, config) -> bool:
  state = _io.read_json(os.path.join(rowdir, ROW_FILE)) or {}
  return bool(state.get("training", {}).get("done")) and not training_config_differences(
      state.get("config", {}), config.to_dict())


def _evaluation_done(rowdir: str, config) -> bool:
  """``robustness.json`` holds every attack of ``config.eval`` at its ε, examples and checkpoint."""
  found = _io.read_json(os.path.join(rowdir, _io.ROBUSTNESS_FILE))
  if not found or "worst_case" not in found:
    return False
  e = config.eval
  for name in (n.strip() for n in e.attacks.split(",") if n.strip()):
    entry = found.get("attacks", {}).get(name)
    if (not isinstance(entry, dict) or entry.get("checkpoint") != e.checkpoint
        or (e.num_examples and entry.get("num_examples") != e.num_examples)
        or (name != "clean" and not math.isclose(entry.get("epsilon", -1.0), e.epsilon,
                                                 rel_tol=1e-6))):
      return False
  return bool(found.get("check_runs")) or not e.sanity_checks


def _sweep_done(rowdir: str, config) -> bool:
  found = _io.read_json(os.path.join(rowdir, _io.SWEEP_FILE)) or {}
  have = {round(p.get("epsilon_255", -1), 4) for p in found.get("points", [])
          if not config.eval.num_examples or p.get("total") == config.eval.num_examples}
  wanted = [float(x) for x in str(config.eval.sweep_epsilons).split(",") if x.strip()]
  return bool(found) and all(round(e, 4) in have for e in wanted)


def phases_due(row: rows.Row, rowdir: str, config) -> list[str]:
  """The phases a row still needs, in order; empty when the row is complete.

  A phase after a training that is due is due too: it reads what the training writes.
  """
  trained = _training_done(rowdir, config)
  due = {"train": not trained,
         "evaluate": not trained or not _evaluation_done(rowdir, config),
         "sweep": row.figure3 and (not trained or not _sweep_done(rowdir, config)),
         "factors": config.model.neuron == "dlif" and (not trained or not os.path.exists(
             os.path.join(rowdir, _io.FACTORS_FILE)))}
  return [name for name in PHASES if due[name]]


# -------------------------------------------------------------------------------------------------
# results.json
# -------------------------------------------------------------------------------------------------


def _read_metrics(rowdir: str) -> list[dict]:
  path = os.path.join(rowdir, _io.METRICS_FILE)
  if not os.path.exists(path):
    return []
  by_epoch = {}
  with open(path) as f:
    for line in f:
      if line.strip():
        entry = json.loads(line)
        by_epoch[entry.get("epoch")] = entry   # a resumed epoch: the last line wins
  return [by_epoch[k] for k in sorted(k for k in by_epoch if k is not None)]


def phase_wall(state: dict, phase: str) -> Optional[float]:
  """The wall time of every call of ``phase`` in a row.json ``state`` (None: never timed)."""
  calls = state.get("phases", {}).get(phase, {}).get("calls", [])
  walls = [c["wall_s"] for c in calls if c.get("wall_s") is not None]
  return sum(walls) if walls else None


def record_variant(record: dict) -> Optional[str]:
  """The gradient an attack record followed, from its ``estimator`` and ``transfer_from`` fields
  (jsnn.evaluation.plan.attack_record): an estimator variant, TRANSFER, or None for the
  evaluation's own."""
  return record.get("estimator") or (TRANSFER if record.get("transfer_from") else None)


def _accuracies(attacks: dict) -> tuple[dict, dict]:
  """``{attack: accuracy}`` under the evaluation's own gradient, and ``{variant: {attack:
  accuracy}}`` under each estimator variant and the transfer source (`record_variant`), keyed by
  each record's ``attack`` field."""
  own, variants = {}, {}
  for name, record in attacks.items():
    variant = record_variant(record)
    target = variants.setdefault(variant, {}) if variant else own
    target[record.get("attack", name)] = record["accuracy"]
  return own, variants


def _suites_basis(results: dict) -> dict:
  """What a row's suite accuracies were computed from: they hold while this is unchanged."""
  return {"checkpoint_step": results.get("checkpoint_step"),
          "attacks": {n: a.get("accuracy") for n, a in sorted(results["attacks"].items())}}


def stored_suites(rowdir: str, results: dict) -> Optional[dict]:
  """The suite accuracies kept in ``rowdir``'s SUITES_FILE, if ``results`` (its robustness.json)
  is still the evaluation they were computed from; else None."""
  kept = _io.read_json(os.path.join(rowdir, SUITES_FILE)) or {}
  return kept["suites"] if kept.get("basis") == _suites_basis(results) else None


def _row_suites(rowdir: str, results: dict, previous: Optional[dict]) -> Optional[dict]:
  """The row's accuracy per suite (`experiments.suites.suite_accuracies`), or None.

  They are computed from the per-example flags, which stay out of git, and kept in the row's
  SUITES_FILE, which does not, so a clean checkout still has them. Without flags they come from
  that file or, for a root collected before it existed, from ``previous`` (the row's last
  results.json entry), each only if the evaluation they came from is unchanged.
  """
  flags_path = os.path.join(rowdir, _io.FLAGS_FILE)
  if os.path.exists(flags_path):
    import numpy as np  # pylint: disable=import-outside-toplevel
    from experiments import suites  # pylint: disable=import-outside-toplevel
    with np.load(flags_path) as f:
      found = suites.suite_accuracies(results, {k: f[k] for k in f.files})
  else:
    kept = stored_suites(rowdir, results)
    if kept is not None:
      return kept
    previous = previous or {}
    own, variants = _accuracies(results["attacks"])
    if not previous.get("suites") or (
        previous.get("evaluation", {}).get("checkpoint_step"), previous.get("accuracies"),
        previous.get("variant_accuracies", {})) != (results.get("checkpoint_step"), own, variants):
      return None
    found = previous["suites"]
  _io.write_json(os.path.join(rowdir, SUITES_FILE),
                 {"basis": _suites_basis(results), "suites": found})
  return found


def collect_row(rowdir: str, row: Optional[dict] = None, previous: Optional[dict] = None) -> dict:
  """One row's entry of results.json, from the files in its directory.

  ``previous`` is the row's entry in the results.json being rebuilt, if any (see `_row_suites`).
  """
  state = _io.read_json(os.path.join(rowdir, ROW_FILE)) or {}
  row = dict(state.get("row") or row or {})
  entry = {k: row.get(k) for k in ("id", "table", "setting", "label", "config", "arg", "seed",
                                   "protocol", "figure3", "paper_key")}
  entry["status"] = state.get("status", "pending") if state else "pending"
  if state.get("error"):
    entry["error"] = state["error"]
  config = state.get("config", {})
  if config:
    m = config["model"]
    entry["model"] = {k: m[k] for k in ("name", "neuron", "dlif_placement", "time_steps", "width",
                                        "head_width", "leak")}
    entry["training_config"] = {
        "mode": config["training"]["mode"], "rho": config["training"]["rho"],
        "distance": config["training"]["distance"], "epochs": config["training"]["epochs"],
        "batch_size": config["training"]["batch_size"],
        "train_size": config["data"]["train_size"], "data_dir": config["data"]["dir"]}
  metrics = _read_metrics(rowdir)
  if metrics:
    last = metrics[-1]
    entry["training"] = {
        "epochs_done": last.get("epoch"), "steps": last.get("step"),
        "final_test_accuracy": last.get("test_accuracy"),
        "best_test_accuracy": max(m.get("test_accuracy", -1) for m in metrics),
        "images_per_second": last.get("images_per_second"),
        "wall_s": phase_wall(state, "train")}
  results = _io.read_json(os.path.join(rowdir, _io.ROBUSTNESS_FILE))
  if results and results.get("attacks"):
    attacks = results["attacks"]
    entry["accuracies"], variants = _accuracies(attacks)
    if variants:
      entry["variant_accuracies"] = variants
    if results.get("worst_case"):
      entry["worst_case"] = results["worst_case"]["accuracy"]
    entry["num_examples"] = next(iter(attacks.values())).get("num_examples")
    entry["evaluation"] = {"wall_s": phase_wall(state, "evaluate"),
                           "attack_wall_s": {n: a.get("wall_time_s") for n, a in attacks.items()},
                           "checkpoint": results.get("checkpoint"),
                           "checkpoint_step": results.get("checkpoint_step"),
                           "data": results.get("data")}
    entry["checks"] = results.get("checks", [])
    cascade = results.get("cascades", {}).get("standard")
    if cascade:
      entry["cascade"] = {n: cascade["stages"][n]["accuracy"] for n in cascade["order"]}
      found = _row_suites(rowdir, results, previous)
      if found:
        entry["suites"] = found
  for key, name in (("eps_sweep", _io.SWEEP_FILE), ("dlif_factors", _io.FACTORS_FILE),
                    ("metrics", _io.METRICS_FILE)):
    if os.path.exists(os.path.join(rowdir, name)):
      entry.setdefault("files", {})[key] = os.path.join(os.path.basename(rowdir), name)
  if phase_wall(state, "sweep") is not None:
    entry["sweep_wall_s"] = phase_wall(state, "sweep")
  walls = [w for w in (phase_wall(state, p) for p in PHASES) if w is not None]
  entry["wall_s"] = sum(walls) if walls else None
  return entry


def collect(root: str, planned: Sequence[rows.Row] = (), *, meta: Optional[dict] = None) -> dict:
  """Rebuilds ``<root>/results.json`` from every row directory under ``root``.

  Planned rows without a directory yet are listed as ``pending``; rows of other row sets found
  under the same root are kept. ``meta`` (the sweep's command, seeds, host) is appended to the
  last 20 runs the file remembers.
  """
  previous = _io.read_json(os.path.join(root, RESULTS_FILE)) or {}
  before = {r.get("id"): r for r in previous.get("rows", [])}
  entries = {}
  for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
    rowdir = os.path.join(root, name)
    if os.path.exists(os.path.join(rowdir, ROW_FILE)):
      entries[name] = collect_row(rowdir, previous=before.get(name))
  for row in planned:
    if row.id not in entries:
      entries[row.id] = collect_row(os.path.join(root, row.id), dataclasses.asdict(row))
  runs = previous.get("runs", [])
  if meta:
    runs = runs + [meta]
  results = {"root": os.path.abspath(root), "updated": common.now(), "git": common.git_commit(),
             "runs": runs[-20:], "rows": list(entries.values())}
  _io.write_json(os.path.join(root, RESULTS_FILE), results)
  return results
