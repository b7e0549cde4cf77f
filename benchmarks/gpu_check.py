"""The prepared GPU check: paper-model step throughput, MFU, memory and a real-data AT run.

On a GPU machine with JAX preinstalled and no internet (the project's H200: Python 3.12, JAX 0.11
with the CUDA 13 plugin, flax, optax, orbax, chex, no ml_collections/TFDS/tensorboardX):

    mkdir -p .devdata && cp ../shared/data/cifar10-mini/cifar10_mini.npz .devdata/   # here, once
    # device: carry [".devdata"], then
    pip install -q --no-deps -e . && python benchmarks/gpu_check.py --data .devdata --out $OUT

Nothing here needs ml_collections, tensorboardX or TFDS (jsnn imports them lazily), so
``--no-deps`` is enough. On this project's CPU machine ``--quick`` runs the same code on a tiny
model (the test suite does, so the script cannot rot):

    python benchmarks/gpu_check.py --quick --out /tmp/gpu_check

What it measures, in priority order within ``--budget-s`` (default 420 s; what does not fit is
recorded as skipped): the fp32 and bf16 matmul throughput of the chip (8192³, the MFU reference);
VGG11 and WRN16-4 natural and RFGSM-AT (ρ = 1) training steps at T = 8, batch 64 and 256, fp32 and
bf16 (images/s, compile time, XLA's FLOPs per step and their rate over the measured time as a
fraction of the measured matmul and of the chip's nominal dense peak, XLA's memory analysis and
the device's peak memory); PGD-10 and APGD-CE-100 on VGG11 at batch 256; then 200 AT steps of
VGG11 on the real CIFAR-10 images of ``--data`` at batch 64, the loss required to fall (mean of
the last 20 steps below the first 20). Everything goes to ``<out>/gpu_check.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# H200 nominal dense peaks (FLOP/s): bf16 989 T; fp32 convolutions and dots run on TF32 tensor
# cores under XLA's default precision, 495 T. The measured matmul is reported beside them.
NOMINAL_PEAK = {"bfloat16": 989e12, "float32": 495e12}


@dataclasses.dataclass(frozen=True)
class StepCase:
  model: str
  mode: str
  batch: int
  dtype: str
  time_steps: int = 8
  width: float = 1.0
  head_width: int = 4096


def _cases(quick: bool) -> list[StepCase]:
  if quick:
    return [StepCase("vgg5", mode, 8, dtype, time_steps=2, width=0.125, head_width=32)
            for mode in ("natural", "at") for dtype in ("float32", "bfloat16")]
  # Most informative first: what a VGG11 AT row costs, then WRN16, then the smaller batch.
  order = []
  for batch in (256, 64):
    for model in ("vgg11", "wrn16"):
      for mode in ("at", "natural"):
        for dtype in ("bfloat16", "float32"):
          order.append(StepCase(model, mode, batch, dtype))
  return order


def _model(case):
  from jsnn import models
  extra = {"head_width": case.head_width} if case.model.startswith("vgg") else {}
  return models.create_model(case.model, num_classes=10,
                             neuron=models.NeuronSpec(time_steps=case.time_steps),
                             width=case.width, dtype=case.dtype, **extra)


def _state(model, tx, key):
  import jax
  import jax.numpy as jnp
  from jsnn import models
  from jsnn.train_state import TrainState
  init_key, run_key = jax.random.split(key)
  variables = models.init_model(model, init_key)
  return TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                    batch_stats=variables["batch_stats"], opt_state=tx.init(variables["params"]),
                    rng=jax.random.key_data(run_key))


def _step_fn(case, model, steps_per_epoch=782, epochs=100):
  import jax
  from jsnn import train_step
  tx, schedule = train_step.make_optimizer(learning_rate=0.1, epochs=epochs,
                                           steps_per_epoch=steps_per_epoch)
  settings = train_step.StepSettings(mode=case.mode, rho=0.0 if case.mode == "natural" else 1.0,
                                     batch_size=case.batch)
  step = jax.jit(functools.partial(train_step.train_step, model=model, tx=tx, schedule=schedule,
                                   settings=settings), donate_argnums=0)
  return step, tx


def _memory(compiled) -> dict:
  analysis = compiled.memory_analysis()
  if analysis is None:
    return {}
  return {"temp_gib": analysis.temp_size_in_bytes / 2**30,
          "argument_gib": analysis.argument_size_in_bytes / 2**30,
          "output_gib": analysis.output_size_in_bytes / 2**30}


def _peak_device_gib():
  import jax
  stats = jax.devices()[0].memory_stats() or {}
  peak = stats.get("peak_bytes_in_use")
  return peak / 2**30 if peak else None


def _time_calls(call, min_seconds: float, max_calls: int) -> tuple[float, int]:
  """Best seconds per call over repeated calls (at least 3, until ``min_seconds`` have passed)."""
  import jax
  best, calls, start = float("inf"), 0, time.perf_counter()
  while calls < max_calls and (calls < 3 or time.perf_counter() - start < min_seconds):
    t0 = time.perf_counter()
    jax.block_until_ready(call())
    best = min(best, time.perf_counter() - t0)
    calls += 1
  return best, calls


def matmul_throughput(dtype: str, size: int) -> float:
  """Best FLOP/s of a ``size``³ matmul in ``dtype`` on the default device."""
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32).astype(dtype)
  b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32).astype(dtype)
  matmul = jax.jit(jnp.matmul)
  jax.block_until_ready(matmul(a, b))
  best, _ = _time_calls(lambda: matmul(a, b), 1.0, 20)
  return 2 * size**3 / best


def measure_step(case: StepCase, matmul: dict, quick: bool) -> dict:
  import jax
  import numpy as np
  from benchmarks import machine
  model = _model(case)
  step, tx = _step_fn(case, model)
  state = _state(model, tx, jax.random.key(0))
  rng = np.random.default_rng(0)
  images = jax.device_put(rng.integers(0, 256, (max(1024, case.batch), 32, 32, 3), np.uint8))
  labels = jax.device_put(rng.integers(0, 10, (images.shape[0],), np.int32))
  start = time.perf_counter()
  compiled = step.lower(state, images, labels).compile()
  compile_s = time.perf_counter() - start
  holder = [state]

  def call():
    holder[0], metrics = compiled(holder[0], images, labels)
    return metrics

  jax.block_until_ready(call())
  seconds, calls = _time_calls(call, 0.5 if quick else 3.0, 5 if quick else 50)
  flops = machine.compiled_flops(compiled)
  rate = flops / seconds
  return {**dataclasses.asdict(case), "compile_s": compile_s, "step_s": seconds, "calls": calls,
          "images_per_s": case.batch / seconds, "flops_per_step": flops, "flops_per_s": rate,
          "fraction_of_matmul": rate / matmul[case.dtype] if matmul.get(case.dtype) else None,
          "mfu_nominal": rate / NOMINAL_PEAK[case.dtype], **_memory(compiled),
          "peak_device_gib_so_far": _peak_device_gib()}


def measure_attack(name: str, case: StepCase, quick: bool) -> dict:
  import jax
  import numpy as np
  from jsnn import attacks, models
  model = _model(case)
  variables = models.init_model(model, jax.random.key(0))
  spec = attacks.get_attack_spec("apgd-ce" if name.startswith("apgd") else name)
  if name == "apgd-ce100":
    spec = dataclasses.replace(spec, name=name, num_steps=100)
  attack = attacks.make_attack(spec)

  def run(variables, x, y, key, epsilon):
    logits_fn = lambda z: models.apply_model(model, variables, z, train=False)[0]
    return attack(logits_fn, x, y, key=key, epsilon=epsilon)

  rng = np.random.default_rng(0)
  x = jax.device_put(rng.uniform(size=(case.batch, 32, 32, 3)).astype(np.float32))
  y = jax.device_put(rng.integers(0, 10, (case.batch,)).astype(np.int32))
  eps = np.float32(8 / 255)
  start = time.perf_counter()
  compiled = jax.jit(run).lower(variables, x, y, jax.random.key(0), eps).compile()
  compile_s = time.perf_counter() - start
  jax.block_until_ready(compiled(variables, x, y, jax.random.key(0), eps))
  counter = [0]

  def call():
    counter[0] += 1
    return compiled(variables, x, y, jax.random.key(counter[0]), eps)

  seconds, calls = _time_calls(call, 0.5 if quick else 3.0, 3 if quick else 20)
  return {"attack": name, **dataclasses.asdict(case), "compile_s": compile_s,
          "call_s": seconds, "calls": calls, "images_per_s": case.batch / seconds}


def _load_real(path: str):
  """Training images and labels of CIFAR-10 npz files (a file or a folder), as jsnn reads them."""
  from jsnn import data
  dataset = data.load_dataset("cifar10", data_dir=path)
  return dataset.train_images, dataset.train_labels.astype("int32"), dataset.source


def real_data_run(case: StepCase, path: str, steps: int) -> dict:
  """``steps`` AT steps on real images; the loss must fall."""
  import jax
  import numpy as np
  images, labels, source = _load_real(path)
  model = _model(case)
  steps_per_epoch = max(1, len(labels) // case.batch)
  step, tx = _step_fn(case, model, steps_per_epoch=steps_per_epoch,
                      epochs=max(1, -(-steps // steps_per_epoch)))
  state = _state(model, tx, jax.random.key(0))
  images, labels = jax.device_put(images), jax.device_put(labels)
  losses = []
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = step(state, images, labels)
    losses.append(metrics["loss"])
  losses = [float(v) for v in jax.device_get(losses)]   # one host sync, after the loop
  wall = time.perf_counter() - start
  window = max(1, min(20, steps // 4))
  first, last = float(np.mean(losses[:window])), float(np.mean(losses[-window:]))
  return {**dataclasses.asdict(case), "data": source, "steps": steps, "wall_s": wall,
          "loss_first": first, "loss_last": last, "loss_fell": last < first,
          "all_finite": bool(np.all(np.isfinite(losses))), "losses_every_10": losses[::10]}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true", help="tiny model, any device (CPU test)")
  parser.add_argument("--data", default="", help="CIFAR-10 .npz file or folder (real-data run)")
  parser.add_argument("--out", default=os.environ.get("OUT", "."), help="folder for the JSON")
  parser.add_argument("--budget-s", type=float, default=420.0, help="stop starting new parts "
                      "after this many seconds")
  parser.add_argument("--real-steps", type=int, default=200)
  args = parser.parse_args(argv)
  if args.real_steps < 1 or args.budget_s <= 0:
    parser.error("--real-steps must be >= 1 and --budget-s > 0")
  if args.data and not os.path.exists(args.data):
    print(f"error: --data {args.data!r} does not exist; copy CIFAR-10 .npz files there "
          f"(see the docstring)", file=sys.stderr)
    return 2

  import jsnn  # noqa: F401  (XLA:CPU flags before the backend starts)
  import jax
  devices = jax.devices()
  platform = devices[0].platform
  if not args.quick and platform != "gpu":
    print(f"error: no GPU: JAX sees {platform} devices ({devices[0].device_kind}); run "
          f"benchmarks/gpu_check.py on a GPU machine, or with --quick here", file=sys.stderr)
    return 2
  from benchmarks import machine

  start = time.time()
  out = {"device": devices[0].device_kind, "platform": platform, "device_count": len(devices),
         "jax": jax.__version__, "quick": args.quick, "host_cpu": machine.cpu_model(),
         "date": time.strftime("%Y-%m-%d"), "steps": [], "attacks": [], "skipped": []}
  size = 512 if args.quick else 8192
  out["matmul_flops_per_s"] = {d: matmul_throughput(d, size) for d in ("float32", "bfloat16")}
  out["nominal_peak_flops_per_s"] = NOMINAL_PEAK

  def fits(what: str) -> bool:
    if time.time() - start < args.budget_s:
      return True
    out["skipped"].append(what)
    return False

  def save():
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gpu_check.json"), "w") as f:
      json.dump(out, f, indent=2)

  for case in _cases(args.quick):
    if fits(f"step {case}"):
      out["steps"].append(measure_step(case, out["matmul_flops_per_s"], args.quick))
      r = out["steps"][-1]
      print(f"{case.model} {case.mode} B={case.batch} {case.dtype}: {r['images_per_s']:.1f} img/s,"
            f" compile {r['compile_s']:.1f} s, MFU {100 * r['mfu_nominal']:.1f} % of nominal",
            flush=True)
      save()
  attack_case = (StepCase("vgg5", "", 8, "float32", time_steps=2, width=0.125, head_width=32)
                 if args.quick else StepCase("vgg11", "", 256, "float32"))
  for name in ("pgd10", "apgd-ce100"):
    if fits(f"attack {name}"):
      out["attacks"].append(measure_attack(name, attack_case, args.quick))
      print(f"{name}: {out['attacks'][-1]['images_per_s']:.1f} img/s", flush=True)
      save()
  real_case = (StepCase("vgg5", "at", 16, "float32", time_steps=2, width=0.125, head_width=32)
               if args.quick else StepCase("vgg11", "at", 64, "float32"))
  steps = min(args.real_steps, 20) if args.quick else args.real_steps
  if not args.data:
    out["skipped"].append("real-data run (no --data)")
  elif fits("real-data run"):
    out["real_data"] = real_data_run(real_case, args.data, steps)
    r = out["real_data"]
    print(f"real data: loss {r['loss_first']:.3f} → {r['loss_last']:.3f} over {steps} steps",
          flush=True)
  out["wall_s"] = time.time() - start
  save()
  print(f"wrote {os.path.join(args.out, 'gpu_check.json')} ({out['wall_s']:.0f} s)")
  real = out.get("real_data")
  if real and not args.quick and not (real["loss_fell"] and real["all_finite"]):
    print(f"error: the real-data AT loss did not fall ({real['loss_first']:.4f} → "
          f"{real['loss_last']:.4f} over {real['steps']} steps)", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
