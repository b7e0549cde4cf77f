"""Training-step throughput: images/s of the natural and the RFGSM-AT (ρ = 1) step, and peak memory.

    python benchmarks/train_step.py                      # VGG11 and WRN16, B = 64, T = 8, fp32
    python benchmarks/train_step.py --models vgg11 --modes at --repeats 5
    python benchmarks/train_step.py --quick              # a tiny model, to check the script

Each (model, mode) runs in its own process so that its peak RSS (CPU) or peak device memory (GPU)
is its own. It times the real jitted step (batch gather from the resident training set, on-device
augmentation, perturbation, two BN passes, MS-MPPD, SGD): one warm-up call (compile), then the
best and the median of ``--repeats`` calls, each ending in ``block_until_ready``.

The reference PyTorch code on a 2-core machine (../shared/perf-baseline.md, best of 5): VGG11 train
step 12.7 s, RFGSM-AT step 41.3 s; WRN16 train step 15.3 s, and its AT step at B = 64 needs > 22 GB.
"""

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def run_one(model_name, mode, batch_size, time_steps, repeats, quick, dtype):
  import jax
  import numpy as np
  import jsnn  # noqa: F401  (XLA:CPU flags)
  from configs import default
  from jsnn import parallel, train_state, train_step, workdir

  config = default.get_config()
  config.model.name, config.model.time_steps, config.model.dtype = model_name, time_steps, dtype
  config.training.mode, config.training.rho = mode, (0.0 if mode == "natural" else 1.0)
  config.training.batch_size = batch_size
  if quick:
    config.model.width, config.model.head_width = 0.125, 64
  config = workdir.resolve_config(config)
  mesh = parallel.make_mesh()
  model = workdir.model_from_config(config, 10)
  tx, schedule = train_step.make_optimizer(learning_rate=0.1, epochs=100, steps_per_epoch=782)
  state = jax.jit(functools.partial(train_state.create_train_state, model, tx),
                  out_shardings=parallel.replicated(mesh))(jax.random.key(0))
  rng = np.random.default_rng(0)
  images = parallel.put_replicated(rng.integers(0, 256, (1024, 32, 32, 3), dtype=np.uint8), mesh)
  labels = parallel.put_replicated(rng.integers(0, 10, (1024,), dtype=np.int32), mesh)
  step = jax.jit(functools.partial(
      train_step.train_step, model=model, tx=tx, schedule=schedule,
      settings=workdir.step_settings(config), batch_sharding=parallel.batch_sharding(mesh)),
      donate_argnums=0, out_shardings=parallel.replicated(mesh))
  t0 = time.perf_counter()
  state, metrics = step(state, images, labels)
  jax.block_until_ready(metrics)
  first = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    state, metrics = step(state, images, labels)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t0)
  device = jax.devices()[0]
  stats = device.memory_stats() if device.platform != "cpu" else None
  peak = (stats or {}).get("peak_bytes_in_use")
  return {
      "model": model_name + (" (quick)" if quick else ""), "mode": mode, "batch": batch_size,
      "T": time_steps, "dtype": dtype, "platform": device.platform, "devices": jax.device_count(),
      "first_call_s": first, "best_s": min(times), "median_s": float(np.median(times)),
      "images_per_s": batch_size / min(times), "repeats": repeats,
      "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
      "peak_device_gib": peak / 2**30 if peak else None,
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default="vgg11,wrn16")
  parser.add_argument("--modes", default="natural,at")
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--time-steps", type=int, default=8)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--dtype", default="float32")
  parser.add_argument("--quick", action="store_true", help="tiny model: checks the script only")
  parser.add_argument("--json", help="also write the results to this file")
  parser.add_argument("--one", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.one:
    model, mode = args.one.split(":")
    print(json.dumps(run_one(model, mode, args.batch_size, args.time_steps, args.repeats,
                             args.quick, args.dtype)))
    return
  rows = []
  print("| model | mode | batch | T | dtype | platform | first call s | best s | median s | "
        "images/s | peak RSS GiB | peak device GiB |")
  print("|---|---|---|---|---|---|---|---|---|---|---|---|")
  for model in args.models.split(","):
    for mode in args.modes.split(","):
      cmd = [sys.executable, __file__, "--one", f"{model}:{mode}", "--batch-size",
             str(args.batch_size), "--time-steps", str(args.time_steps), "--repeats",
             str(args.repeats), "--dtype", args.dtype] + (["--quick"] if args.quick else [])
      out = subprocess.run(cmd, capture_output=True, text=True)
      if out.returncode:
        print(f"| {model} | {mode} | failed: {out.stderr.strip().splitlines()[-1]} |")
        continue
      r = json.loads(out.stdout.strip().splitlines()[-1])
      rows.append(r)
      dev = f"{r['peak_device_gib']:.2f}" if r["peak_device_gib"] else "–"
      print(f"| {r['model']} | {mode} | {r['batch']} | {r['T']} | {r['dtype']} | {r['platform']} | "
            f"{r['first_call_s']:.2f} | {r['best_s']:.2f} | {r['median_s']:.2f} | "
            f"{r['images_per_s']:.2f} | {r['peak_rss_gib']:.2f} | {dev} |", flush=True)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__":
  main()
