"""A projection, until the GPU check has run: how long a full VGG11 AT row would take on one H200.

    python benchmarks/roofline.py --out benchmarks/results/roofline-h200
    python benchmarks/roofline.py --quick          # a tiny model, to check the script

It compiles (without running) the paper's programs here, on the CPU, and reads XLA's cost
analysis of each: FLOPs and bytes accessed per call. For one H200 (bf16 ≈ 790 TFLOP/s and about
4.3 TB/s measured on the project's machine, ../.library/device/README.md; fp32 on TF32 tensor
cores at half the bf16 rate) the roofline time of a call is ``max(FLOPs / peak, bytes /
bandwidth)``, a lower bound. A whole row is the training (100 epochs × 782 RFGSM-AT steps at
batch 64, the paper's schedule) plus the paper's suite on the 10,000 test images (clean, FGSM,
PGD-7/10/20/40, APGD-CE, APGD-DLR: 101 input gradients and 4 forward passes per image, at batch
256). From the FLOPs it also gives the MFU (fraction of the bf16 peak) that the goal, a row in
30 minutes, needs.

Caveats, stated with the figures: XLA:GPU fuses differently from XLA:CPU, so the bytes are the
CPU program's (the FLOPs do not depend on the backend); the time between steps (the Python loop,
per-epoch evaluation, checkpoints) is not counted; the projection is not a measurement.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

H200 = {"bf16_flops": 790e12, "fp32_flops": 395e12, "bytes_per_s": 4.3e12}
GOAL_S = 30 * 60
EPOCHS, STEPS_PER_EPOCH, TRAIN_BATCH = 100, 782, 64
TEST_IMAGES, EVAL_BATCH = 10_000, 256
# The paper's suite per image: FGSM 1 + PGD 7 + 10 + 20 + 40 + APGD-CE 11 + APGD-DLR 11 input
# gradients; a clean forward for the clean accuracy and for each APGD's first check, FGSM's score.
SUITE_GRADIENTS, SUITE_FORWARDS = 1 + 7 + 10 + 20 + 40 + 11 + 11, 4


def _cost(compiled) -> dict:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0]
  return {"flops": float(analysis.get("flops", 0.0)),
          "bytes": float(analysis.get("bytes accessed", 0.0))}


def programs(quick: bool, dtype: str) -> dict:
  """XLA's cost of the AT step, one input gradient and one forward pass of the paper's VGG11."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jsnn import losses, models, train_step
  from jsnn.train_state import TrainState

  kw = dict(width=0.125, head_width=32) if quick else {}
  model = models.create_model("vgg5" if quick else "vgg11", num_classes=10, dtype=dtype,
                              neuron=models.NeuronSpec(time_steps=2 if quick else 8), **kw)
  tx, schedule = train_step.make_optimizer(learning_rate=0.1, epochs=EPOCHS,
                                           steps_per_epoch=STEPS_PER_EPOCH)

  def init(key):
    variables = models.init_model(model, key)
    return TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                      batch_stats=variables["batch_stats"],
                      opt_state=tx.init(variables["params"]),
                      rng=jax.random.key_data(key))

  state = jax.eval_shape(init, jax.random.key(0))
  images = jax.ShapeDtypeStruct((1024, 32, 32, 3), np.uint8)
  labels = jax.ShapeDtypeStruct((1024,), np.int32)
  settings = train_step.StepSettings(mode="at", rho=1.0, batch_size=TRAIN_BATCH)
  step = jax.jit(functools.partial(train_step.train_step, model=model, tx=tx, schedule=schedule,
                                   settings=settings))
  out = {}
  start = time.perf_counter()
  out["at_step"] = _cost(step.lower(state, images, labels).compile())
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  x = jax.ShapeDtypeStruct((EVAL_BATCH, 32, 32, 3), jnp.float32)
  y = jax.ShapeDtypeStruct((EVAL_BATCH,), jnp.int32)

  def forward(variables, x):
    return models.apply_model(model, variables, x, train=False)[0]

  def input_gradient(variables, x, y):
    return jax.grad(lambda z: jnp.sum(losses.cross_entropy(forward(variables, z), y)))(x)

  out["input_gradient"] = _cost(jax.jit(input_gradient).lower(variables, x, y).compile())
  out["forward"] = _cost(jax.jit(forward).lower(variables, x).compile())
  out["compile_s"] = time.perf_counter() - start
  return out


