"""Times the same steps on two checkouts of jsnn side by side: the only valid speed claim here.

    git worktree add --detach /tmp/jsnn-old d1adeb5
    python benchmarks/compare.py --old /tmp/jsnn-old --out benchmarks/results/compare-cpu
    python benchmarks/compare.py --old /tmp/jsnn-old --cases vgg5-at,vgg5-pgd10 --rounds 3
    python benchmarks/compare.py --old . --cases vgg5-at --quick     # checks the script only

Machines differ from day to day, so a speedup is only a ratio of two checkouts timed in one run.
Each measurement runs in its own process, which imports jsnn from one checkout's root; the
processes alternate old, new, old, new… for ``--rounds`` rounds, and each side's figure is its
best call. A process compiles the jitted step once (the compile time is reported), runs one
warm-up call and then ``--repeats`` timed calls, each ending in ``block_until_ready``. It also
reports XLA's ``memory_analysis`` of the compiled program (temporaries), the process's peak RSS,
XLA's FLOP count and the fp32 matmul throughput of the machine measured in the same process
(:mod:`machine`): ``fraction`` is the step's useful FLOP/s over that. Useful FLOPs are XLA's count
of the new checkout's training step (loop-free), and for an attack its passes per image times the
FLOPs of one input gradient and one forward (XLA counts a rolled loop's body once).
``--profile`` adds one traced call per case and side and names the five most expensive XLA ops.

Cases (``--cases``, comma-separated; ``--list`` prints them): the mid-scale / reduced model
(VGG5 at 1/4 width, 256-unit head, T = 4, batch 64: natural and RFGSM-AT steps, PGD-10, APGD-CE
with 10 and with 100 steps), VGG11 (T = 8, batch 64: natural and AT steps; PGD-10 at batch
16) and WRN16-4 (T = 8, batch 64: AT step, for its memory). Steps are the real jitted training
step (batch gather from a resident random uint8 set, augmentation, perturbation, MS-MPPD, SGD)
and attacks are ``jsnn.attacks.make_attack`` through the surrogate gradient on a random-init model
in eval mode, labelled with its own predictions.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gzip
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclasses.dataclass(frozen=True)
class Case:
  """One timed program: a training step (``mode``) or an attack (``attack``) on one model."""
  model: str
  width: float
  head_width: int
  time_steps: int
  batch: int
  mode: str = ""          # natural | at: a training step
  attack: str = ""        # pgd10 | apgd-ce | apgd-ce100: an attack
  repeats: int = 3        # timed calls per process (the big models take 1)


MID = dict(model="vgg5", width=0.25, head_width=256, time_steps=4, batch=64)
VGG11 = dict(model="vgg11", width=1.0, head_width=4096, time_steps=8, batch=64, repeats=1)
CASES = {
    "vgg5-natural": Case(**MID, mode="natural"),
    "vgg5-at": Case(**MID, mode="at"),
    "vgg5-pgd10": Case(**MID, attack="pgd10"),
    "vgg5-apgd-ce": Case(**MID, attack="apgd-ce"),
    "vgg5-apgd-ce100": Case(**MID, attack="apgd-ce100", repeats=1),
    "vgg11-natural": Case(**VGG11, mode="natural"),
    "vgg11-at": Case(**VGG11, mode="at"),
    # Batch 16, as benchmarks/attacks.py and the reference's figure: at 64 the old commit's
    # unrolled program takes minutes to compile and each call about 90 s.
    "vgg11-pgd10": Case(**{**VGG11, "batch": 16}, attack="pgd10"),
    "wrn16-at": Case(model="wrn16", width=1.0, head_width=4096, time_steps=8, batch=64, mode="at",
                     repeats=1),
}
QUICK = dict(width=0.125, head_width=32, time_steps=2, batch=8)


# -------------------------------------------------------------------------------------------------
# One measurement (runs in a worker process that imports jsnn from `root`)
# -------------------------------------------------------------------------------------------------


def _build_train(case: Case):
  import jax
  import numpy as np
  from configs import default
  from jsnn import train_step
  # Where these live since jsnn.workdir; older checkouts keep them in jsnn.trainer. Decided from
  # the files: an editable install would find a module the checkout lacks in another tree.
  root = os.path.dirname(os.path.dirname(jsnn_file()))
  if os.path.exists(os.path.join(root, "jsnn", "workdir.py")):
    from jsnn import train_state, workdir
    resolve, make_model, settings_of = (workdir.resolve_config, workdir.model_from_config,
                                        workdir.step_settings)
    create_state = lambda config, model, tx, key: train_state.create_train_state(model, tx, key)
  else:
    from jsnn import trainer
    resolve, make_model, settings_of = (trainer.resolve_config, trainer.model_from_config,
                                        trainer.step_settings)
    create_state = trainer.create_train_state

  config = default.get_config()
  config.model.name, config.model.time_steps = case.model, case.time_steps
  config.model.width, config.model.head_width = case.width, case.head_width
  config.training.mode, config.training.rho = case.mode, (0.0 if case.mode == "natural" else 1.0)
  config.training.batch_size = case.batch
  config = resolve(config)
  model = make_model(config, 10)
  tx, schedule = train_step.make_optimizer(learning_rate=0.1, epochs=100, steps_per_epoch=782)
  state = jax.jit(functools.partial(create_state, config, model, tx))(
      jax.random.key(0))
  rng = np.random.default_rng(0)
  images = jax.device_put(rng.integers(0, 256, (1024, 32, 32, 3), dtype=np.uint8))
  labels = jax.device_put(rng.integers(0, 10, (1024,), dtype=np.int32))
  step = jax.jit(functools.partial(train_step.train_step, model=model, tx=tx, schedule=schedule,
                                   settings=settings_of(config)), donate_argnums=0)
  compiled = step.lower(state, images, labels).compile()
  holder = [state]

  def call():
    holder[0], metrics = compiled(holder[0], images, labels)
    return metrics

  return compiled, call, None


def jsnn_file() -> str:
  import jsnn
  return jsnn.__file__


def _attack_spec(name: str):
  from jsnn import attacks
  if name == "apgd-ce100":
    return dataclasses.replace(attacks.get_attack_spec("apgd-ce"), name=name, num_steps=100)
  return attacks.get_attack_spec(name)


def _attack_model(case: Case):
  """The attacked model of ``case``, built with the jsnn of this process's checkout."""
  from jsnn import models
  extra = {"head_width": case.head_width} if case.model.startswith("vgg") else {}
  # Checkouts since jsnn.spiking.NeuronSpec take the neuron as one spec, older ones as keywords.
  if hasattr(models, "NeuronSpec"):
    extra["neuron"] = models.NeuronSpec(time_steps=case.time_steps)
  else:
    extra["time_steps"] = case.time_steps
  return models.create_model(case.model, num_classes=10, width=case.width, **extra)


