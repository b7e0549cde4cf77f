"""What an evaluation's results add up to, once every task has run.

Pure functions of the tasks (``{TaskKey: Task}``) and their results (``{TaskKey: Result}``): the
cascade's entry, the worst case per gradient estimator, the gradient-masking diagnostics (a
score-based or transfer attack that beats every white-box attack, images with a zero input
gradient) and the printed report.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from jsnn import models
from jsnn.evaluation.checks import worst_case
from jsnn.evaluation.context import Context
from jsnn.evaluation.plan import Task, TaskKey
from jsnn.evaluation.records import display_name, eps255, format_table
from jsnn.evaluation.settings import STANDARD
from jsnn.evaluation.store import Result, number


def own_label(ctx: Context) -> str:
  """The evaluation's own gradient, by its surrogate's name (marked if a variant has that name)."""
  own = ctx.own.gradient.surrogate
  return f"{own} (default)" if own in ctx.variants else own


def cascade_entry(ctx: Context, stages: Sequence[Task], done: Mapping[TaskKey, Result]) -> dict:
  """The ``standard`` cascade's entry: its stages and, over them, the final accuracy, the passes
  and queries per image (the clean forward that chose the first stage's images counted once) and
  the wall time."""
  entries = {t.key.attack: done[t.key].entry for t in stages}
  start = done[stages[0].after]
  final = done[stages[-1].key]
  entry = {"stages": entries, "order": list(entries), "start_correct": int(start.flags.sum()),
           "epsilon": ctx.settings.epsilon}
  for key in ("forward_passes_per_image", "backward_passes_per_image", "queries_per_image"):
    entry[key] = number(sum(float(st[key]) for st in entries.values())
                        + ctx.eot_draws * key.startswith("forward"))
  entry.update(accuracy=final.accuracy, correct=int(final.flags.sum()), total=len(final.flags),
               wall_time_s=round(sum(float(st.get("wall_time_s", 0)) for st in entries.values()),
                                 3),
               after=start.entry["fingerprint"])
  return entry


def _attack_keys(tasks: Mapping[TaskKey, Task]) -> list[TaskKey]:
  return [k for k, t in tasks.items() if t.section == "attacks"]


def estimator_summary(ctx: Context, tasks: Mapping[TaskKey, Task],
                      done: Mapping[TaskKey, Result]) -> dict:
  """Per estimator, its attacks' accuracies and worst case; per attack, the worst case across
  its estimators (the evaluation's own gradient is named after its surrogate)."""
  own = own_label(ctx)
  keys = _attack_keys(tasks)
  by_estimator = {own: [k for k in keys if not k.variant and tasks[k].spec.uses_gradients]}
  for variant in ctx.variants:
    by_estimator[variant] = [k for k in keys if k.variant == variant]
  summary = {"estimators": {}, "per_attack": {}}
  for est, names in by_estimator.items():
    if not names:
      continue
    robust = worst_case({k.name: done[k].flags for k in names})
    gradient = ctx.variants[est].gradient if est in ctx.variants else ctx.own.gradient
    summary["estimators"][est] = {
        "attacks": {k.attack: done[k].accuracy for k in names},
        "worst_case_accuracy": int(robust.sum()) / len(robust),
        "gradient_estimator": gradient.estimator,
        "surrogate": gradient.surrogate if est in ctx.variants else own}
  if ctx.variants:
    for key in by_estimator[own]:
      names = [key] + [TaskKey(key.attack, v) for v in ctx.variants]
      robust = worst_case({k.name: done[k].flags for k in names})
      summary["per_attack"][key.attack] = {
          "estimators": [own] + list(ctx.variants),
          "accuracies": [done[k].accuracy for k in names],
          "worst_case_accuracy": int(robust.sum()) / len(robust), "correct": int(robust.sum()),
          "total": len(robust)}
  return summary


def masking_diagnostics(ctx: Context, tasks: Mapping[TaskKey, Task],
                        done: Mapping[TaskKey, Result]) -> dict:
  """Score-based attacks against the white-box attacks, transfer attacks likewise, and per
  estimator the (near-)zero gradients."""
  out = {}
  white_box, transfers, score_based = {}, {}, {}
  for key in _attack_keys(tasks):
    spec, flags = tasks[key].spec, done[key].flags
    if key.is_transfer:
      transfers[key.name] = ~flags
    elif spec.uses_gradients:
      white_box[key.name] = flags
    elif spec.score_based:
      score_based[key.name] = ~flags
  stages = [t for t in tasks.values() if t.section == "cascade"]
  for i, task in enumerate(stages):
    if task.spec.score_based and i:
      # The images this stage fooled among those the stages before it left correct.
      score_based[task.key.name] = done[stages[i - 1].key].flags & ~done[task.key].flags
    elif task.spec.uses_gradients:
      white_box[task.key.name] = done[task.key].flags

  def beaten_by(fooled: Mapping[str, np.ndarray]) -> dict:
    """Images some run of ``fooled`` fooled while every white-box attack left them correct."""
    beaten = np.logical_or.reduce(list(fooled.values())) & worst_case(white_box)
    return {"count": int(beaten.sum()), "total": len(beaten), "white_box": sorted(white_box),
            "examples": np.flatnonzero(beaten)[:20].tolist()}

  if score_based and white_box:
    out["square_vs_white_box"] = {**beaten_by(score_based), "square": sorted(score_based)}
  if transfers and white_box:
    out["transfer_vs_white_box"] = {**beaten_by(transfers), "transfer": sorted(transfers),
                                    "source": ctx.transfer.record["workdir"]}
  zero = [k for k, t in tasks.items() if t.section == "check_runs" and t.spec is None]
  if zero:
    out["zero_gradient"] = {
        (k.variant or own_label(ctx)):
        {f: done[k].entry.get(f) for f in ("count", "near_zero_count", "correct_clean",
                                           "fraction_of_correct",
                                           "near_zero_fraction_of_correct", "total")}
        for k in zero}
  return out


def format_report(ctx: Context, results, accuracies: Mapping[TaskKey, float], checks,
                  warnings) -> str:
  """The text evaluate.py prints: the accuracy table, the cascade, per-estimator accuracies and
  the failed sanity checks, each preceded by what it was measured on."""
  s = ctx.settings
  step_text = f"step {results['checkpoint_step']}"
  main = {k.name: a for k, a in accuracies.items() if not k.variant}
  lines = [f"Robust accuracy (%) of {ctx.workdir} ({s.checkpoint} checkpoint, {step_text}) on "
           f"{len(ctx.labels)} images of {ctx.data_source}, L∞ ε = {eps255(s.epsilon)}, "
           f"suite {s.suite}", "", format_table(main), ""]
  if models.is_stochastic(ctx.model):
    lines += [f"stochastic model ({results['encoding']} encoding): attacks follow the expectation "
              f"over {ctx.eot_draws} draws (EOT), predictions are a majority over "
              f"{ctx.eot_draws} draws", ""]
  transferred = [k for k in accuracies if k.is_transfer]
  if transferred:
    source = ctx.transfer.record
    lines += [f"transfer from {source['workdir']} (surrogate {source['surrogate']}): "
              + ", ".join(f"{display_name(k.attack)} {100 * accuracies[k]:.2f}"
                          for k in transferred), ""]
  lines += [f"WARNING: {note}" for note in ctx.notes]
  cascade = results["cascades"].get(STANDARD)
  if cascade:
    stages = " → ".join(f"{n} {100 * cascade['stages'][n]['accuracy']:.2f} "
                        f"({cascade['stages'][n]['attacked']} attacked)" for n in cascade["order"])
    lines += [f"standard cascade: clean {100 * cascade['start_correct'] / cascade['total']:.2f} → "
              f"{stages}; {cascade['forward_passes_per_image']} forward + "
              f"{cascade['backward_passes_per_image']} backward passes and "
              f"{cascade['queries_per_image']} queries per image", ""]
  per_attack = results["estimators"].get("per_attack", {})
  if per_attack:
    estimators = next(iter(per_attack.values()))["estimators"]
    header = "| attack | " + " | ".join(estimators) + " | worst |"
    rows = [header, "|---|" + "---:|" * (len(estimators) + 1)]
    for name, r in per_attack.items():
      cells = [f"{100 * a:.2f}" for a in r["accuracies"] + [r["worst_case_accuracy"]]]
      rows.append(f"| {display_name(name)} | " + " | ".join(cells) + " |")
    lines += ["Accuracy (%) per gradient estimator:", *rows, ""]
  if checks:
    lines.append(f"sanity checks: {len(checks) - len(warnings)}/{len(checks)} passed")
    lines += [f"WARNING [{c.name}]: {c.message}" for c in warnings]
  return "\n".join(lines)
