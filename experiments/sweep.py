r"""Trains and evaluates a set of table rows, skipping finished ones, into one results file.

    python -m experiments.sweep --rows table2 --protocol reduced --seeds 0,1,2 \
        --root results/table2_reduced                       # ≈ 2 h on 2 CPU cores
    python -m experiments.sweep --rows table1_vgg11 --protocol full --root results/table1_vgg11
    python -m experiments.sweep --rows table1_cifar100_wrn16 --protocol full   # TFDS CIFAR-100
    python -m experiments.sweep --rows table2 --protocol reduced --list     # rows and commands only

Each row (a config file, its row argument and a seed) runs in ``<root>/<row-id>/``, a normal
training workdir, in four phases, each skipped when its output is already there:

1. training, ``python train.py`` in its own process — a killed row resumes from its latest
   checkpoint and ends where an uninterrupted run would;
2. the robustness suite of the config's ``eval`` section,
   :func:`jsnn.evaluation.evaluate_checkpoint` (``robustness.json``; itself resumable attack by
   attack);
3. for rows marked for Figure 3, the ε sweep, :func:`jsnn.evaluation.sweep_epsilon`
   (``eps_sweep.json``);
4. for DLIF rows, the trained factors for Figure 4 (``dlif_factors.json``).

A row is complete when ``row.json`` says its training finished with the same config and the
robustness results hold every attack of the suite at its settings (and the sweep and the factors
where due); complete rows are not touched. After every row, ``<root>/results.json`` is rebuilt from
the files of every row directory under the root: row id, config argument, seed, clean and per-attack
accuracies, the worst case, training and evaluation wall times, and the sanity checks.
``python -m experiments.report`` turns it into docs/REPRODUCTION.md.

Protocols: ``full`` runs the paper's configs unchanged (configs/cifar10_vgg5.py,
cifar10_vgg11.py, cifar10_wrn16.py: full model, T = 8, 100 epochs, every attack on the 10,000
test images) and needs a GPU or TPU; ``reduced`` runs configs/cifar10_reduced.py, sized for this
machine (see its docstring for what it can and cannot show). A failing row (diverged, bad config)
is recorded with its error and the sweep goes on; the exit status is 1 if any row failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
import traceback
from typing import Callable, Optional, Sequence

from experiments import common
from jsnn import config_checks
from jsnn import cli

ROW_FILE = "row.json"
RESULTS_FILE = "results.json"
ROBUSTNESS_FILE = "robustness.json"
SWEEP_FILE = "eps_sweep.json"
FACTORS_FILE = "dlif_factors.json"
METRICS_FILE = "metrics.jsonl"
FLAGS_FILE = "robustness_flags.npz"


@dataclasses.dataclass(frozen=True)
class Setting:
  """One row of a paper table: its key in paper_numbers.json, label and config argument."""
  key: str
  label: str
  arg: str
  figure3: bool = False        # also run the ε sweep (Figure 3)
  in_paper: bool = True        # the paper has numbers for it
  seeds: tuple = ()            # only these of the sweep's seeds (empty: all of them)


@dataclasses.dataclass(frozen=True)
class RowSet:
  """A table's rows and the config file each protocol trains them with."""
  table: str                               # key in paper_numbers.json
  settings: tuple[Setting, ...]
  configs: dict                            # protocol -> config file
  arg_prefix: dict = dataclasses.field(default_factory=dict)   # protocol -> extra argument


_TABLE1 = (
    Setting("lif-natural", "LIF, Natural", "natural,neuron=lif"),
    Setting("dlif-natural", "DLIF, Natural", "natural"),
    Setting("gaussian-rho0", "DLIF, Gaussian, ρ = 0", "gaussian,rho=0"),
    Setting("gaussian-rho1", "DLIF, Gaussian, ρ = 1", "gaussian,rho=1"),
    Setting("at-rho0", "DLIF, AT, ρ = 0", "at,rho=0", figure3=True),
    Setting("at-rho1", "DLIF, AT, ρ = 1", "at,rho=1", figure3=True),
    Setting("at_reg-rho0", "DLIF, AT+Reg, ρ = 0", "at_reg,rho=0", figure3=True),
    Setting("at_reg-rho1", "DLIF, AT+Reg, ρ = 1", "at_reg,rho=1", figure3=True),
)

