"""The attack table of a checkpoint: :func:`evaluate_checkpoint` runs the plan's tasks resumably.

prepare (:mod:`~jsnn.evaluation.context`) → the tasks (:mod:`~jsnn.evaluation.plan`) → for each,
the stored result (:mod:`~jsnn.evaluation.store`) or a run over the test images → the worst case,
the summaries and the checks (:mod:`~jsnn.evaluation.summary`, :mod:`~jsnn.evaluation.checks`).
:func:`measure` times one jitted step over the test set; the ε sweep and certification reuse it.
"""

from __future__ import annotations

import datetime
import logging
import os
import time
from typing import Any, Optional

import jax
import numpy as np

from jsnn import __version__ as JSNN_VERSION
from jsnn import models
from jsnn._io import atomic_write
from jsnn.evaluation import summary as summary_lib
from jsnn.evaluation.checks import sanity_checks, worst_case
from jsnn.evaluation.context import CheckpointMismatch, Context, load_test_set, prepare  # noqa: F401
from jsnn.evaluation.plan import Task, TaskKey, common_settings, plan, task_record
from jsnn.evaluation.records import CSV_FILE, csv_table, eps255
from jsnn.evaluation.settings import STANDARD, WORST_CASE
from jsnn.evaluation.steps import (attack_key, jit_step, make_attack_step, make_transfer_step,
                                   make_zero_gradient_step, run_batches)
from jsnn.evaluation.store import Result, ResultStore, budget
from jsnn.tracing import counting_traces

log = logging.getLogger("jsnn")