def project(costs: dict, dtype: str) -> dict:
  """Roofline seconds of the row's parts and the MFU the 30-minute goal needs."""
  peak = H200["bf16_flops"] if dtype == "bfloat16" else H200["fp32_flops"]

  def roofline(c):
    return max(c["flops"] / peak, c["bytes"] / H200["bytes_per_s"])

  eval_batches = -(-TEST_IMAGES // EVAL_BATCH)
  parts = {
      "training": (EPOCHS * STEPS_PER_EPOCH, costs["at_step"]),
      "suite_gradients": (eval_batches * SUITE_GRADIENTS, costs["input_gradient"]),
      "suite_forwards": (eval_batches * SUITE_FORWARDS, costs["forward"]),
  }
  out = {name: {"calls": n, "flops": n * c["flops"], "bytes": n * c["bytes"],
                "roofline_s": n * roofline(c),
                "bound": "compute" if c["flops"] / peak >= c["bytes"] / H200["bytes_per_s"]
                else "memory"}
         for name, (n, c) in parts.items()}
  total_flops = sum(p["flops"] for p in out.values())
  total_roofline = sum(p["roofline_s"] for p in out.values())
  return {"dtype": dtype, "peak_flops": peak, "parts": out, "total_flops": total_flops,
          "roofline_s": total_roofline,
          "mfu_needed_for_goal": total_flops / (GOAL_S * H200["bf16_flops"]),
          "at_step_roofline_ms": 1e3 * roofline(costs["at_step"])}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true", help="tiny model: checks the script only")
  parser.add_argument("--out", default="", help="write OUT.json and OUT.md")
  args = parser.parse_args(argv)
  import jsnn  # noqa: F401  (XLA:CPU flags)
  import jax
  from benchmarks import machine

  rows = []
  for dtype in ("bfloat16", "float32"):
    costs = programs(args.quick, dtype)
    rows.append({**project(costs, dtype), "costs": costs})
  lines = [f"Projection for one H200 from XLA:CPU cost analysis (jax {jax.__version__}, "
           f"{machine.cpu_model()}; {'quick, tiny model' if args.quick else 'VGG11, T = 8'}): "
           f"{EPOCHS} epochs × {STEPS_PER_EPOCH} RFGSM-AT steps at batch {TRAIN_BATCH}, then the "
           f"paper's suite on {TEST_IMAGES} test images. A lower bound, not a measurement.", "",
           "| dtype | AT step GFLOP | AT step GB | AT step roofline ms | row TFLOP | "
           "row roofline min | bound (training) | MFU needed for a 30-min row |",
           "|---|---:|---:|---:|---:|---:|---|---:|"]
  for r in rows:
    c = r["costs"]["at_step"]
    lines.append(f"| {r['dtype']} | {c['flops'] / 1e9:.0f} | {c['bytes'] / 1e9:.1f} | "
                 f"{r['at_step_roofline_ms']:.2f} | {r['total_flops'] / 1e12:.0f} | "
                 f"{r['roofline_s'] / 60:.1f} | {r['parts']['training']['bound']} | "
                 f"{100 * r['mfu_needed_for_goal']:.1f} % |")
  text = "\n".join(lines) + "\n"
  print(text)
  if args.out:
    with open(args.out + ".json", "w") as f:
      json.dump({"h200": H200, "goal_s": GOAL_S, "quick": args.quick, "rows": rows,
                 "cpu": machine.cpu_model(), "jax": jax.__version__,
                 "date": time.strftime("%Y-%m-%d")}, f, indent=2)
    with open(args.out + ".md", "w") as f:
      f.write(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