def _build_attack(case: Case):
  import jax
  import numpy as np
  from jsnn import attacks, models

  model = _attack_model(case)
  variables = models.init_model(model, jax.random.key(0))
  attack = attacks.make_attack(_attack_spec(case.attack))

  def run(variables, x, y, key, epsilon):
    logits_fn = lambda z: models.apply_model(model, variables, z, train=False)[0]
    return attack(logits_fn, x, y, key=key, epsilon=epsilon)

  rng = np.random.default_rng(0)
  x = jax.device_put(rng.uniform(size=(case.batch, 32, 32, 3)).astype(np.float32))
  y = jax.jit(lambda v, x: jax.numpy.argmax(models.apply_model(model, v, x, train=False)[0],
                                            axis=-1))(variables, x)
  epsilon = np.float32(8 / 255)
  compiled = jax.jit(run).lower(variables, x, y, jax.random.key(0), epsilon).compile()
  counter = [0]

  def call():
    counter[0] += 1
    return compiled(variables, x, y, jax.random.key(counter[0]), epsilon)

  return compiled, call, _attack_flops(case, model, variables, x, y)


def _attack_flops(case: Case, model, variables, x, y) -> float:
  """Useful FLOPs of an attack: its passes per image (``attacks.attack_passes``) times the FLOPs
  of one input gradient and of one forward pass. XLA counts a rolled loop's body once, so the
  compiled attack's own count says little."""
  import jax
  import jax.numpy as jnp
  import machine
  from jsnn import attacks, losses, models
  forward_passes, backward_passes = attacks.attack_passes(_attack_spec(case.attack))
  forward = lambda v, z: models.apply_model(model, v, z, train=False)[0]
  gradient = jax.grad(lambda v, z: jnp.sum(losses.cross_entropy(forward(v, z), y)), argnums=1)
  grad_flops = machine.compiled_flops(jax.jit(gradient).lower(variables, x).compile())
  forward_flops = machine.compiled_flops(jax.jit(forward).lower(variables, x).compile())
  return backward_passes * grad_flops + (forward_passes - backward_passes) * forward_flops