ROW_SETS = {
    # Table 2 (VGG5, RFGSM AT): ρ, LIF vs DLIF, the distance, and the DLIF placement (the paper's
    # factor on the leak against the reference code's on the input current, which all other rows
    # use; the paper has no numbers for the leak rows).
    "table2": RowSet("table2", (
        Setting("dlif-rho0", "DLIF, AT, ρ = 0, MS-MPPD", "at,rho=0", figure3=True),
        Setting("dlif-rho0.5", "DLIF, AT, ρ = 0.5, MS-MPPD", "at,rho=0.5"),
        Setting("dlif-rho1", "DLIF, AT, ρ = 1, MS-MPPD", "at,rho=1", figure3=True),
        Setting("dlif-rho2", "DLIF, AT, ρ = 2, MS-MPPD", "at,rho=2"),
        Setting("lif-rho0", "LIF, AT, ρ = 0, MS-MPPD", "at,rho=0,neuron=lif"),
        Setting("lif-rho1", "LIF, AT, ρ = 1, MS-MPPD", "at,rho=1,neuron=lif"),
        Setting("lif-rho2", "LIF, AT, ρ = 2, MS-MPPD", "at,rho=2,neuron=lif"),
        Setting("dlif-rho1-tasad", "DLIF, AT, ρ = 1, TASAD", "at,rho=1,distance=tasad"),
        Setting("dlif-rho1-std", "DLIF, AT, ρ = 1, STD", "at,rho=1,distance=std"),
        Setting("dlif-leak-rho0", "DLIF (factor on the leak), AT, ρ = 0, MS-MPPD",
                "at,rho=0,placement=leak", in_paper=False),
        Setting("dlif-leak-rho1", "DLIF (factor on the leak), AT, ρ = 1, MS-MPPD",
                "at,rho=1,placement=leak", in_paper=False),
    ), {"full": "configs/cifar10_vgg5.py", "reduced": "configs/cifar10_reduced.py"}),
    # The paper's Table 2 row that the brief's set leaves out; same root as table2.
    "table2_extra": RowSet("table2", (
        Setting("lif-rho0.5", "LIF, AT, ρ = 0.5, MS-MPPD", "at,rho=0.5,neuron=lif"),
    ), {"full": "configs/cifar10_vgg5.py", "reduced": "configs/cifar10_reduced.py"}),
    "table1_vgg11": RowSet("table1_cifar10_vgg11", _TABLE1,
                           {"full": "configs/cifar10_vgg11.py",
                            "reduced": "configs/cifar10_reduced.py"},
                           {"reduced": "model=vgg11"}),
    "table1_wrn16": RowSet("table1_cifar10_wrn16", _TABLE1,
                           {"full": "configs/cifar10_wrn16.py",
                            "reduced": "configs/cifar10_reduced.py"},
                           {"reduced": "model=wrn16"}),
    # CIFAR-100 has no reduced protocol: ../shared/data holds only CIFAR-10, and the paper's
    # configs read CIFAR-100 through TFDS wherever it can be prepared.
    "table1_cifar100_vgg11": RowSet("table1_cifar100_vgg11", _TABLE1,
                                    {"full": "configs/cifar100_vgg11.py"}),
    "table1_cifar100_wrn16": RowSet("table1_cifar100_wrn16", _TABLE1,
                                    {"full": "configs/cifar100_wrn16.py"}),
    # The paper's question at a scale where the models learn (configs/cifar10_mid.py): DLIF AT
    # with ρ = 0 against ρ = 1, seeds paired; natural training once, as the baseline.
    "mid": RowSet("mid", (
        Setting("dlif-natural", "DLIF, Natural", "natural", seeds=(0,)),
        Setting("at-rho0", "DLIF, AT, ρ = 0", "at,rho=0", figure3=True),
        Setting("at-rho1", "DLIF, AT, ρ = 1", "at,rho=1", figure3=True),
    ), {"mid": "configs/cifar10_mid.py"}),
    # What the mid protocol adds when time allows: ρ = 2 and the paper's DLIF placement.
    "mid_extra": RowSet("mid", (
        Setting("at-rho2", "DLIF, AT, ρ = 2", "at,rho=2"),
        Setting("leak-rho0", "DLIF (factor on the leak), AT, ρ = 0", "at,rho=0,placement=leak",
                in_paper=False),
        Setting("leak-rho1", "DLIF (factor on the leak), AT, ρ = 1", "at,rho=1,placement=leak",
                in_paper=False),
    ), {"mid": "configs/cifar10_mid.py"}),
}
PROTOCOLS = ("reduced", "mid", "full")
# The reference trained with seed 42 (spec §6); the reduced and mid protocols need several seeds.
DEFAULT_SEEDS = {"reduced": (0, 1, 2), "mid": (0, 1, 2), "full": (42,)}