def measure(step, ctx: Context, *, key, epsilon: float, desc: str, subset=None,
             variables=None):
  """Runs a jitted step over the test set (or ``subset`` of it): ``(outputs, timing record)``."""
  images, labels = ctx.images, ctx.labels
  batch_size = ctx.settings.batch_size
  if subset is not None:
    images, labels = images[subset], labels[subset]
    # A cascade stage compiles its own step anyway, so a subset smaller than a batch gets a
    # batch of its own size (a multiple of the devices) instead of padding: APGD-T and Square
    # on a few survivors would otherwise spend most of their passes on filler rows.
    devices = ctx.mesh.devices.size
    batch_size = min(batch_size, -(-len(labels) // devices) * devices)
  start = time.time()
  out = run_batches(step, ctx.variables if variables is None else variables, images, labels,
                    batch_size=batch_size, mesh=ctx.mesh, key=key, epsilon=epsilon,
                    desc=desc, progress=ctx.settings.progress_bar and ctx.is_main)
  wall = time.time() - start
  return out, {"wall_time_s": round(wall, 3),
               "images_per_second": round(len(labels) / max(wall, 1e-9), 3),
               "batch_size": batch_size, "num_devices": ctx.mesh.devices.size,
               "device_kind": jax.devices()[0].device_kind,
               "finished": datetime.datetime.now().isoformat(timespec="seconds")}


def _make_step(task: Task, ctx: Context):
  """The task's per-batch step and the variables it takes (None: the evaluated model's)."""
  gradient_model = ctx.gradient_model(task.key.variant)
  if task.spec is None:
    return make_zero_gradient_step(ctx.model, gradient_model.model, near_zero=True,
                                   eot_draws=ctx.eot_draws), None
  if task.key.is_transfer:
    return (make_transfer_step(task.spec, ctx.model, ctx.transfer.model,
                               eot_draws=ctx.settings.eot_draws),
            {"target": ctx.variables, "source": ctx.transfer.variables})
  attack_model = gradient_model.model if task.spec.uses_gradients else ctx.model
  return make_attack_step(task.spec, ctx.model, attack_model, with_stats=True,
                          eot_draws=ctx.eot_draws, assg_bounds=gradient_model.assg_bounds), None


def run_task(task: Task, ctx: Context, before: Optional[np.ndarray]) -> tuple[np.ndarray, dict,
                                                                               int]:
  """Runs one task: ``(per-example flags, its entry's measured fields, compilations)``.

  ``before`` ([N] bool, or None for all): the images to attack; the others keep their flag.
  """
  step, variables = _make_step(task, ctx)
  step = counting_traces(step)
  total = len(ctx.labels)
  subset = None if before is None else np.flatnonzero(before)
  fields = {"total": total}
  if subset is not None and not subset.size:
    out = {k: np.zeros(0, np.int32) for k in ("forward", "backward", "queries", "correct")}
    timing = {"wall_time_s": 0.0}
  else:
    out, timing = measure(jit_step(step, ctx.mesh), ctx, key=attack_key(ctx.settings.seed,
                                                                         task.key.name),
                          epsilon=task.epsilon, subset=subset, variables=variables,
                          desc=f"{task.key.name} ε={eps255(task.epsilon)}")
  if task.spec is None:
    # The zero-gradient run counts examples; the others count correct (robust) examples.
    count, near, correct = (int(out[k].sum()) for k in ("zero", "near_zero", "correct"))
    fields.update(count=count, fraction=count / total, near_zero_count=near,
                  correct_clean=correct, fraction_of_correct=count / max(correct, 1),
                  near_zero_fraction_of_correct=near / max(correct, 1), **timing)
    return out["zero"].astype(bool), fields, step.count
  flags = out["correct"].astype(bool)
  attacked = total
  if subset is not None:
    flags, attacked = before.copy(), int(subset.size)
    flags[subset] = out["correct"].astype(bool)
    per_attacked = budget(out, attacked, scored=attacked * ctx.eot_draws) if attacked else {}
    fields.update({f"{k}_attacked": v for k, v in per_attacked.items()
                   if k.endswith("_per_image")},
                  attacked=attacked, fooled=int(before.sum() - flags.sum()))
  correct = int(flags.sum())
  fields.update(accuracy=correct / total, correct=correct,
                **budget(out, total, scored=attacked * ctx.eot_draws), **timing)
  return flags, fields, step.count


def evaluate_checkpoint(config, workdir: str) -> dict[str, Any]:
  """Robust accuracy of ``workdir``'s checkpoint under ``config.eval``'s attack suite.

  Resumable: a task whose record (attack and its settings, ε, seed, number of examples,
  checkpoint and its step, the gradient it follows, and for a cascade stage the stages before it)
  is unchanged and whose per-example flags are stored is not run again. The batch size is
  recorded but does not count as a setting.

  Args:
    config: a config with an ``eval`` section like ``configs/default.py``'s (or the section).
    workdir: a training workdir with a checkpoint.

  Returns:
    A summary: ``accuracies`` (table order, estimator variants, the ``standard`` cascade, worst
    case last), ``computed`` and ``reused`` run names (cascade stages as ``standard/<stage>``),
    ``traces`` (compilations per computed run), ``checks``, ``warnings``, ``table``, ``results``
    (the JSON) and ``paths``.

  Raises:
    ValueError: a bad setting, batch size or example count; ``CheckpointMismatch``; or an
      unreadable existing results file. Nothing is written in those cases.
    jsnn.workdir.CheckpointNotFound: no checkpoint of that kind in ``workdir``.
  """
  started = time.time()
  ctx = prepare(config, workdir)
  s = ctx.settings
  store = ResultStore(ctx.workdir, writes=ctx.is_main)
  results = store.results
  results.update(workdir=ctx.workdir, data=ctx.data_source,
                 model=ctx.run_config.model.to_dict(),
                 training=ctx.run_config.training.to_dict(), jsnn_version=JSNN_VERSION,
                 suite=s.suite, norm="linf", epsilon=s.epsilon,
                 # Direct encoding: the same input gives the same spikes, so no EOT is needed.
                 stochastic=models.is_stochastic(ctx.model),
                 encoding=ctx.run_config.model.get("encoding", "direct"),
                 setup_warnings=list(ctx.notes),
                 transfer_from=ctx.transfer.record if ctx.transfer else None)
  results.update(common_settings(ctx))
  results["eot_draws"] = ctx.eot_draws if models.is_stochastic(ctx.model) else None
  for note in ctx.notes:
    log.warning("WARNING: %s", note)

  tasks = plan(ctx)
  done: dict[TaskKey, Result] = {}
  computed, reused, traces = [], [], {}
  for task in tasks:
    record = task_record(task, ctx)
    fingerprint = store.fingerprint(task, record)
    result = store.get(task, fingerprint, len(ctx.labels))
    if result is not None:
      done[task.key] = result
      reused.append(task.key.name)
      continue
    before = done[task.after].flags if task.after is not None else None
    flags, fields, traces[task.key.name] = run_task(task, ctx, before)
    done[task.key] = store.put(task, fingerprint, {**record, **fields}, flags)
    computed.append(task.key.name)
    count = fields.get("correct", fields.get("count"))
    log.info("%s: %d/%d (%.2f%%) in %.1f s", task.key.name, count, fields["total"],
             100 * count / fields["total"], fields["wall_time_s"])

  suite = {t.key: done[t.key] for t in tasks if t.section == "attacks"}
  stages = [t for t in tasks if t.section == "cascade"]
  if stages:
    results["cascades"][STANDARD] = summary_lib.cascade_entry(ctx, stages, done)
    suite[TaskKey(STANDARD)] = done[stages[-1].key]
  else:
    results["cascades"].pop(STANDARD, None)
  # Worst case over the suite, per example: every attack, variant and the cascade.
  robust = worst_case({k.name: r.flags for k, r in suite.items()})
  results["worst_case"] = {
      "attacks": [k.name for k in suite], "epsilon": s.epsilon,
      "accuracy": int(robust.sum()) / len(robust), "correct": int(robust.sum()),
      "total": len(robust), **common_settings(ctx)}
  by_key = {t.key: t for t in tasks}
  results["estimators"] = summary_lib.estimator_summary(ctx, by_key, done)
  results["masking"] = summary_lib.masking_diagnostics(ctx, by_key, done)
  accuracies = {k: r.accuracy for k, r in suite.items()}
  accuracies[TaskKey(WORST_CASE)] = results["worst_case"]["accuracy"]
  checks = sanity_checks({
      "attacks": {t.key.name: done[t.key].entry for t in tasks
                  if t.section == "attacks" and not t.key.variant},
      "check_runs": {t.key.name: done[t.key].entry for t in tasks if t.section == "check_runs"},
      "masking": results["masking"]})
  results["checks"] = [c._asdict() for c in checks]
  warnings = [c for c in checks if not c.passed]
  results["wall_time_s"] = round(time.time() - started, 3)

  table = summary_lib.format_report(ctx, results, accuracies, checks, warnings)
  paths = {**store.paths, "csv": os.path.join(ctx.workdir, CSV_FILE)}
  if ctx.is_main:
    store.save()
    order = [k.name for k in suite if k.name != STANDARD]
    atomic_write(paths["csv"], lambda f: f.write(csv_table(results, order)))
    print(table, flush=True)
  return {"accuracies": {k.name: a for k, a in accuracies.items()}, "computed": computed,
          "reused": reused, "traces": traces,
          "checks": checks, "warnings": warnings, "table": table, "results": results,
          "paths": paths}
