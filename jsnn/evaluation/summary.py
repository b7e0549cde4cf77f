"""What an evaluation's per-example flags add up to, once every attack has run.

Pure summaries of :func:`jsnn.evaluation.runner.evaluate_checkpoint`'s results: the worst case per
gradient estimator, the gradient-masking diagnostics (Square or transfer attacks that beat every
white-box attack, images with a zero input gradient) and the printed report. ``ctx`` is the
runner's evaluation context; only its settings, model, variants, transfer source and labels are
read.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from jsnn import attacks, models
from jsnn.evaluation.checks import worst_case
from jsnn.evaluation.records import display_name, eps255, format_table
from jsnn.evaluation.settings import STANDARD, TRANSFER


def own_label(ctx) -> str:
  """The evaluation's own gradient, by its surrogate's name (marked if a variant has that name)."""
  own = ctx.surrogate["name"]
  return f"{own} (default)" if own in ctx.variants else own


def estimator_summary(ctx, order, suite_flags, results) -> dict:
  """Per estimator, its attacks' accuracies and worst case; per attack, the worst case across
  its estimators (the evaluation's own gradient is named after its surrogate)."""
  own = own_label(ctx)
  by_estimator = {own: [n for n in order if "@" not in n and
                        results["attacks"][n]["kind"] in attacks.GRADIENT_KINDS]}
  for variant in ctx.variants:
    by_estimator[variant] = [n for n in order if n.endswith(f"@{variant}")]
  summary = {"estimators": {}, "per_attack": {}}
  for est, names in by_estimator.items():
    if not names:
      continue
    robust = worst_case({n: suite_flags[n] for n in names})
    summary["estimators"][est] = {
        "attacks": {n.split("@")[0]: results["attacks"][n]["accuracy"] for n in names},
        "worst_case_accuracy": int(robust.sum()) / len(robust),
        **({"gradient_estimator": ctx.variants[est].surrogate["gradient_estimator"],
            "surrogate": ctx.variants[est].surrogate["name"]} if est in ctx.variants else
           {"gradient_estimator": "surrogate", "surrogate": own})}
  if ctx.variants:
    for name in by_estimator[own]:
      names = [name] + [f"{name}@{v}" for v in ctx.variants]
      robust = worst_case({n: suite_flags[n] for n in names})
      summary["per_attack"][name] = {
          "estimators": [own] + list(ctx.variants),
          "accuracies": [results["attacks"][n]["accuracy"] for n in names],
          "worst_case_accuracy": int(robust.sum()) / len(robust), "correct": int(robust.sum()),
          "total": len(robust)}
  return summary


def masking_diagnostics(ctx, suite_flags, results, flags) -> dict:
  """Square against the white-box attacks, and per estimator the (near-)zero gradients."""
  out = {}
  white_box = {n: f for n, f in suite_flags.items() if n != STANDARD and
               not n.endswith(f"@{TRANSFER}") and
               results["attacks"][n]["kind"] in attacks.GRADIENT_KINDS}
  transfers = {n: ~np.asarray(f, bool) for n, f in suite_flags.items()
               if n.endswith(f"@{TRANSFER}")}
  squares = {n: ~np.asarray(f, bool) for n, f in suite_flags.items() if n != STANDARD and
             results["attacks"][n]["kind"] == "square"}
  cascade = results["cascades"].get(STANDARD)
  if cascade:
    order = cascade["order"]
    stage_flags = {}
    for name in order:
      st = cascade["stages"][name]
      stage_flags[name] = flags[f"{STANDARD}/{name}-{st['fingerprint']}"]
    for i, name in enumerate(order):
      if cascade["stages"][name]["kind"] == "square":
        before = stage_flags[order[i - 1]] if i else None
        if before is not None:
          squares[f"{STANDARD}/{name}"] = np.asarray(before, bool) & ~stage_flags[name]
      elif cascade["stages"][name]["kind"] in attacks.GRADIENT_KINDS:
        white_box[f"{STANDARD}/{name}"] = stage_flags[name]

  def beaten_by(fooled: Mapping[str, np.ndarray]) -> dict:
    """Images some run of ``fooled`` fooled while every white-box attack left them correct."""
    beaten = np.logical_or.reduce(list(fooled.values())) & worst_case(white_box)
    return {"count": int(beaten.sum()), "total": len(beaten), "white_box": sorted(white_box),
            "examples": np.flatnonzero(beaten)[:20].tolist()}

  if squares and white_box:
    out["square_vs_white_box"] = {**beaten_by(squares), "square": sorted(squares)}
  if transfers and white_box:
    out["transfer_vs_white_box"] = {**beaten_by(transfers), "transfer": sorted(transfers),
                                    "source": ctx.transfer.record["workdir"]}
  zero = {n: r for n, r in results["check_runs"].items()
          if n.startswith("zero_gradient") and isinstance(r, dict)}
  if zero:
    out["zero_gradient"] = {
        (n.split("@")[1] if "@" in n else own_label(ctx)):
        {k: r.get(k) for k in ("count", "near_zero_count", "correct_clean", "fraction_of_correct",
                               "near_zero_fraction_of_correct", "total")}
        for n, r in zero.items()}
  return out


def format_report(ctx, results, accuracies, checks, warnings) -> str:
  """The text evaluate.py prints: the accuracy table, the cascade, per-estimator accuracies and
  the failed sanity checks, each preceded by what it was measured on."""
  s = ctx.settings
  step_text = f"step {results['checkpoint_step']}"
  main = {n: a for n, a in accuracies.items() if "@" not in n}
  lines = [f"Robust accuracy (%) of {ctx.workdir} ({s.checkpoint} checkpoint, {step_text}) on "
           f"{len(ctx.labels)} images of {ctx.data_source}, L∞ ε = {eps255(s.epsilon)}, "
           f"suite {s.suite}", "", format_table(main), ""]
  if models.is_stochastic(ctx.model):
    lines += [f"stochastic model ({results['encoding']} encoding): attacks follow the expectation "
              f"over {ctx.eot_draws} draws (EOT), predictions are a majority over "
              f"{ctx.eot_draws} draws", ""]
  transferred = [n for n in accuracies if n.endswith(f"@{TRANSFER}")]
  if transferred:
    source = ctx.transfer.record
    lines += [f"transfer from {source['workdir']} (surrogate {source['surrogate']}): "
              + ", ".join(f"{display_name(n.split('@')[0])} {100 * accuracies[n]:.2f}"
                          for n in transferred), ""]
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