@dataclasses.dataclass(frozen=True)
class Row:
  """One run: a setting of a table, trained with one protocol and one seed."""
  id: str
  table: str
  setting: str
  label: str
  config: str
  arg: str
  seed: int
  protocol: str
  figure3: bool
  paper_key: Optional[str]

  @property
  def spec(self) -> str:
    return f"{self.config}:{self.arg}"


def make_rows(row_set: str, protocol: str, seeds: Sequence[int],
              only: Sequence[str] = ()) -> list[Row]:
  """The rows of ``row_set`` for ``protocol`` and ``seeds`` (settings filtered by ``only``)."""
  if row_set not in ROW_SETS:
    raise ValueError(f"unknown row set {row_set!r}; expected one of {sorted(ROW_SETS)}")
  if protocol not in PROTOCOLS:
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
  rs = ROW_SETS[row_set]
  if protocol not in rs.configs:
    raise ValueError(f"row set {row_set!r} has no {protocol!r} protocol; expected one of "
                     f"{sorted(rs.configs)}")
  unknown = set(only) - {s.key for s in rs.settings}
  if unknown:
    raise ValueError(f"unknown settings {sorted(unknown)} for {row_set}; expected some of "
                     f"{[s.key for s in rs.settings]}")
  rows = []
  # Seed-major: a sweep stopped early still holds every setting of its first seeds.
  for seed in seeds:
    for s in rs.settings:
      if (only and s.key not in only) or (s.seeds and seed not in s.seeds):
        continue
      arg = ",".join(filter(None, [s.arg, rs.arg_prefix.get(protocol, ""), f"seed={seed}"]))
      rows.append(Row(id=f"{s.key}-s{seed}", table=rs.table, setting=s.key, label=s.label,
                      config=rs.configs[protocol], arg=arg, seed=seed, protocol=protocol,
                      figure3=s.figure3, paper_key=f"{rs.table}/{s.key}" if s.in_paper else None))
  return rows


def row_config(row: Row, overrides: Sequence[str] = ()):
  """The row's config, with the sweep's ``--set`` overrides applied."""
  return common.load_config(row.spec, overrides)


# -------------------------------------------------------------------------------------------------
# Completion checks: files only, nothing is loaded into JAX
# -------------------------------------------------------------------------------------------------


def training_config_differences(saved: dict, current: dict) -> list[str]:
  """Config keys that differ and change the trained model (`jsnn.config_diff.config_differences`).

  A key the saved run lacks (added to jsnn after it trained) differs only if the current value is
  not its default in configs/default.py, so a new option left at its default keeps old rows done.
  """
  from configs import default   # pylint: disable=import-outside-toplevel
  from jsnn import config_diff   # pylint: disable=import-outside-toplevel  (no JAX import)
  return config_diff.config_differences(saved, current, defaults=default.get_config().to_dict())


def training_done(rowdir: str, config) -> bool:
  state = common.read_json(os.path.join(rowdir, ROW_FILE)) or {}
  training = state.get("training", {})
  return bool(training.get("done")) and not training_config_differences(
      state.get("config", {}), config.to_dict())


def evaluation_done(rowdir: str, config) -> bool:
  """``robustness.json`` holds every attack of ``config.eval`` at its ε, examples and checkpoint."""
  results = common.read_json(os.path.join(rowdir, ROBUSTNESS_FILE))
  if not results or "worst_case" not in results:
    return False
  e = config.eval
  for name in (n.strip() for n in e.attacks.split(",") if n.strip()):
    entry = results.get("attacks", {}).get(name)
    if not isinstance(entry, dict) or entry.get("checkpoint") != e.checkpoint:
      return False
    if e.num_examples and entry.get("num_examples") != e.num_examples:
      return False
    if name != "clean" and not math.isclose(entry.get("epsilon", -1.0), e.epsilon, rel_tol=1e-6):
      return False
  if e.sanity_checks and not results.get("check_runs"):
    return False
  return True


