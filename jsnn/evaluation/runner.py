"""The attack table of a checkpoint: restore, run every attack of the suite resumably, record.

:func:`evaluate_checkpoint` is the entry point (see :mod:`jsnn.evaluation` for the suites and what
is written); :func:`prepare` validates every input, restores the checkpoint and loads the test set
before anything runs or is written, and :func:`measure` times one step over the test set. The ε
sweep (:mod:`jsnn.evaluation.epsilon_sweep`) reuses both.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import time
from typing import Any, Callable, Mapping, NamedTuple, Optional

import jax
import numpy as np

from jsnn import __version__ as JSNN_VERSION
from jsnn import _io, attacks, checkpointing, data, errors, models, parallel
from jsnn import workdir as workdir_lib
from jsnn.tracing import counting_traces
from jsnn._io import atomic_write
from jsnn.evaluation.checks import LARGE_EPSILON, sanity_checks, worst_case
from jsnn.evaluation.records import (CSV_FILE, FLAGS_FILE, RESULTS_FILE, csv_table, eps255,
                                     live_flags, read_flags, read_json, settings_fingerprint,
                                     table_order, write_flags, write_json)
from jsnn.evaluation.settings import (NEAR_ZERO_GRADIENT, STANDARD, TRANSFER, WORST_CASE,
                                      EvalSettings, Estimator, attack_step_size,
                                      passes_per_image, settings_from_config)
from jsnn.evaluation.steps import (attack_key, jit_step, make_attack_step, make_transfer_step,
                                   make_zero_gradient_step, run_batches)
from jsnn.evaluation.summary import estimator_summary, format_report, masking_diagnostics

log = logging.getLogger("jsnn")


class CheckpointMismatch(errors.Error, ValueError):
  """The checkpoint cannot be restored into the model its saved config describes."""


class _Variant(NamedTuple):
  """An estimator variant: the model that gives the attacks their gradients, and its record."""
  estimator: Estimator
  attack_model: Any
  surrogate: dict


class _Transfer(NamedTuple):
  """The source of the transfer attacks (eval.transfer_from): its model, variables and record."""
  model: Any
  variables: Any
  record: dict


class _Context(NamedTuple):
  settings: EvalSettings
  workdir: str
  mesh: Any
  run_config: Any
  model: Any
  attack_model: Any
  variables: Any
  meta: dict
  surrogate: dict
  images: np.ndarray
  labels: np.ndarray
  data_source: str
  is_main: bool
  variants: dict = {}
  eot_draws: int = 1                   # what the steps use: eval.eot_draws, or 1 if deterministic
  notes: tuple = ()                    # warnings about the setup, printed and recorded
  transfer: Optional["_Transfer"] = None


def _surrogate_override(name: str, width: Optional[float]) -> dict:
  """``model_from_config`` overrides for surrogate ``name`` (width None/0: its own default)."""
  return dict(surrogate=name, surrogate_width=width or None)


def _restore(settings: EvalSettings, workdir: str):
  """``(config, model, attack_model, variables, meta, surrogate, variants)``; explains failures."""
  try:
    run_config, model, variables, meta = workdir_lib.restore_model(workdir, settings.checkpoint)
  except (workdir_lib.CheckpointNotFound, checkpointing.MetaUnreadable):
    raise   # they say which file, and what to do
  except Exception as e:
    raise CheckpointMismatch(
        f"cannot restore the {settings.checkpoint!r} checkpoint of {workdir}: the model its saved "
        f"config describes does not match the stored arrays (was the checkpoint written by another "
        f"jsnn version, or its meta edited?), or its files are damaged (it is left untouched). "
        f"({checkpointing.reason(e)})") from e
  # The saved config builds the model; the arrays must have exactly its shapes.
  expected = jax.eval_shape(lambda: models.init_model(model, jax.random.key(0)))
  got = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), variables)
  if (jax.tree_util.tree_structure(expected) != jax.tree_util.tree_structure(got)
      or jax.tree_util.tree_leaves(expected) != jax.tree_util.tree_leaves(got)):
    raise CheckpointMismatch(
        f"the {settings.checkpoint!r} checkpoint of {workdir} holds variables that do not match "
        f"the model {run_config.model.name} of its saved config")
  m = run_config.model
  base_override = {}
  if settings.surrogate:
    width = settings.surrogate_width or None
    base_override = _surrogate_override(settings.surrogate, width)
    attack_model = workdir_lib.model_from_config(run_config, meta["num_classes"], **base_override)
    surrogate = {"name": settings.surrogate, "width": width, "source": "eval.surrogate"}
  else:
    attack_model = model
    surrogate = {"name": m.surrogate, "width": m.surrogate_width, "source": "model"}
  variants = {}
  for estimator in settings.estimators:
    if estimator.surrogate:
      width = estimator.width or None
      override = _surrogate_override(estimator.surrogate, width)
      record = {"name": estimator.surrogate, "width": width, "source": "eval.estimators"}
    else:
      # Rate-based estimators keep the evaluation's surrogate (HART uses it per step).
      override, record = dict(base_override), dict(surrogate)
    record["gradient_estimator"] = estimator.gradient_estimator
    variant_model = workdir_lib.model_from_config(
        run_config, meta["num_classes"], gradient_estimator=estimator.gradient_estimator,
        **override)
    variants[estimator.name] = _Variant(estimator, variant_model, record)
  return run_config, model, attack_model, variables, meta, surrogate, variants


def load_test_set(run_config, *, data_dir: str = "", tfds_data_dir: str = ""):
  """The test split the run was evaluated on during training: ``(images, labels, source)``.

  Synthetic runs regenerate the synthetic test set from the run's seed, exactly as
  ``data.load_dataset`` does; CIFAR runs read the saved ``data.dir`` (or TFDS), unless
  ``data_dir``/``tfds_data_dir`` point elsewhere (the data moved to another machine).
  """
  d = run_config.data
  if d.name == "synthetic":
    images, labels = data.make_synthetic(data.SYNTHETIC_TEST_SIZE, data.NUM_CLASSES["synthetic"],
                                         seed=run_config.seed, split="test")
    return images, labels, f"synthetic(seed={run_config.seed}) test"
  data_dir = data_dir or d.dir or None
  tfds_data_dir = tfds_data_dir or d.tfds_data_dir or None
  images, labels = data.load_split(d.name, "test", data_dir=data_dir, tfds_data_dir=tfds_data_dir,
                                   download=d.download)
  where = f"npz:{os.path.abspath(data_dir)}" if data_dir else f"tfds:{d.name}"
  return images, labels, f"{d.name} test ({where})"


def prepare(config, workdir: str) -> _Context:
  """Everything that can fail on bad input, before any attack runs or any file is written."""
  settings = settings_from_config(config)
  mesh = parallel.make_mesh()
  if settings.batch_size % mesh.devices.size:
    n = mesh.devices.size
    raise ValueError(f"eval.batch_size {settings.batch_size} is not divisible by the {n} devices; "
                     f"use a multiple of {n} (e.g. --config.eval.batch_size="
                     f"{max(n, settings.batch_size // n * n)})")
  workdir = os.path.abspath(workdir)
  if os.path.isdir(workdir) and jax.process_index() == 0:
    # Results are written after the first attack; a read-only run fails now, not then.
    _io.check_writable([workdir], todo=f"; make it writable (chmod -R u+w {workdir}), or "
                       f"evaluate a copy of the run (cp -r {workdir} COPY; python evaluate.py "
                       f"--workdir COPY)")
  run_config, model, attack_model, variables, meta, surrogate, variants = _restore(
      settings, workdir)
  targeted = [s for s in settings.cascade + settings.specs if s.kind == "apgd-t"]
  if targeted:
    num_classes = int(meta["num_classes"])
    targets = max(s.num_targets for s in targeted)
    if num_classes < 4 or targets > num_classes - 1:
      raise ValueError(f"APGD-T needs at least 4 classes and at most classes − 1 = "
                       f"{num_classes - 1} targets; got {num_classes} classes and "
                       f"eval.apgd_targets = {targets}")
  images, labels, source = load_test_set(run_config, data_dir=settings.data_dir,
                                         tfds_data_dir=settings.tfds_data_dir)
  if settings.num_examples > len(labels):
    raise ValueError(f"eval.num_examples {settings.num_examples} is more than the "
                     f"{len(labels)} test examples of {source}")
  if settings.num_examples:
    images, labels = images[:settings.num_examples], labels[:settings.num_examples]
  eot_draws, notes = settings.eot_draws, []
  if models.is_stochastic(model) and eot_draws == 1:
    notes.append(
        f"the model is stochastic ({run_config.model.encoding} input encoding) but eval.eot_draws "
        f"is 1: every attack follows the gradient of a single random draw and every prediction is "
        f"one draw, which overstates robustness (the randomness masks the gradient). Set "
        f"--config.eval.eot_draws to 10 or more.")
  elif not models.is_stochastic(model) and eot_draws > 1:
    notes.append(f"eval.eot_draws = {eot_draws} ignored: the model is deterministic "
                 f"({run_config.model.get('encoding', 'direct')} encoding), every draw is the same")
    eot_draws = 1
  transfer = _restore_transfer_source(settings, workdir, run_config, meta)
  return _Context(settings, workdir, mesh, run_config, model, attack_model, variables, meta,
                  surrogate, images, labels.astype(np.int32), source, jax.process_index() == 0,
                  variants, eot_draws, tuple(notes), transfer)


def _restore_transfer_source(settings: EvalSettings, workdir: str, run_config,
                             meta) -> Optional[_Transfer]:
  """The model of ``eval.transfer_from``, checked to classify the same data."""
  if not settings.transfer_from:
    return None
  source_dir = os.path.abspath(settings.transfer_from)
  if source_dir == workdir:
    raise ValueError(f"eval.transfer_from is the evaluated workdir itself ({source_dir}); name "
                     f"another run, e.g. the same model trained with another surrogate")
  if not os.path.isdir(source_dir):
    raise ValueError(f"eval.transfer_from {settings.transfer_from!r} is not a directory")
  src_config, src_model, src_variables, src_meta = workdir_lib.restore_model(
      source_dir, settings.checkpoint)
  if (src_config.data.name != run_config.data.name
      or int(src_meta["num_classes"]) != int(meta["num_classes"])):
    raise ValueError(f"eval.transfer_from {source_dir} was trained on {src_config.data.name} "
                     f"({src_meta['num_classes']} classes), the evaluated model on "
                     f"{run_config.data.name} ({meta['num_classes']} classes)")
  m = src_config.model
  record = {"workdir": source_dir, "checkpoint": settings.checkpoint,
            "checkpoint_step": int(src_meta["step"]), "model": m.name, "neuron": m.neuron,
            "surrogate": m.surrogate, "surrogate_width": m.surrogate_width,
            "encoding": m.get("encoding", "direct"), "seed": src_config.seed}
  return _Transfer(src_model, src_variables, record)


def common_settings(ctx: _Context, variant: Optional[str] = None) -> dict:
  """What identifies a result besides the attack: the model, the examples, the seed, and the
  gradient the attack follows (an estimator variant adds its estimator)."""
  surrogate = ctx.variants[variant].surrogate if variant in ctx.variants else ctx.surrogate
  common = {"checkpoint": ctx.settings.checkpoint, "checkpoint_step": int(ctx.meta["step"]),
            "dataset": ctx.run_config.data.name, "num_examples": len(ctx.labels),
            "seed": ctx.settings.seed, "surrogate": surrogate["name"],
            "surrogate_width": surrogate["width"]}
  if variant == TRANSFER:
    common.update(surrogate=ctx.transfer.record["surrogate"],
                  surrogate_width=ctx.transfer.record["surrogate_width"],
                  transfer_from=ctx.transfer.record)
  elif variant:
    common["gradient_estimator"] = surrogate["gradient_estimator"]
    common["estimator"] = variant
  if models.is_stochastic(ctx.model):
    # Keys only stochastic models have, so that deterministic results keep their fingerprints.
    common["eot_draws"] = ctx.eot_draws
  return common


def attack_settings(spec: attacks.AttackSpec, epsilon: float, ctx: _Context,
                     variant: Optional[str] = None) -> dict:
  """What identifies one attack's result (its fingerprint is the resume key), and its budget."""
  fwd, bwd = _expected_passes(spec, ctx, variant)
  common = common_settings(ctx, variant)
  # Settings that cannot change this attack's result are left out, so changing them reuses it.
  if not spec.needs_key:
    common["seed"] = None
  if not spec.uses_gradients:
    common["surrogate"] = common["surrogate_width"] = None
  settings = {"attack": spec.name, "kind": spec.kind,
              "epsilon": 0.0 if spec.kind == "clean" else epsilon,
              "steps": spec.num_steps if spec.kind in ("pgd", "apgd", "apgd-t", "sa-pgd") else
              (1 if spec.kind == "fgsm" else 0),
              "step_size": attack_step_size(spec, epsilon),
              "loss": None if spec.kind == "clean" else spec.loss,
              "norm": None if spec.kind == "clean" else spec.norm,
              "random_start": spec.needs_key,
              "restarts": spec.num_restarts if spec.kind in ("apgd", "apgd-t", "sa-pgd") else None,
              "rho": spec.rho if spec.kind in ("apgd", "apgd-t") else None,
              "forward_passes_per_image": fwd, "backward_passes_per_image": bwd, **common}
  # Keys of the newer attacks only, so that the older attacks' fingerprints stay as they were.
  if spec.kind == "apgd-t":
    settings["targets"] = spec.num_targets
  bounds = _assg_bounds(ctx, variant)
  if bounds and spec.uses_gradients:
    settings["assg_bounds"] = list(bounds)
  if spec.kind == "square":
    settings.update(steps=None, loss="margin", queries=spec.num_queries, p_init=spec.p_init)
  return settings