def _top_ops(trace_dir: str, count: int = 5) -> list[dict]:
  """The ``count`` XLA ops with the most time in a profiler trace (all threads, ms)."""
  paths = [os.path.join(d, f) for d, _, files in os.walk(trace_dir) for f in files
           if f.endswith(".trace.json.gz")]
  if not paths:
    return []
  with gzip.open(paths[0]) as f:
    events = json.load(f)["traceEvents"]
  total, calls = Counter(), Counter()
  for e in events:
    name = e.get("name", "")
    # Executor, Python and thread-pool events wrap the ops: keep HLO instruction names only.
    if e.get("ph") != "X" or not re.fullmatch(r"[A-Za-z_][\w\-]*(\.\d+)?", name):
      continue
    total[name] += e["dur"]
    calls[name] += 1
  return [{"op": name, "ms": round(us / 1e3, 1), "calls": calls[name]}
          for name, us in total.most_common(count)]


def measure(root: str, case: Case, repeats: int, profile: bool) -> dict:
  """Compiles and times ``case`` with the jsnn found under ``root``."""
  sys.path.insert(0, root)
  import jax
  import jsnn  # noqa: F401  (XLA:CPU flags before the backend starts)
  import machine

  start = time.perf_counter()
  compiled, call, useful_flops = (_build_train if case.mode else _build_attack)(case)
  compile_s = time.perf_counter() - start
  jax.block_until_ready(call())   # warm-up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(call())
    times.append(time.perf_counter() - start)
  top = []
  if profile:
    with tempfile.TemporaryDirectory() as trace_dir:
      with jax.profiler.trace(trace_dir):
        jax.block_until_ready(call())
      top = _top_ops(trace_dir)
  memory = compiled.memory_analysis()
  return {
      "root": root, "commit": _commit(root), "best_s": min(times), "times_s": times,
      "compile_s": compile_s,
      "flops": useful_flops if useful_flops is not None else machine.compiled_flops(compiled),
      "temp_gib": memory.temp_size_in_bytes / 2**30 if memory else None,
      "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
      "matmul_gflops": machine.matmul_gflops(), "top_ops": top,
      "jax": jax.__version__, "platform": jax.devices()[0].platform,
  }


def attack_useful_flops(root: str, case: Case) -> float:
  """:func:`_attack_flops` of ``case`` with the jsnn under ``root``, without running the attack."""
  sys.path.insert(0, root)
  import jax
  import numpy as np
  import jsnn  # noqa: F401
  from jsnn import models
  model = _attack_model(case)
  variables = models.init_model(model, jax.random.key(0))
  x = np.zeros((case.batch, 32, 32, 3), np.float32)
  y = np.zeros((case.batch,), np.int32)
  return _attack_flops(case, model, variables, x, y)