def sweep_epsilons(config) -> list[float]:
  return [float(x) for x in str(config.eval.sweep_epsilons).split(",") if x.strip()]


def sweep_done(rowdir: str, config) -> bool:
  data = common.read_json(os.path.join(rowdir, SWEEP_FILE))
  if not data:
    return False
  points = data.get("points", [])
  have = {round(p.get("epsilon_255", -1), 4) for p in points
          if not config.eval.num_examples or p.get("total") == config.eval.num_examples}
  return all(round(e, 4) in have for e in sweep_epsilons(config))


def needs_factors(config) -> bool:
  return config.model.neuron == "dlif"


def phases_due(row: Row, rowdir: str, config) -> list[str]:
  """The phases a row still needs, in order; empty when the row is complete."""
  due = []
  if not training_done(rowdir, config):
    due.append("train")
  if "train" in due or not evaluation_done(rowdir, config):
    due.append("evaluate")
  if row.figure3 and ("train" in due or not sweep_done(rowdir, config)):
    due.append("sweep")
  if needs_factors(config) and ("train" in due or not os.path.exists(
      os.path.join(rowdir, FACTORS_FILE))):
    due.append("factors")
  return due


# -------------------------------------------------------------------------------------------------
# Running a row
# -------------------------------------------------------------------------------------------------


def _evaluate(config, workdir: str) -> dict:
  """The robustness suite: jsnn.evaluation's public entry point (robustness.json)."""
  from jsnn import evaluation
  return evaluation.evaluate_checkpoint(config, workdir)


def _sweep_epsilon(config, workdir: str) -> dict:
  """Figure 3's ε sweep: jsnn.evaluation's public entry point (eps_sweep.json)."""
  from jsnn import evaluation
  return evaluation.sweep_epsilon(config, workdir)


def _factors(config, workdir: str) -> dict:
  from experiments import figure4
  return figure4.extract(workdir, config.eval.checkpoint)


def _train(config, workdir: str, row: Row, overrides: Sequence[str]) -> None:
  """``python train.py`` for the row, in its own process: the driver stands beside the trainer.

  train.py resumes a killed run from the workdir's latest checkpoint; its one-line error (exit
  status 2) becomes the row's error.
  """
  del config   # train.py rebuilds it from the same spec and overrides
  command = [sys.executable, os.path.join(common.REPO, "train.py"), "--config",
             os.path.join(common.REPO, row.config) + f":{row.arg}", "--workdir", workdir]
  command += [f"--config.{item}" for item in overrides]
  last = ""
  with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=common.REPO) as process:
    for line in process.stderr:   # passed on as it comes, the last line kept for the error
      sys.stderr.write(line)
      last = line.strip() or last
  if process.returncode:
    raise RuntimeError(f"train.py exited with status {process.returncode}: {last or 'no message'}")


PHASES: dict[str, Callable] = {"train": _train, "evaluate": _evaluate, "sweep": _sweep_epsilon,
                               "factors": _factors}


def _load_state(rowdir: str, row: Row, config) -> dict:
  state = common.read_json(os.path.join(rowdir, ROW_FILE)) or {}
  state["row"] = dataclasses.asdict(row)
  if state.get("config") and training_config_differences(state["config"], config.to_dict()):
    # Another config trained here before: its phases say nothing about this one.
    state = {"row": state["row"], "previous_config": state["config"]}
  state["config"] = config.to_dict()
  state.setdefault("phases", {})
  for phase in state["phases"].values():
    _close_killed_call(phase, rowdir)
  return state


def _close_killed_call(phase: dict, rowdir: str) -> None:
  """A call that never finished (the driver was killed): estimate its wall time from the last
  file the row wrote, so that wall times still count it."""
  for call in phase.get("calls", []):
    if call.get("wall_s") is None:
      latest = max((os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(rowdir)
                    for f in fs), default=call["start_time"])
      call.update(wall_s=max(0.0, latest - call["start_time"]), outcome="killed",
                  estimated=True)


