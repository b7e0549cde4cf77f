r"""Times a few training steps and one batch of each attack, and estimates a run's wall time.

    python -m experiments.calibrate --config configs/cifar10_reduced.py:at,rho=1
    python -m experiments.calibrate --config configs/cifar10_reduced.py:at,rho=1 --rows 33 \
        --set model.width=0.25 --set model.head_width=128 --parts train

This is how configs/cifar10_reduced.py was sized: it runs the real jitted training step (RFGSM,
two BN passes, MS-MPPD, SGD) and the real evaluation steps of ``config.eval.attacks`` on random
images of the config's shapes, then extrapolates to the config's epochs, training-set size and
number of evaluated examples (plus, when the config runs them, the gradient-masking checks and
Figure 3's ε sweep). Each measurement is a few steps: for the reduced config each of ``--parts
train`` and ``--parts attacks`` takes well under a minute. The estimate is only as good as the
machine's load while it runs; it prints the load average, and records CPU time beside wall time.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import time

from experiments import common
from jsnn import _io, cli


CPU_TIMES = []   # Process CPU seconds of each _timed call, in order (all threads together).


def _timed(fn, *args):
  """``(out, wall seconds)``; also records the process CPU seconds in ``CPU_TIMES``.

  On a shared machine the wall time is inflated by other processes, while CPU time divided by the
  cores the process can use is a lower bound of its wall time alone.
  """
  import jax
  start, cpu = time.perf_counter(), time.process_time()
  out = fn(*args)
  jax.block_until_ready(out)
  CPU_TIMES.append(time.process_time() - cpu)
  return out, time.perf_counter() - start


def calibrate(config, *, train_size: int, test_size: int, steps: int = 3,
              attack_repeats: int = 1, parts=("train", "attacks"), log=print) -> dict:
  """Measures step and attack times for ``config`` and extrapolates one run's wall time.

  Args:
    config: a training config (eval section included).
    train_size: training images per epoch.
    test_size: test images the trainer scores after each epoch (clean accuracy).
    steps: timed training steps after the compiling one.
    attack_repeats: timed batches per attack after the compiling one.
    parts: what to measure, ``"train"`` and/or ``"attacks"`` (to keep each call short); a part
      not measured counts as 0 in the estimate.
    log: where progress lines go.

  Returns:
    ``{"measured": {...}, "estimate": {...}}`` in seconds.
  """
  import jax
  import numpy as np
  from jsnn import evaluation, parallel, train_state, train_step, workdir

  config = workdir.resolve_config(config)
  t = config.training
  mesh = parallel.make_mesh()
  model = workdir.model_from_config(config, 10)
  steps_per_epoch = math.ceil(train_size / t.batch_size)
  if t.steps_per_epoch:
    steps_per_epoch = min(steps_per_epoch, t.steps_per_epoch)
  tx, schedule = train_step.make_optimizer(
      learning_rate=t.learning_rate, epochs=t.epochs, steps_per_epoch=steps_per_epoch,
      momentum=t.momentum, weight_decay=t.weight_decay)
  rng = np.random.default_rng(0)
  state = jax.jit(functools.partial(train_state.create_train_state, model, tx),
                  out_shardings=parallel.replicated(mesh))(jax.random.key(0))
  measured = {"batch_size": t.batch_size}
  train_total = 0.0

  def batch(size):
    x = parallel.put_batch(rng.integers(0, 256, (size, 32, 32, 3), dtype=np.uint8), mesh)
    y = parallel.put_batch(rng.integers(0, 10, (size,), dtype=np.int32), mesh)
    return x, y, parallel.put_batch(np.ones((size,), bool), mesh)

  if "train" in parts:
    pool = max(train_size, t.batch_size)
    images = parallel.put_replicated(
        rng.integers(0, 256, (pool, 32, 32, 3), dtype=np.uint8), mesh)
    labels = parallel.put_replicated(rng.integers(0, 10, (pool,), dtype=np.int32), mesh)
    step_fn = jax.jit(functools.partial(
        train_step.train_step, model=model, tx=tx, schedule=schedule,
        settings=workdir.step_settings(config), batch_sharding=parallel.batch_sharding(mesh)),
        donate_argnums=0)
    (state, _), first = _timed(step_fn, state, images, labels)
    log(f"train step: first call (compiles) {first:.1f} s")
    times = []
    for _ in range(steps):
      (state, _), dt = _timed(step_fn, state, images, labels)
      times.append(dt)
      log(f"train step: {dt:.3f} s (CPU {CPU_TIMES[-1]:.3f} s)")
    step_time = min(times)
    measured["train_step_cpu_s"] = min(CPU_TIMES[-steps:])
    # The trainer's per-epoch clean accuracy over the test split.
    eval_fn = jax.jit(functools.partial(train_step.eval_step, model=model))
    x, y, mask = batch(t.eval_batch_size)
    _timed(eval_fn, state.variables, x, y, mask)
    _, clean_batch = _timed(eval_fn, state.variables, x, y, mask)
    epoch_eval = math.ceil(test_size / t.eval_batch_size) * clean_batch
    measured.update(train_step_first_s=first, train_step_s=step_time, train_step_all_s=times,
                    clean_eval_batch_s=clean_batch)
    train_total = (first + (steps_per_epoch * t.epochs - 1) * step_time + t.epochs * epoch_eval)

  # One batch of each attack of the evaluation suite.
  settings = evaluation.settings_from_config(config)
  num_examples = settings.num_examples or test_size
  eval_total = 0.0
  if "attacks" in parts:
    b = settings.batch_size
    x, y, mask = batch(b)
    eps = np.asarray(settings.epsilon, np.float32)
    attacks_time = {}
    batches = math.ceil(num_examples / b)
    for spec in settings.specs:
      step = evaluation.jit_step(evaluation.make_attack_step(spec, model), mesh)
      key = jax.random.key(0)
      _, first = _timed(step, state.variables, x, y, mask, key, eps)
      reps = [_timed(step, state.variables, x, y, mask, key, eps)[1]
              for _ in range(attack_repeats)]
      cpu = min(CPU_TIMES[-attack_repeats:])
      attacks_time[spec.name] = {"first_s": first, "batch_s": min(reps), "batch_cpu_s": cpu,
                                 "total_s": first + (batches - 1) * min(reps)}
      log(f"{spec.name}: first call {first:.1f} s, then {min(reps):.3f} s per batch of {b} "
          f"(CPU {cpu:.3f} s)")
    measured.update(attacks=attacks_time, eval_batch_size=b)
    eval_total = sum(a["total_s"] for a in attacks_time.values())
    if "pgd10" in attacks_time and "fgsm" in attacks_time:
      pgd, fgsm = attacks_time["pgd10"], attacks_time["fgsm"]
      if settings.sanity_checks:
        # PGD-10 at ε = 64/255 costs a PGD-10 run; the zero-gradient count one gradient (≈ FGSM).
        sanity = pgd["total_s"] + fgsm["total_s"]
        measured["sanity_checks_s"] = sanity
        eval_total += sanity
      # Figure 3's sweep: PGD-10 (plus one clean forward) at each ε, one compilation.
      measured["eps_sweep_s"] = pgd["first_s"] + len(settings.sweep_epsilons) * batches * (
          pgd["batch_s"] + attacks_time.get("clean", {"batch_s": 0.0})["batch_s"])

  # Data loading, checkpoint saves and restores, process-level setup: ≈ 10 s on a 3-step row of
  # the reduced protocol run through the sweep driver; 15 s leaves some room.
  overhead = 15.0
  estimate = {"steps_per_epoch": steps_per_epoch, "epochs": t.epochs,
              "train_s": train_total, "eval_s": eval_total, "overhead_s": overhead,
              "run_s": train_total + eval_total + overhead, "eval_examples": num_examples}
  return {"measured": measured, "estimate": estimate, "parts": list(parts)}


@cli.main_guard
def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True, help="config file[:argument], as train.py's")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="config override, e.g. model.width=0.125 (repeatable)")
  parser.add_argument("--train-size", type=int, default=0,
                      help="training images per epoch (default: data.train_size or 5000)")
  parser.add_argument("--test-size", type=int, default=1000,
                      help="test images scored after each epoch (1000 for CIFAR-10-mini)")
  parser.add_argument("--steps", type=int, default=3, help="timed training steps")
  parser.add_argument("--rows", type=int, default=1, help="runs in the sweep, for the total")
  parser.add_argument("--parts", default="train,attacks",
                      help="what to time: train, attacks or both (comma-separated)")
  parser.add_argument("--out", default="", help="also write the measurement as JSON here")
  args = parser.parse_args(argv)

  import jsnn  # noqa: F401  (XLA:CPU flags before JAX starts)
  config = common.load_config(args.config, args.set)
  train_size = args.train_size or config.data.train_size or 5000
  log = lambda line: print(line, flush=True)
  result = calibrate(config, train_size=train_size, test_size=args.test_size, steps=args.steps,
                     parts=tuple(args.parts.split(",")), log=log)
  est = result["estimate"]
  result.update(config=args.config, overrides=args.set, train_size=train_size,
                rows=args.rows, total_s=args.rows * est["run_s"],
                load_average=os.getloadavg(), cpu_count=os.cpu_count(), when=common.now())
  if "eps_sweep_s" in result["measured"]:
    print(f"the ε sweep of a Figure 3 row adds {result['measured']['eps_sweep_s']:.0f} s")
  print(f"per run: train {est['train_s']:.0f} s ({est['epochs']} epochs × "
        f"{est['steps_per_epoch']} steps) + eval {est['eval_s']:.0f} s on {est['eval_examples']} "
        f"images + overhead {est['overhead_s']:.0f} s = {est['run_s']:.0f} s; "
        f"{args.rows} runs: {result['total_s'] / 60:.1f} min "
        f"(load average {result['load_average'][0]:.2f} on {result['cpu_count']} cores)")
  if args.out:
    _io.write_json(args.out, result)


if __name__ == "__main__":
  main()