def recount(out: str, new_root: str) -> list[dict]:
  """Recomputes the useful FLOPs (and fractions) of the attack rows of ``out.json``, in place.

  An earlier compare.py took XLA's count of the compiled attack, in which a rolled loop's body
  counts once; the timings are kept as they were measured.
  """
  with open(out + ".json") as f:
    saved = json.load(f)
  rows = []
  for r in saved["rows"]:
    case = Case(**r["spec"])
    if case.attack:
      request = json.dumps({"root": os.path.abspath(new_root), "case": dataclasses.asdict(case)})
      done = subprocess.run([sys.executable, os.path.abspath(__file__), "--flops-worker",
                             request], capture_output=True, text=True, check=True)
      flops = float(done.stdout.strip().splitlines()[-1])
      r["old"]["flops"] = r["new"]["flops"] = flops
      runs = lambda side: [{**r[side], "best_s": b, "matmul_gflops": r["matmul_gflops"]}
                           for b in r[side]["all_best_s"]]
      r = _row(r["case"], case, runs("old"), runs("new"))
    rows.append(r)
  saved["rows"] = rows
  saved["machine"]["recounted"] = time.strftime("%Y-%m-%d")
  with open(out + ".json", "w") as f:
    json.dump(saved, f, indent=2)
  with open(out + ".md", "w") as f:
    f.write(_markdown(rows, saved["machine"]))
  return rows


def _commit(root: str) -> str:
  out = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty"],
                       capture_output=True, text=True)
  return out.stdout.strip() or "unknown"


# -------------------------------------------------------------------------------------------------
# The side-by-side run
# -------------------------------------------------------------------------------------------------