def run_row(row: Row, root: str, overrides: Sequence[str] = (), *, log=print) -> dict:
  """Runs the phases a row still needs; returns its ``row.json`` state."""
  rowdir = os.path.join(root, row.id)
  config = row_config(row, overrides)
  due = phases_due(row, rowdir, config)
  if not due:
    log(f"{row.id}: complete, skipped")
    return common.read_json(os.path.join(rowdir, ROW_FILE))
  os.makedirs(rowdir, exist_ok=True)
  state = _load_state(rowdir, row, config)
  state.pop("error", None)
  state.pop("traceback", None)
  for name in due:
    phase = state["phases"].setdefault(name, {"calls": []})
    call = {"start": common.now(), "start_time": time.time(), "wall_s": None}
    phase["calls"].append(call)
    state["status"] = f"running {name}"
    common.write_json(os.path.join(rowdir, ROW_FILE), state)
    log(f"{row.id}: {name} …")
    start = time.perf_counter()
    try:
      if name == "train":
        _train(config, rowdir, row, overrides)
      else:
        PHASES[name](config, rowdir)
    except Exception as e:  # noqa: BLE001 - one failing row must not stop the sweep
      call.update(wall_s=time.perf_counter() - start, outcome="error")
      state.update(status="failed", error=f"{name}: {type(e).__name__}: {e}",
                   traceback=traceback.format_exc(limit=8))
      common.write_json(os.path.join(rowdir, ROW_FILE), state)
      log(f"{row.id}: {name} failed: {type(e).__name__}: {e}")
      return state
    call.update(wall_s=time.perf_counter() - start, outcome="done")
    phase["done"] = True
    if name == "train":
      state["training"] = {"done": True}
    log(f"{row.id}: {name} done in {call['wall_s']:.0f} s")
  state["status"] = "complete"
  common.write_json(os.path.join(rowdir, ROW_FILE), state)
  return state


# -------------------------------------------------------------------------------------------------
# Collecting results.json
# -------------------------------------------------------------------------------------------------


