"""``train_and_evaluate(config, workdir)``: the training loop, top to bottom.

Sections: config → devices → data → model and optimiser → resume → compiled step → loop (progress
bar, per-epoch log line, clean test accuracy, metrics files, checkpoints). The step itself is pure
and lives in :mod:`jsnn.train_step`; this file owns every side effect.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import signal
import sys
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import jsnn
from jsnn import (_io, checkpointing, data, errors, metric_files, models, parallel, tracing,
                  train_state, train_step)
from jsnn import workdir as workdir_lib

log = logging.getLogger("jsnn")

class TrainingDiverged(errors.Error, FloatingPointError):
  """The loss became NaN or infinite."""


# -------------------------------------------------------------------------------------------------
# Metrics output (process 0 only)
# -------------------------------------------------------------------------------------------------


METRICS_FILE = _io.METRICS_FILE


class MetricWriter:
  """JSON lines in ``workdir/metrics.jsonl`` and TensorBoard events in ``workdir/tensorboard``.

  ``resume_step``: the step the run resumes from; records after it, left by a run killed before
  their checkpoint committed, are dropped first (see :mod:`jsnn.metric_files`).
  """

  def __init__(self, workdir: str, enabled: bool, *, resume_step: int = 0):
    self.enabled = enabled
    self._tb = None
    if not enabled:
      return
    path, logdir = os.path.join(workdir, METRICS_FILE), os.path.join(workdir, "tensorboard")
    dropped = (metric_files.drop_records_after(path, resume_step),
               metric_files.drop_events_after(logdir, resume_step))
    if any(dropped):
      log.info("dropped %d records and %d events after step %d, left by a killed run", *dropped,
               resume_step)
    self._jsonl = open(path, "a")
    try:
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(logdir)
    except ImportError:  # pragma: no cover - tensorboardX is a dependency
      log.warning("tensorboardX is not installed: no TensorBoard events")

  def write(self, step: int, scalars: dict) -> None:
    if not self.enabled:
      return
    self._jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in scalars.items():
        if isinstance(v, (int, float)):
          self._tb.add_scalar(k, v, step)
      self._tb.flush()

  def close(self):
    if self.enabled:
      self._jsonl.close()
      if self._tb is not None:
        self._tb.close()


# -------------------------------------------------------------------------------------------------
# The loop
# -------------------------------------------------------------------------------------------------


def evaluate_clean(eval_fn, variables, images, labels, batch_size, mesh) -> float:
  """Clean accuracy over a split, every example counted once (padded, masked batches)."""
  correct = count = 0
  for x, y, mask in data.eval_batches(images, labels, batch_size):
    out = eval_fn(variables, parallel.put_batch(x, mesh), parallel.put_batch(y, mesh),
                  parallel.put_batch(mask, mesh))
    correct, count = correct + out["correct"], count + out["count"]
  return float(correct) / max(int(count), 1)   # host sync: once per evaluation


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       stop_after_epoch: Optional[int] = None) -> dict[str, Any]:
  """Trains a model as ``config`` says, checkpointing to and resuming from ``workdir``.

  Args:
    config: a config like ``configs/default.py``'s.
    workdir: where checkpoints, metrics and the resolved config go; an existing run there resumes.
    stop_after_epoch: stop (as if preempted) once this epoch has been checkpointed; the next call
      resumes and ends exactly where an uninterrupted run would.

  Returns:
    A summary: final and best accuracies, steps, wall time, and the final ``state``.
  """
  # --- Config and devices ------------------------------------------------------------------------
  config = workdir_lib.resolve_config(config)
  parallel.maybe_initialize_distributed(config.distributed)
  is_main = jax.process_index() == 0
  mesh = parallel.make_mesh()
  t = config.training
  parallel.check_batch_size(t.batch_size, mesh)
  if t.eval_batch_size % mesh.devices.size:
    raise ValueError(f"training.eval_batch_size {t.eval_batch_size} is not divisible by the "
                     f"{mesh.devices.size} devices")
  # A bad model setting fails here, before the workdir is created.
  workdir_lib.model_from_config(config, data.NUM_CLASSES.get(config.data.name, 10))
  workdir = os.path.abspath(workdir)
  _check_workdir_writable(workdir)
  workdir_lib.check_resume_config(workdir, config)

  # --- Data --------------------------------------------------------------------------------------
  d = config.data
  dataset = data.load_dataset(d.name, data_dir=d.dir or None, tfds_data_dir=d.tfds_data_dir or None,
                              download=d.download, train_size=d.train_size or None,
                              validation_size=d.validation_size, seed=config.seed)
  log.info("data: %s (%d train, %d validation, %d test)", dataset.source,
           len(dataset.train_labels), len(dataset.validation_labels), len(dataset.test_labels))
  train_images = parallel.put_replicated(dataset.train_images, mesh)
  train_labels = parallel.put_replicated(dataset.train_labels.astype(np.int32), mesh)
  num_train = len(dataset.train_labels)
  steps_per_epoch = data.steps_per_epoch(num_train, t.batch_size)
  if t.steps_per_epoch:
    steps_per_epoch = min(steps_per_epoch, t.steps_per_epoch)
  total_steps = steps_per_epoch * t.epochs
  # Only now that every input has been read is anything written.
  os.makedirs(workdir, exist_ok=True)
  ckpt = checkpointing.Checkpoints(workdir, keep_latest=config.logging.keep_checkpoints)

  # --- Model, optimiser, state -------------------------------------------------------------------
  model = workdir_lib.model_from_config(config, dataset.num_classes)
  tx, schedule = train_step.make_optimizer(
      learning_rate=t.learning_rate, epochs=t.epochs, steps_per_epoch=steps_per_epoch,
      momentum=t.momentum, weight_decay=t.weight_decay)
  abstract = train_state.abstract_train_state(model, tx, parallel.replicated(mesh))
  meta = {"config": config.to_dict(), "num_classes": dataset.num_classes,
          "steps_per_epoch": steps_per_epoch, "jsnn_version": jsnn.__version__}
  best_accuracy = -1.0
  latest = ckpt.latest_step()
  if latest is not None:
    try:
      state, saved_meta = ckpt.restore("latest", abstract)
    except Exception as e:  # noqa: BLE001 - orbax raises ValueError, OSError, Exception, ...
      ckpt.close()
      raise ckpt.unreadable("latest", latest, e) from e
    best_accuracy = saved_meta.get("best_accuracy", -1.0)
    log.info("resumed from %s at step %d", ckpt.root, int(state.step))
  else:
    init = jax.jit(functools.partial(train_state.create_train_state, model, tx),
                   out_shardings=parallel.replicated(mesh))
    state = init(jax.random.key(config.seed))
    if is_main:
      with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(config.to_json_best_effort(indent=2))
  start_step = int(state.step)   # host sync: once, before the loop

  # --- Compiled step ------------------------------------------------------------------------------
  settings = workdir_lib.step_settings(config)
  traced_step = tracing.counting_traces(
      functools.partial(train_step.train_step, model=model, tx=tx, schedule=schedule,
                        settings=settings, batch_sharding=parallel.batch_sharding(mesh)))
  step_fn = jax.jit(traced_step, donate_argnums=0, out_shardings=parallel.replicated(mesh))
  # A stochastic model's per-epoch accuracy is one fixed draw, the same every epoch.
  eval_key = jax.random.key(config.seed) if models.is_stochastic(model) else None
  eval_fn = jax.jit(functools.partial(train_step.eval_step, model=model, key=eval_key),
                    out_shardings=parallel.replicated(mesh))
  # Spikes are Heaviside of the membrane, so NaN inputs can vanish from the loss while the batch
  # statistics and parameters go NaN: check the state too.
  state_is_finite = jax.jit(lambda s: jnp.all(jnp.stack([
      jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves((s.params, s.batch_stats))])))

  writer = MetricWriter(workdir, is_main, resume_step=start_step)
  summary = {"start_step": start_step, "total_steps": total_steps}
  try:
    if start_step >= total_steps:
      log.info("training already complete (%d steps)", total_steps)
    first_epoch = start_step // steps_per_epoch
    train_start = time.time()
    for epoch in range(first_epoch, t.epochs):
      epoch_start = time.time()
      epoch_steps = range(max(start_step, epoch * steps_per_epoch), (epoch + 1) * steps_per_epoch)
      step_metrics = []
      bar = _progress(config, epoch, len(epoch_steps), is_main)
      for step in epoch_steps:
        state, metrics = step_fn(state, train_images, train_labels)
        step_metrics.append(metrics)
        if bar is not None:
          bar.update(1)
          if (step + 1) % config.logging.log_every_steps == 0:
            bar.set_postfix(loss=f"{float(metrics['loss']):.4f}")   # host sync: log boundary
      if bar is not None:
        bar.close()
      # Host sync: the epoch's metrics, once per epoch.
      means = {k: float(np.mean(v)) for k, v in jax.device_get(
          {k: jnp.stack([m[k] for m in step_metrics]) for k in step_metrics[0]}).items()}
      end_step = (epoch + 1) * steps_per_epoch
      bad = sorted(k for k, v in means.items() if not math.isfinite(v))
      if not bad and not bool(state_is_finite(state)):   # host sync: once per epoch
        bad = ["parameters or batch statistics"]
      if bad:
        raise TrainingDiverged(_diverged_message(bad, epoch_steps[0], end_step, epoch + 1, ckpt,
                                                 config))
      train_time = time.time() - epoch_start
      test_accuracy = evaluate_clean(eval_fn, state.variables, dataset.test_images,
                                     dataset.test_labels.astype(np.int32), t.eval_batch_size, mesh)
      scalars = {"epoch": epoch + 1, **means, "test_accuracy": test_accuracy,
                 "images_per_second": len(epoch_steps) * t.batch_size / train_time,
                 "elapsed_seconds": time.time() - train_start}
      selection = test_accuracy
      if len(dataset.validation_labels):
        scalars["validation_accuracy"] = evaluate_clean(
            eval_fn, state.variables, dataset.validation_images,
            dataset.validation_labels.astype(np.int32), t.eval_batch_size, mesh)
        if t.select_on == "validation":
          selection = scalars["validation_accuracy"]
      writer.write(end_step, scalars)
      _fault_point("after_metrics_write")
      if is_main:
        _print_epoch_line(scalars, t.epochs, settings)
      epoch_meta = {**meta, "step": end_step, "epoch": epoch + 1, "test_accuracy": test_accuracy,
                    "selection_metric": t.select_on, "selection_accuracy": selection}
      if selection > best_accuracy:
        best_accuracy = selection
        ckpt.save("best", end_step, state, {**epoch_meta, "best_accuracy": best_accuracy})
        _fault_point("after_best_save", ckpt)
      ckpt.save("latest", end_step, state, {**epoch_meta, "best_accuracy": best_accuracy})
      summary.update(scalars)
      if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
        break
    summary.update(best_accuracy=best_accuracy, state=state, steps_per_epoch=steps_per_epoch,
                   workdir=workdir, step_compilations=traced_step.count)
  finally:
    try:
      ckpt.wait()
    finally:
      ckpt.close()
      writer.close()
  return summary


def _diverged_message(bad, first_step, end_step, epoch, ckpt, config) -> str:
  """What diverged, where, what was kept, and which settings to change."""
  last = ckpt.latest_step()
  fixes = f"a lower --config.training.learning_rate (now {config.training.learning_rate:g})"
  if config.model.dtype != "float32":
    fixes += f" or --config.model.dtype=float32 (now {config.model.dtype})"
  if last is None:
    return (f"{', '.join(bad)} became NaN or infinite between steps {first_step} and {end_step} "
            f"(epoch {epoch}), before any checkpoint was written. Rerun with {fixes}.")
  return (f"{', '.join(bad)} became NaN or infinite between steps {first_step} and {end_step} "
          f"(epoch {epoch}); the last good checkpoint (step {last}) is kept in {ckpt.root}. Rerun "
          f"with {fixes}: in a new --workdir, or in this one with "
          f"--config.allow_config_mismatch=True to resume from step {last}.")


def _fault_point(name: str, ckpt=None) -> None:
  """Test hook: ``JSNN_FAULT=<name>`` kills the process here with SIGKILL, as a preemption would.

  ``after_metrics_write``: the epoch's records are written, its checkpoints not yet started;
  ``after_best_save``: its best checkpoint has committed, its latest one not yet started.
  """
  if os.environ.get("JSNN_FAULT") != name:
    return
  if ckpt is not None:
    ckpt.wait()   # let the save before this point commit, so that the kill comes after it
  os.kill(os.getpid(), signal.SIGKILL)


def _check_workdir_writable(workdir):
  """Before any work: a read-only workdir (or parent of a new one) fails now, not after an epoch."""
  if os.path.isdir(workdir):
    todo = (f"; make it writable again (chmod -R u+w {workdir}), or copy the run to a writable "
            f"place and resume there")
  else:
    todo = "; choose a --workdir where you can write"
  dirs = [workdir] + [os.path.join(workdir, *d) for d in (
      ("checkpoints",), ("checkpoints", "latest"), ("checkpoints", "best"), ("tensorboard",))]
  _io.check_writable([d for d in dirs if d == workdir or os.path.isdir(d)],
                     [os.path.join(workdir, METRICS_FILE)], todo=todo)


def _progress(config, epoch, total, is_main):
  if not (config.logging.progress_bar and is_main):
    return None
  from tqdm import tqdm
  return tqdm(total=total, desc=f"epoch {epoch + 1}/{config.training.epochs}", leave=False,
              file=sys.stderr, mininterval=1.0, dynamic_ncols=True)


def _print_epoch_line(s, epochs, settings):
  distance = settings.distance if settings.mode != "natural" else None
  parts = [f"epoch {s['epoch']:3d}/{epochs}", f"lr {s['learning_rate']:.4g}",
           f"train acc {100 * s['accuracy']:.2f}%", f"CE {s['ce']:.4f}"]
  if distance:
    parts.append(f"{distance.upper().replace('_', '-')} {s[distance]:.4g}")
  parts.append(f"test acc {100 * s['test_accuracy']:.2f}%")
  if "validation_accuracy" in s:
    parts.append(f"val acc {100 * s['validation_accuracy']:.2f}%")
  parts += [f"{s['images_per_second']:.1f} img/s", f"{s['elapsed_seconds']:.0f}s"]
  print(" | ".join(parts), flush=True)