def _run_worker(root: str, name: str, case: Case, repeats: int, profile: bool) -> dict:
  request = json.dumps({"root": os.path.abspath(root), "case": dataclasses.asdict(case),
                        "repeats": repeats, "profile": profile})
  out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", request],
                       capture_output=True, text=True)
  if out.returncode:
    tail = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
    raise RuntimeError(f"{name} on {root} failed: {tail}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def _row(name: str, case: Case, old: list[dict], new: list[dict]) -> dict:
  best = lambda runs: min(runs, key=lambda r: r["best_s"])
  o, n = best(old), best(new)
  useful = n["flops"] or o["flops"]
  matmul = max(r["matmul_gflops"] for r in old + new)
  fraction = lambda r: useful / r["best_s"] / 1e9 / matmul
  return {
      "case": name, "spec": dataclasses.asdict(case), "speedup": o["best_s"] / n["best_s"],
      "old": {**o, "images_per_s": case.batch / o["best_s"], "fraction": fraction(o),
              "all_best_s": [r["best_s"] for r in old]},
      "new": {**n, "images_per_s": case.batch / n["best_s"], "fraction": fraction(n),
              "all_best_s": [r["best_s"] for r in new]},
      "useful_gflops": useful / 1e9, "matmul_gflops": matmul,
  }


def _markdown(rows: list[dict], header: dict) -> str:
  lines = [
      f"Machine: {header['cpu']}; jax {header['jax']}; old {header['old']}, new {header['new']}; "
      f"{header['rounds']} interleaved rounds, best call per side.", "",
      "| case | old s | new s | speedup | old img/s | new img/s | old / new fraction of fp32 "
      "matmul | old / new compile s | old / new XLA temp GiB | old / new peak RSS GiB |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for r in rows:
    o, n = r["old"], r["new"]
    gib = lambda v: "–" if v is None else f"{v:.2f}"
    lines.append(
        f"| {r['case']} | {o['best_s']:.3f} | {n['best_s']:.3f} | {r['speedup']:.2f}× | "
        f"{o['images_per_s']:.1f} | {n['images_per_s']:.1f} | "
        f"{100 * o['fraction']:.1f} % / {100 * n['fraction']:.1f} % | "
        f"{o['compile_s']:.1f} / {n['compile_s']:.1f} | {gib(o['temp_gib'])} / {gib(n['temp_gib'])}"
        f" | {o['peak_rss_gib']:.2f} / {n['peak_rss_gib']:.2f} |")
  profiled = [r for r in rows if r["new"]["top_ops"]]
  if profiled:
    lines += ["", "Top five XLA ops by time, one traced call (op: ms summed over threads):", ""]
    for r in profiled:
      for side in ("old", "new"):
        ops = ", ".join(f"{t['op']} {t['ms']}" for t in r[side]["top_ops"])
        lines.append(f"- {r['case']}, {side}: {ops}")
  return "\n".join(lines) + "\n"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--old", help="root of the old checkout (a git worktree)")
  parser.add_argument("--new", default=os.path.dirname(HERE), help="root of the new checkout")
  parser.add_argument("--cases", default=",".join(CASES))
  parser.add_argument("--rounds", type=int, default=3, help="interleaved processes per side")
  parser.add_argument("--repeats", type=int, default=0,
                      help="timed calls per process (0 = the case's own: 3, or 1 for big models)")
  parser.add_argument("--profile", action="store_true", help="name the top five ops")
  parser.add_argument("--quick", action="store_true", help="tiny models: checks the script only")
  parser.add_argument("--out", default="", help="write OUT.md and OUT.json")
  parser.add_argument("--list", action="store_true", help="print the cases and exit")
  parser.add_argument("--recount", action="store_true",
                      help="recompute the attack rows' useful FLOPs of OUT.json (no timing)")
  parser.add_argument("--worker", help=argparse.SUPPRESS)
  parser.add_argument("--flops-worker", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.flops_worker:
    request = json.loads(args.flops_worker)
    print(attack_useful_flops(request["root"], Case(**request["case"])))
    return 0
  if args.recount:
    if not args.out:
      parser.error("--recount needs --out (the OUT of OUT.json)")
    recount(args.out, args.new)
    return 0
  if args.worker:
    request = json.loads(args.worker)
    print(json.dumps(measure(request["root"], Case(**request["case"]), request["repeats"],
                             request["profile"])))
    return 0
  if args.list:
    for name, case in CASES.items():
      print(f"{name}: {case}")
    return 0
  unknown = [c for c in args.cases.split(",") if c not in CASES]
  if unknown or not args.old:
    parser.error(f"unknown case(s) {unknown}; expected {sorted(CASES)}" if unknown
                 else "--old is required")
  if args.rounds < 1 or args.repeats < 0:
    parser.error("--rounds must be >= 1 and --repeats >= 0")
  sys.path.insert(0, HERE)
  import machine

  rows = []
  for name in args.cases.split(","):
    case = CASES[name]
    if args.quick:
      case = dataclasses.replace(case, **QUICK, repeats=1)
    repeats = args.repeats or case.repeats
    runs = {"old": [], "new": []}
    for _ in range(args.rounds):
      for side, root in (("old", args.old), ("new", args.new)):
        runs[side].append(_run_worker(root, name, case, repeats, args.profile))
    rows.append(_row(name, case, runs["old"], runs["new"]))
    r = rows[-1]
    print(f"{name}: old {r['old']['best_s']:.3f} s, new {r['new']['best_s']:.3f} s, "
          f"{r['speedup']:.2f}x; fraction of fp32 matmul {100 * r['old']['fraction']:.1f} % → "
          f"{100 * r['new']['fraction']:.1f} %", flush=True)
  header = {"cpu": machine.cpu_model(), "jax": rows[0]["new"]["jax"] if rows else "",
            "old": _commit(args.old), "new": _commit(args.new), "rounds": args.rounds,
            "date": time.strftime("%Y-%m-%d")}
  text = _markdown(rows, header)
  print(text)
  if args.out:
    with open(args.out + ".md", "w") as f:
      f.write(text)
    with open(args.out + ".json", "w") as f:
      json.dump({"machine": header, "rows": rows}, f, indent=2)
  return 0


if __name__ == "__main__":
  sys.exit(main())