def _read_metrics(rowdir: str) -> list[dict]:
  path = os.path.join(rowdir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  by_epoch = {}
  with open(path) as f:
    for line in f:
      if line.strip():
        entry = json.loads(line)
        by_epoch[entry.get("epoch")] = entry   # a resumed epoch: the last line wins
  return [by_epoch[k] for k in sorted(k for k in by_epoch if k is not None)]


def _wall(state: dict, phase: str) -> Optional[float]:
  calls = state.get("phases", {}).get(phase, {}).get("calls", [])
  walls = [c["wall_s"] for c in calls if c.get("wall_s") is not None]
  return sum(walls) if walls else None


def collect_row(rowdir: str, row: Optional[dict] = None) -> dict:
  """One row's entry of results.json, from the files in its directory."""
  state = common.read_json(os.path.join(rowdir, ROW_FILE)) or {}
  row = dict(state.get("row") or row or {})
  entry = {k: row.get(k) for k in ("id", "table", "setting", "label", "config", "arg", "seed",
                                   "protocol", "figure3", "paper_key")}
  entry["status"] = state.get("status", "pending") if state else "pending"
  if state.get("error"):
    entry["error"] = state["error"]
  config = state.get("config", {})
  if config:
    m = config["model"]
    entry["model"] = {k: m[k] for k in ("name", "neuron", "dlif_placement", "time_steps", "width",
                                        "head_width", "leak")}
    entry["training_config"] = {
        "mode": config["training"]["mode"], "rho": config["training"]["rho"],
        "distance": config["training"]["distance"], "epochs": config["training"]["epochs"],
        "batch_size": config["training"]["batch_size"],
        "train_size": config["data"]["train_size"], "data_dir": config["data"]["dir"]}
  metrics = _read_metrics(rowdir)
  if metrics:
    last = metrics[-1]
    entry["training"] = {
        "epochs_done": last.get("epoch"), "steps": last.get("step"),
        "final_test_accuracy": last.get("test_accuracy"),
        "best_test_accuracy": max(m.get("test_accuracy", -1) for m in metrics),
        "images_per_second": last.get("images_per_second"),
        "wall_s": _wall(state, "train")}
  results = common.read_json(os.path.join(rowdir, ROBUSTNESS_FILE))
  if results and results.get("attacks"):
    attacks = results["attacks"]
    entry["accuracies"] = {name: a["accuracy"] for name, a in attacks.items()}
    if results.get("worst_case"):
      entry["worst_case"] = results["worst_case"]["accuracy"]
    entry["num_examples"] = next(iter(attacks.values())).get("num_examples")
    entry["evaluation"] = {"wall_s": _wall(state, "evaluate"),
                           "attack_wall_s": {n: a.get("wall_time_s") for n, a in attacks.items()},
                           "checkpoint": results.get("checkpoint"),
                           "checkpoint_step": results.get("checkpoint_step"),
                           "data": results.get("data")}
    entry["checks"] = results.get("checks", [])
    cascade = results.get("cascades", {}).get("standard")
    if cascade:
      entry["cascade"] = {n: cascade["stages"][n]["accuracy"] for n in cascade["order"]}
      flags_path = os.path.join(rowdir, FLAGS_FILE)
      if os.path.exists(flags_path):
        # The per-example flags stay out of git; what the report needs of them is kept here.
        import numpy as np  # pylint: disable=import-outside-toplevel
        from experiments import suites  # pylint: disable=import-outside-toplevel
        with np.load(flags_path) as f:
          entry["suites"] = suites.suite_accuracies(results, {k: f[k] for k in f.files})
  for key, name in (("eps_sweep", SWEEP_FILE), ("dlif_factors", FACTORS_FILE),
                    ("metrics", METRICS_FILE)):
    if os.path.exists(os.path.join(rowdir, name)):
      entry.setdefault("files", {})[key] = os.path.join(os.path.basename(rowdir), name)
  if _wall(state, "sweep") is not None:
    entry["sweep_wall_s"] = _wall(state, "sweep")
  walls = [w for w in (_wall(state, p) for p in PHASES) if w is not None]
  entry["wall_s"] = sum(walls) if walls else None
  return entry


def collect(root: str, planned: Sequence[Row] = (), *, meta: Optional[dict] = None) -> dict:
  """Rebuilds ``<root>/results.json`` from every row directory under ``root``.

  Planned rows without a directory yet are listed as ``pending``; rows of other row sets found
  under the same root are kept.
  """
  entries = {}
  for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
    rowdir = os.path.join(root, name)
    if os.path.exists(os.path.join(rowdir, ROW_FILE)):
      entries[name] = collect_row(rowdir)
  for row in planned:
    if row.id not in entries:
      entries[row.id] = collect_row(os.path.join(root, row.id), dataclasses.asdict(row))
  previous = common.read_json(os.path.join(root, RESULTS_FILE)) or {}
  runs = previous.get("runs", [])
  if meta:
    runs = runs + [meta]
  results = {"root": os.path.abspath(root), "updated": common.now(), "git": common.git_commit(),
             "runs": runs[-20:], "rows": list(entries.values())}
  common.write_json(os.path.join(root, RESULTS_FILE), results)
  return results


# -------------------------------------------------------------------------------------------------
# Command line
# -------------------------------------------------------------------------------------------------


def enable_compilation_cache(path: str) -> None:
  """XLA's persistent compilation cache: rows that differ only in the seed reuse the compiled
  training step and attacks (measured 7.3 s → 2.0 s for the reduced training step). Set in the
  environment too, so that the train.py processes share it."""
  import jax
  settings = {"jax_compilation_cache_dir": os.path.abspath(path),
              "jax_persistent_cache_min_compile_time_secs": 0.5,
              "jax_persistent_cache_min_entry_size_bytes": 0}
  for name, value in settings.items():
    jax.config.update(name, value)
    os.environ[name.upper()] = str(value)


def run_sweep(rows: Sequence[Row], root: str, overrides: Sequence[str] = (), *, log=print,
              meta: Optional[dict] = None) -> dict:
  """Runs every row (skipping complete ones) and rebuilds results.json after each."""
  os.makedirs(root, exist_ok=True)
  start = time.time()
  failed = []
  for i, row in enumerate(rows):
    log(f"[{i + 1}/{len(rows)}] {row.id}: {row.spec}")
    state = run_row(row, root, overrides, log=log)
    if state and state.get("status") == "failed":
      failed.append(row.id)
    collect(root, rows)
  meta = {**(meta or {}), "wall_s": time.time() - start, "failed": failed}
  results = collect(root, rows, meta=meta)
  return {"results": results, "failed": failed}


@cli.main_guard
def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--rows", required=True, choices=sorted(ROW_SETS), help="row set")
  parser.add_argument("--protocol", default="reduced", choices=PROTOCOLS)
  parser.add_argument("--seeds", default="", help="comma-separated (default: 0,1,2 for reduced, "
                      "42 — the reference's — for full)")
  parser.add_argument("--root", default="", help="output root (default results/<rows>_<protocol>)")
  parser.add_argument("--only", default="", help="comma-separated setting keys to run")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="config override for every row, e.g. eval.batch_size=256")
  parser.add_argument("--list", action="store_true", help="print the rows and their equivalent "
                      "train.py/evaluate.py commands, run nothing")
  parser.add_argument("--collect", action="store_true", help="only rebuild results.json")
  parser.add_argument("--compilation-cache", default="",
                      help="XLA compilation cache directory (default <root>/.jax_cache; 'off')")
  args = parser.parse_args(argv)

  try:
    seeds = ([int(s) for s in args.seeds.split(",") if s.strip()] if args.seeds
             else list(DEFAULT_SEEDS[args.protocol]))
  except ValueError:
    parser.error(f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. 0,1,2")
  root = args.root or os.path.join("results", f"{args.rows}_{args.protocol}")
  only = [s.strip() for s in args.only.split(",") if s.strip()]
  try:
    rows = make_rows(args.rows, args.protocol, seeds, only)
  except ValueError as e:
    parser.error(str(e))
  # A bad --set key or value fails now, naming it, not when its first row starts.
  for row in {row.config: row for row in reversed(rows)}.values():
    config_checks.check_finite(row_config(row, args.set).to_dict())
  if args.list:
    sets = "".join(f" --config.{s}" for s in args.set)
    for row in rows:
      workdir = os.path.join(root, row.id)
      line = (f"{row.id}: python train.py --config {row.spec} --workdir {workdir}{sets} && "
              f"python evaluate.py --config {row.spec} --workdir {workdir}{sets}")
      if row.figure3:
        line += f" && python evaluate.py --config {row.spec} --workdir {workdir}{sets} --mode sweep"
      print(line)
    return
  if args.collect:
    collect(root, rows)
    print(f"wrote {os.path.join(root, RESULTS_FILE)}")
    return
  missing = sorted({d for d in (row_config(row, args.set).data.dir for row in rows)
                    if d and not os.path.exists(d)})
  if missing:
    # Every row would fail the same way after its workdir was made: stop before any.
    print(f"error: the data folder {', '.join(missing)} does not exist; the {args.protocol} "
          f"protocol reads CIFAR-10 as .npz files from there (see ../shared/data/README.md), or "
          f"point --set data.dir=DIR at a copy", file=sys.stderr)
    sys.exit(2)

  import jsnn  # noqa: F401  (XLA:CPU flags before JAX starts)
  import logging
  from absl import logging as absl_logging
  absl_logging.set_verbosity(absl_logging.WARNING)   # orbax logs every save at INFO
  logging.getLogger("jsnn").setLevel(logging.INFO)
  if args.compilation_cache != "off":
    enable_compilation_cache(args.compilation_cache or os.path.join(root, ".jax_cache"))
  log = lambda line: print(f"{common.now()} {line}", flush=True)
  meta = {"command": common.command_line(), "row_set": args.rows, "protocol": args.protocol,
          "seeds": seeds, "overrides": args.set, "started": common.now(),
          "host": os.uname().nodename, "cpu_count": os.cpu_count()}
  out = run_sweep(rows, root, args.set, log=log, meta=meta)
  print(f"wrote {os.path.join(root, RESULTS_FILE)}"
        + (f"; failed rows: {', '.join(out['failed'])}" if out["failed"] else ""))
  sys.exit(1 if out["failed"] else 0)


if __name__ == "__main__":
  main()