def _expected_passes(spec: attacks.AttackSpec, ctx: _Context,
                     variant: Optional[str] = None) -> tuple[int, int]:
  """:func:`passes_per_image`, each EOT draw counted as a pass (a transfer attack's on its source
  model, the scoring votes on the evaluated one)."""
  source_draws = ctx.eot_draws
  if variant == TRANSFER:
    source_draws = ctx.settings.eot_draws if models.is_stochastic(ctx.transfer.model) else 1
  # ASSG's search runs the attack, and scores its result, once per bound A.
  runs = max(len(_assg_bounds(ctx, variant)), 1) if spec.uses_gradients else 1
  forward, backward = passes_per_image(spec, attack_draws=source_draws * runs,
                                       vote_draws=ctx.eot_draws)
  return forward + (runs - 1) * ctx.eot_draws, backward


def _assg_bounds(ctx: _Context, variant: Optional[str]) -> tuple[float, ...]:
  """The bounds A an ASSG variant's search tries (eval.assg_search), () for any other gradient."""
  if variant in ctx.variants and ctx.variants[variant].estimator.gradient_estimator == "assg":
    return ctx.settings.assg_bounds
  return ()


def measure(step, ctx: _Context, *, key, epsilon: float, desc: str, subset=None,
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


def _number(value: float):
  """A count per image for the JSON: an int when it is one, else 4 decimals."""
  return int(round(value)) if abs(value - round(value)) < 1e-9 else round(float(value), 4)


def _budget(out: Mapping[str, np.ndarray], total: int, scored: int) -> dict:
  """Passes and queries per image of ``total`` images, from a step's per-example stats.

  ``scored`` images got one more forward (the scoring of the adversarial image).
  """
  forward = int(out["forward"].astype(np.int64).sum()) + scored
  backward = int(out["backward"].astype(np.int64).sum())
  queries = out["queries"].astype(np.int64)
  budget = {"forward_passes_per_image": _number(forward / max(total, 1)),
            "backward_passes_per_image": _number(backward / max(total, 1)),
            "queries_per_image": _number(int(queries.sum()) / max(total, 1))}
  attacked = queries[queries > 0]
  if attacked.size:
    budget.update(queries_mean_attacked=_number(float(attacked.mean())),
                  queries_median_attacked=_number(float(np.median(attacked))),
                  queries_max=int(attacked.max()))
  return budget


class _Task(NamedTuple):
  section: str          # "attacks" or "check_runs"
  name: str             # key in the section
  spec: Optional[attacks.AttackSpec]   # None: the zero-gradient count
  epsilon: float
  variant: Optional[str] = None        # estimator variant (eval.estimators entry) or TRANSFER


def _tasks(ctx: _Context) -> tuple[list[_Task], list[str]]:
  """The runs of the suite (table order, then estimator variants) and of the sanity checks."""
  s = ctx.settings
  specs = {spec.name: spec for spec in s.specs}
  order = table_order(list(specs))
  tasks = [_Task("attacks", name, specs[name], s.epsilon) for name in order]
  for name in order:
    if specs[name].uses_gradients:
      tasks += [_Task("attacks", f"{name}@{v}", specs[name], s.epsilon, v) for v in ctx.variants]
  if ctx.transfer is not None:
    tasks += [_Task("attacks", f"{name}@{TRANSFER}", specs[name], s.epsilon, TRANSFER)
              for name in order if specs[name].uses_gradients]
  if s.sanity_checks:
    large = dataclasses.replace(attacks.get_attack_spec("pgd10"), name="pgd10-large-epsilon",
                                step_size=None, epsilon=LARGE_EPSILON)
    tasks += [_Task("check_runs", "large_epsilon", large, LARGE_EPSILON),
              _Task("check_runs", "zero_gradient", None, 0.0)]
    tasks += [_Task("check_runs", f"zero_gradient@{v}", None, 0.0, v) for v in ctx.variants]
  return tasks, [t.name for t in tasks if t.section == "attacks"]


def _task_settings(task: _Task, ctx: _Context) -> dict:
  if task.spec is None:
    return {"attack": "zero-gradient", "loss": "ce", **common_settings(ctx, task.variant),
            "seed": None, "near_zero_max_abs": NEAR_ZERO_GRADIENT}
  return attack_settings(task.spec, task.epsilon, ctx, task.variant)


def _run_task(task: _Task, ctx: _Context) -> tuple[np.ndarray, dict, int]:
  """Runs one task over the test set: ``(per-example flags, its JSON entry fields, traces)``."""
  attack_model = (ctx.variants[task.variant].attack_model if task.variant in ctx.variants
                  else ctx.attack_model)
  variables = None
  if task.spec is None:
    step = make_zero_gradient_step(ctx.model, attack_model, near_zero=True,
                                   eot_draws=ctx.eot_draws)
  elif task.variant == TRANSFER:
    step = make_transfer_step(task.spec, ctx.model, ctx.transfer.model,
                              eot_draws=ctx.settings.eot_draws)
    variables = {"target": ctx.variables, "source": ctx.transfer.variables}
  else:
    step = make_attack_step(task.spec, ctx.model, attack_model, with_stats=True,
                            eot_draws=ctx.eot_draws,
                            assg_bounds=_assg_bounds(ctx, task.variant))
  step = counting_traces(step)
  out, timing = measure(jit_step(step, ctx.mesh), ctx, key=attack_key(ctx.settings.seed,
                                                                       task.name),
                         epsilon=task.epsilon, desc=f"{task.name} ε={eps255(task.epsilon)}",
                         variables=variables)
  total = len(ctx.labels)
  if task.spec is None:
    # The zero-gradient run counts examples; the others count correct (robust) examples.
    count, near, correct = (int(out[k].sum()) for k in ("zero", "near_zero", "correct"))
    fields = {"count": count, "fraction": count / total, "near_zero_count": near,
              "correct_clean": correct, "fraction_of_correct": count / max(correct, 1),
              "near_zero_fraction_of_correct": near / max(correct, 1)}
    return out["zero"].astype(bool), {**fields, "total": total, **timing}, step.count
  correct = int(out["correct"].sum())
  budget = _budget(out, total, scored=total * ctx.eot_draws)
  if task.spec.kind != "square":
    # Everything but Square runs a fixed number of passes: the count is known beforehand.
    expected = _expected_passes(task.spec, ctx, task.variant)
    got = (budget["forward_passes_per_image"], budget["backward_passes_per_image"])
    if got != expected:
      raise RuntimeError(f"{task.name} ran {got} (forward, backward) passes per image, not the "
                         f"{expected} its structure implies: a bug in jsnn's pass counting")
  fields = {"accuracy": correct / total, "correct": correct, "total": total, **budget, **timing}
  return out["correct"].astype(bool), fields, step.count


def _run_cascade(ctx: _Context, start: np.ndarray, start_fingerprint: str, previous: dict,
                 stored_flags: Mapping[str, np.ndarray], save: Callable) -> dict:
  """The ``standard`` cascade: each stage attacks only the images still correct before it.

  Args:
    ctx: the evaluation.
    start: [N] bool, the images the first stage attacks (those classified correctly, clean).
    start_fingerprint: what ``start`` was computed with; every stage's fingerprint chains on it.
    previous: the cascade's entry of an earlier run (or {}), to reuse unchanged stages.
    stored_flags: the stored per-example flags.
    save: ``save(entry, new_flags)`` records progress after each computed stage.

  Returns:
    The cascade's entry: ``stages`` ({name: entry}), ``order``, and the final ``accuracy``,
    ``correct``, ``total``, passes and queries per image (its clean forward included), wall time;
    plus ``flags`` ({flag key: [N] bool}) and ``computed``/``reused``/``traces`` for the summary
    (removed before writing).
  """
  s = ctx.settings
  total = len(ctx.labels)
  robust = np.asarray(start, bool).copy()
  fingerprint = start_fingerprint
  old_stages = previous.get("stages", {}) if isinstance(previous, dict) else {}
  entry = {"stages": {}, "order": [spec.name for spec in s.cascade], "start_correct":
           int(robust.sum()), "epsilon": s.epsilon}
  flags, computed, reused, traces = {}, [], [], {}
  for spec in s.cascade:
    stage_settings = {**attack_settings(spec, s.epsilon, ctx), "cascade": STANDARD,
                      "after": fingerprint}
    fingerprint = settings_fingerprint(stage_settings)
    flag_key = f"{STANDARD}/{spec.name}-{fingerprint}"
    old = old_stages.get(spec.name)
    if (isinstance(old, dict) and old.get("fingerprint") == fingerprint
        and flag_key in stored_flags and stored_flags[flag_key].shape == robust.shape):
      robust = np.asarray(stored_flags[flag_key], bool)
      flags[flag_key] = robust
      entry["stages"][spec.name] = old
      reused.append(spec.name)
      continue
    subset = np.flatnonzero(robust)
    before = int(robust.sum())
    attack_model = ctx.attack_model if spec.uses_gradients else ctx.model
    step = counting_traces(make_attack_step(spec, ctx.model, attack_model, with_stats=True,
                                             eot_draws=ctx.eot_draws))
    if subset.size:
      out, timing = measure(jit_step(step, ctx.mesh), ctx,
                             key=attack_key(s.seed, f"{STANDARD}/{spec.name}"),
                             epsilon=s.epsilon, subset=subset,
                             desc=f"{STANDARD}/{spec.name} ε={eps255(s.epsilon)}")
      robust = robust.copy()
      robust[subset] = out["correct"].astype(bool)
    else:
      out = {k: np.zeros(0, np.int32) for k in ("forward", "backward", "queries")}
      timing = {"wall_time_s": 0.0}
    traces[spec.name] = step.count
    correct = int(robust.sum())
    attacked = int(subset.size)
    stage = {**stage_settings, "attacked": attacked, "fooled": before - correct,
             "accuracy": correct / total, "correct": correct, "total": total,
             **_budget(out, total, scored=attacked * ctx.eot_draws), **timing,
             "fingerprint": fingerprint}
    if attacked:
      per_attacked = _budget(out, attacked, scored=attacked * ctx.eot_draws)
      stage.update({f"{k}_attacked": v for k, v in per_attacked.items()
                    if k.endswith("_per_image")})
    entry["stages"][spec.name] = stage
    flags[flag_key] = robust
    computed.append(spec.name)
    log.info("%s/%s: attacked %d, %d/%d (%.2f%%) still correct in %.1f s", STANDARD, spec.name,
             attacked, correct, total, 100 * correct / total, timing["wall_time_s"])
    save({**entry, "flags": flags})
  stages = [entry["stages"][n] for n in entry["order"]]
  for key in ("forward_passes_per_image", "backward_passes_per_image", "queries_per_image"):
    # The clean forward (votes) that chose the first stage's images counts once per image.
    entry[key] = _number(sum(float(st[key]) for st in stages)
                         + ctx.eot_draws * key.startswith("forward"))
  entry.update(accuracy=int(robust.sum()) / total, correct=int(robust.sum()), total=total,
               wall_time_s=round(sum(float(st.get("wall_time_s", 0)) for st in stages), 3),
               after=start_fingerprint)
  return {**entry, "flags": flags, "final_flags": robust, "computed": computed,
          "reused": reused, "traces": traces}


def evaluate_checkpoint(config, workdir: str) -> dict[str, Any]:
  """Robust accuracy of ``workdir``'s checkpoint under ``config.eval``'s attack suite.

  Resumable: an attack whose entry in ``robustness.json`` has the same settings (attack, ε, steps,
  step size, seed, number of examples, checkpoint and its step, surrogate and gradient estimator)
  and whose per-example flags are stored is not run again; a cascade stage is reused when it and
  everything before it are unchanged. The batch size is recorded but does not count as a setting.

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
    workdir_lib.CheckpointNotFound: no checkpoint of that kind in ``workdir``.
  """
  started = time.time()
  ctx = prepare(config, workdir)
  s = ctx.settings
  paths = {k: os.path.join(ctx.workdir, f) for k, f in
           (("json", RESULTS_FILE), ("flags", FLAGS_FILE), ("csv", CSV_FILE))}
  results = read_json(paths["json"], "robustness results") or {}
  stored_flags = read_flags(paths["flags"])
  for section in ("attacks", "check_runs", "cascades"):
    results.setdefault(section, {})
    if not isinstance(results[section], dict):
      raise ValueError(f"{paths['json']} has a malformed {section!r} section; move it away to "
                       "start afresh (it is left untouched)")
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

  def save_progress(new_flags):
    nonlocal stored_flags
    if ctx.is_main:
      # Flags first: a JSON entry is only trusted when its flags are stored too.
      stored_flags = live_flags(results, {**stored_flags, **new_flags})
      write_flags(paths["flags"], stored_flags)
      write_json(paths["json"], results)

  tasks, order = _tasks(ctx)
  computed, reused, traces = [], [], {}
  flags = {}   # This run's per-example flags, keyed like the .npz: "<name>-<fingerprint>".
  fingerprints = {}
  for task in tasks:
    task_settings = _task_settings(task, ctx)
    fingerprint = settings_fingerprint(task_settings)
    fingerprints[task.name] = fingerprint
    flag_key = f"{task.name}-{fingerprint}"
    entry = results[task.section].get(task.name)
    if (isinstance(entry, dict) and entry.get("fingerprint") == fingerprint
        and flag_key in stored_flags and stored_flags[flag_key].shape == ctx.labels.shape):
      flags[flag_key] = stored_flags[flag_key]
      reused.append(task.name)
      continue
    task_flags, fields, traces[task.name] = _run_task(task, ctx)
    flags[flag_key] = task_flags
    results[task.section][task.name] = {**task_settings, **fields, "fingerprint": fingerprint}
    computed.append(task.name)
    count = fields.get("correct", fields.get("count"))
    log.info("%s: %d/%d (%.2f%%) in %.1f s", task.name, count, fields["total"],
             100 * count / fields["total"], fields["wall_time_s"])
    save_progress({flag_key: task_flags})

  suite_flags = {n: flags[f"{n}-{fingerprints[n]}"] for n in order}
  cascade = None
  if s.cascade:
    clean_key = f"clean-{fingerprints['clean']}"

    def save_cascade(partial):
      results["cascades"][STANDARD] = {k: v for k, v in partial.items() if k != "flags"}
      save_progress(partial["flags"])

    cascade = _run_cascade(ctx, flags[clean_key], fingerprints["clean"],
                           results["cascades"].get(STANDARD, {}), stored_flags, save_cascade)
    flags.update(cascade.pop("flags"))
    suite_flags[STANDARD] = cascade.pop("final_flags")
    computed += [f"{STANDARD}/{n}" for n in cascade.pop("computed")]
    reused += [f"{STANDARD}/{n}" for n in cascade.pop("reused")]
    traces.update({f"{STANDARD}/{n}": c for n, c in cascade.pop("traces").items()})
    results["cascades"][STANDARD] = cascade
  else:
    results["cascades"].pop(STANDARD, None)

  # Worst case over the suite, per example: every attack, variant and the cascade.
  robust = worst_case(suite_flags)
  results["worst_case"] = {
      "attacks": list(suite_flags), "epsilon": s.epsilon,
      "accuracy": int(robust.sum()) / len(robust), "correct": int(robust.sum()),
      "total": len(robust), **common_settings(ctx)}
  results["estimators"] = estimator_summary(ctx, order, suite_flags, results)
  results["masking"] = masking_diagnostics(ctx, suite_flags, results, flags)
  accuracies = {n: results["attacks"][n]["accuracy"] for n in order}
  if cascade is not None:
    accuracies[STANDARD] = cascade["accuracy"]
  accuracies[WORST_CASE] = results["worst_case"]["accuracy"]

  base_names = [n for n in order if "@" not in n]
  suite_results = {"attacks": {n: results["attacks"][n] for n in base_names},
                   "check_runs": ({n: v for n, v in results["check_runs"].items()
                                   if n in {t.name for t in tasks}} if s.sanity_checks else {}),
                   "masking": results["masking"]}
  checks = sanity_checks(suite_results)
  results["checks"] = [c._asdict() for c in checks]
  warnings = [c for c in checks if not c.passed]
  results["wall_time_s"] = round(time.time() - started, 3)

  table = format_report(ctx, results, accuracies, checks, warnings)
  if ctx.is_main:
    write_json(paths["json"], results)
    atomic_write(paths["csv"], lambda f: f.write(csv_table(results, order)))
    print(table, flush=True)
  return {"accuracies": accuracies, "computed": computed, "reused": reused, "traces": traces,
          "checks": checks, "warnings": warnings, "table": table, "results": results,
          "paths": paths}
