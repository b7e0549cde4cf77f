"""Attack throughput: images/s of PGD-10, APGD-10, APGD-T and Square on VGG11 (T = 8, random init,
eval mode).

    python benchmarks/attacks.py                 # B = 16 on CPU; B = 16 and 256 with a GPU
    python benchmarks/attacks.py --repeats 5 --batch-sizes 16,64
    python benchmarks/attacks.py --attacks apgd-t,square --apgd-t-steps 100 --square-queries 5000
    python benchmarks/attacks.py --quick         # a tiny model, to check the script

Times the attack alone, as the evaluation jits it (``jsnn.attacks.make_attack`` through the
surrogate gradient, ε a traced argument): one warm-up call (compile and run), then the best of
``--repeats`` calls, each ending in ``block_until_ready``. PGD-10 is the reference's (α = 2/255,
uniform random start); APGD-10 is APGD-CE with one restart; APGD-T is the targeted DLR over 9
targets (``--apgd-t-steps`` per target, 10 by default; the standard cascade uses 100); Square is
L∞ with ``--square-queries`` (1000 by default; the cascade uses 5000). The images are labelled with
the model's own predictions, so every image starts out correct and Square has to search (its loop
stops once all are fooled: its time depends on the model, and the table gives the queries it
spent). The scoring forward of the evaluation is not included. Passes per image: PGD-10 10
forward+backward; APGD-10 11 forward+backward + 1 forward; APGD-T 9·(k + 1) forward+backward + 1
forward; Square at most 1 + q forwards.

Reference PyTorch code on the 2-core CPU (../shared/perf-baseline.md, best of 5): PGD-10 on 16
VGG11 images takes 24.9 s, 0.64 images/s.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

REFERENCE_PGD10_S = 24.9   # PyTorch reference, VGG11, B = 16, CPU.
ATTACKS = {"pgd10": "PGD-10", "apgd-ce": "APGD-10 (CE)", "apgd-t": "APGD-T (9 targets)",
           "square": "Square (L∞)"}


def _spec(attack_name, apgd_t_steps, square_queries):
  from jsnn import attacks
  if attack_name == "apgd-t":
    return attacks.APGDTSpec(name=f"apgd-t{apgd_t_steps}", num_steps=apgd_t_steps,
                              loss="dlr", num_targets=9)
  if attack_name == "square":
    return attacks.SquareSpec(name=f"square{square_queries}",
                              num_queries=square_queries)
  return attacks.get_attack_spec(attack_name)


def run(attack_name, batch_size, repeats, quick, time_steps, apgd_t_steps=10,
        square_queries=1000):
  import jax
  import numpy as np
  import jsnn  # noqa: F401  (XLA:CPU flags)
  from jsnn import attacks, models

  if quick:
    model = models.create_model("vgg5", num_classes=10, width=0.125, head_width=64,
                                neuron=models.NeuronSpec(time_steps=2))
  else:
    model = models.create_model("vgg11", num_classes=10,
                                neuron=models.NeuronSpec(time_steps=time_steps))
  variables = models.init_model(model, jax.random.key(0))
  spec = _spec(attack_name, apgd_t_steps, square_queries)
  attack = attacks.make_attack(spec, with_stats=True)

  @jax.jit
  def run_attack(variables, x, y, key, epsilon):
    logits_fn = lambda z: models.apply_model(model, variables, z, train=False)[0]
    return attack(logits_fn, x, y, key=key, epsilon=epsilon)

  rng = np.random.default_rng(0)
  x = jax.device_put(rng.uniform(size=(batch_size, 32, 32, 3)).astype(np.float32))
  # The model's own predictions: every image starts out correct (all attacks attack all of them).
  y = jax.jit(lambda v, x: jax.numpy.argmax(
      models.apply_model(model, v, x, train=False)[0], axis=-1))(variables, x)
  epsilon = np.float32(8 / 255)
  stats = []

  def timed(i):
    t0 = time.perf_counter()
    _, s = jax.block_until_ready(run_attack(variables, x, y, jax.random.key(i), epsilon))
    stats.append(s)
    return time.perf_counter() - t0

  first = timed(0)
  times = [timed(i + 1) for i in range(repeats)]
  best = min(times)
  queries = float(np.mean([np.mean(s.queries) for s in stats]))
  forward = float(np.mean([np.mean(s.forward) for s in stats]))
  return {"attack": spec.name, "model": "vgg5 (quick)" if quick else "vgg11",
          "T": 2 if quick else time_steps, "batch": batch_size,
          "platform": jax.devices()[0].platform, "first_call_s": first, "best_s": best,
          "median_s": float(np.median(times)), "images_per_s": batch_size / best,
          "forward_passes_per_image": forward, "queries_per_image": queries,
          "repeats": repeats}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--attacks", default=",".join(ATTACKS))
  parser.add_argument("--batch-sizes", default="",
                      help="comma-separated; default 16 on CPU, 16,256 with a GPU")
  parser.add_argument("--time-steps", type=int, default=8)
  parser.add_argument("--apgd-t-steps", type=int, default=10, help="APGD-T iterations per target")
  parser.add_argument("--square-queries", type=int, default=1000, help="Square's query budget")
  parser.add_argument("--repeats", type=int, default=3, help="timed calls after the warm-up")
  parser.add_argument("--quick", action="store_true", help="tiny model: checks the script only")
  parser.add_argument("--json", help="also write the results to this file")
  args = parser.parse_args()
  if args.repeats < 1:
    parser.error(f"--repeats must be >= 1, got {args.repeats}")
  if args.apgd_t_steps < 1 or args.square_queries < 1:
    parser.error("--apgd-t-steps and --square-queries must be >= 1")

  import jsnn  # noqa: F401  (XLA:CPU flags before JAX starts)
  import jax
  gpu = jax.devices()[0].platform == "gpu"
  batch_sizes = [int(b) for b in (args.batch_sizes or ("16,256" if gpu else "16")).split(",")]
  rows = []
  print("| attack | model | T | batch | platform | first call s | best s | median s | images/s | "
        "forward/img | queries/img | vs reference |")
  print("|---|---|---|---|---|---|---|---|---|---|---|---|")
  for name in args.attacks.split(","):
    for batch_size in batch_sizes:
      r = run(name, batch_size, args.repeats, args.quick, args.time_steps, args.apgd_t_steps,
              args.square_queries)
      rows.append(r)
      # The reference figure is PGD-10 at B = 16 on the CPU: compare only like with like.
      comparable = (name == "pgd10" and not args.quick and r["platform"] == "cpu"
                    and batch_size == 16 and args.time_steps == 8)
      versus = f"{REFERENCE_PGD10_S / r['best_s']:.2f}x faster" if comparable else "–"
      print(f"| {ATTACKS.get(name, name)} | {r['model']} | {r['T']} | {batch_size} | "
            f"{r['platform']} | {r['first_call_s']:.2f} | {r['best_s']:.2f} | "
            f"{r['median_s']:.2f} | {r['images_per_s']:.2f} | "
            f"{r['forward_passes_per_image']:.0f} | {r['queries_per_image']:.0f} | {versus} |",
            flush=True)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__":
  main()
