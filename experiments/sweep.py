r"""Trains and evaluates a set of table rows, skipping finished ones, into one results file.

    python -m experiments.sweep --rows table2 --protocol reduced --seeds 0,1,2 \
        --root results/table2_reduced                       # ≈ 2 h on 2 CPU cores
    python -m experiments.sweep --rows table1_vgg11 --protocol full --root results/table1_vgg11
    python -m experiments.sweep --rows table1_cifar100_wrn16 --protocol full   # TFDS CIFAR-100
    python -m experiments.sweep --rows table2 --protocol reduced --list     # rows and commands only

The rows are those of :mod:`experiments.rows`. Each (a config file, its row argument and a seed)
runs in ``<root>/<row-id>/``, a normal training workdir, in up to four phases, each of them the
library's own resumable entry point:

1. training, ``python train.py`` in its own process — a killed row resumes from its latest
   checkpoint and ends where an uninterrupted run would;
2. the robustness suite of the config's ``eval`` section,
   :func:`jsnn.evaluation.evaluate_checkpoint` (``robustness.json``; it reuses every attack
   already run at the same settings);
3. for rows marked for Figure 3, the ε sweep, :func:`jsnn.evaluation.sweep_epsilon`;
4. for DLIF rows, the trained factors for Figure 4 (:func:`experiments.figure4.extract`).

Before starting JAX, a phase is skipped when its output is already there for this config
(``row.json`` says the training finished with it; the robustness file holds every attack at its
settings; the sweep every ε; the factors file exists), so a complete row costs nothing. After every
row, ``<root>/results.json`` is rebuilt (:mod:`experiments.results`);
``python -m experiments.report`` turns it into docs/REPRODUCTION.md.

Protocols: ``full`` runs the paper's configs unchanged (full model, T = 8, 100 epochs, every attack
on the 10,000 test images) and needs a GPU or TPU; ``reduced`` (configs/cifar10_reduced.py) and
``mid`` (configs/cifar10_mid.py) are sized for a 2-core CPU (docs/protocols.md). A failing row
(diverged, bad config) is recorded with its error and the sweep goes on; the exit status is 1 if
any row failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
import traceback
from typing import Optional, Sequence

from experiments import common, results, rows
from jsnn import _io, cli, config_checks


# -------------------------------------------------------------------------------------------------
# Running a row
# -------------------------------------------------------------------------------------------------


def _train(row: rows.Row, config, workdir: str, overrides: Sequence[str]) -> None:
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


def _evaluate(row, config, workdir: str, overrides) -> None:
  from jsnn import evaluation   # pylint: disable=import-outside-toplevel
  evaluation.evaluate_checkpoint(config, workdir)


def _sweep_epsilon(row, config, workdir: str, overrides) -> None:
  from jsnn import evaluation   # pylint: disable=import-outside-toplevel
  evaluation.sweep_epsilon(config, workdir)


def _factors(row, config, workdir: str, overrides) -> None:
  from experiments import figure4   # pylint: disable=import-outside-toplevel
  figure4.extract(workdir, config.eval.checkpoint)


_RUN_PHASE = {"train": _train, "evaluate": _evaluate, "sweep": _sweep_epsilon,
              "factors": _factors}


def _load_state(rowdir: str, row: rows.Row, config) -> dict:
  state = _io.read_json(os.path.join(rowdir, results.ROW_FILE)) or {}
  state["row"] = dataclasses.asdict(row)
  if state.get("config") and results.training_config_differences(state["config"], config.to_dict()):
    # Another config trained here before: its phases say nothing about this one.
    state = {"row": state["row"], "previous_config": state["config"]}
  state["config"] = config.to_dict()
  state.setdefault("phases", {})
  for phase in state["phases"].values():
    for call in phase.get("calls", []):
      if call.get("wall_s") is None:
        # The driver was killed during this call: its wall time ends at the last file the row
        # wrote, so that wall times still count it.
        latest = max((os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(rowdir)
                      for f in fs), default=call["start_time"])
        call.update(wall_s=max(0.0, latest - call["start_time"]), outcome="killed",
                    estimated=True)
  return state


def run_row(row: rows.Row, root: str, overrides: Sequence[str] = (), *, log=print) -> dict:
  """Runs the phases a row still needs; returns its ``row.json`` state."""
  rowdir = os.path.join(root, row.id)
  state_path = os.path.join(rowdir, results.ROW_FILE)
  config = rows.row_config(row, overrides)
  due = results.phases_due(row, rowdir, config)
  if not due:
    log(f"{row.id}: complete, skipped")
    return _io.read_json(state_path)
  os.makedirs(rowdir, exist_ok=True)
  state = _load_state(rowdir, row, config)
  state.pop("error", None)
  state.pop("traceback", None)
  for name in due:
    phase = state["phases"].setdefault(name, {"calls": []})
    call = {"start": common.now(), "start_time": time.time(), "wall_s": None}
    phase["calls"].append(call)
    state["status"] = f"running {name}"
    _io.write_json(state_path, state)
    log(f"{row.id}: {name} …")
    start = time.perf_counter()
    try:
      _RUN_PHASE[name](row, config, rowdir, overrides)
    except Exception as e:  # noqa: BLE001 - one failing row must not stop the sweep
      call.update(wall_s=time.perf_counter() - start, outcome="error")
      state.update(status="failed", error=f"{name}: {type(e).__name__}: {e}",
                   traceback=traceback.format_exc(limit=8))
      _io.write_json(state_path, state)
      log(f"{row.id}: {name} failed: {type(e).__name__}: {e}")
      return state
    call.update(wall_s=time.perf_counter() - start, outcome="done")
    phase["done"] = True
    if name == "train":
      state["training"] = {"done": True}
    log(f"{row.id}: {name} done in {call['wall_s']:.0f} s")
  state["status"] = "complete"
  _io.write_json(state_path, state)
  return state


def run_sweep(planned: Sequence[rows.Row], root: str, overrides: Sequence[str] = (), *,
              log=print, meta: Optional[dict] = None) -> dict:
  """Runs every row (skipping complete ones) and rebuilds results.json after each."""
  os.makedirs(root, exist_ok=True)
  start = time.time()
  failed = []
  for i, row in enumerate(planned):
    log(f"[{i + 1}/{len(planned)}] {row.id}: {row.spec}")
    state = run_row(row, root, overrides, log=log)
    if state and state.get("status") == "failed":
      failed.append(row.id)
    results.collect(root, planned)   # after every row: a report in between sees it
  meta = {**(meta or {}), "wall_s": time.time() - start, "failed": failed}
  return {"results": results.collect(root, planned, meta=meta), "failed": failed}


# -------------------------------------------------------------------------------------------------
# Command line
# -------------------------------------------------------------------------------------------------


def enable_compilation_cache(path: str) -> None:
  """XLA's persistent compilation cache: rows that differ only in the seed reuse the compiled
  training step and attacks (measured 7.3 s → 2.0 s for the reduced training step). Set in the
  environment too, so that the train.py processes share it."""
  import jax   # pylint: disable=import-outside-toplevel
  settings = {"jax_compilation_cache_dir": os.path.abspath(path),
              "jax_persistent_cache_min_compile_time_secs": 0.5,
              "jax_persistent_cache_min_entry_size_bytes": 0}
  for name, value in settings.items():
    jax.config.update(name, value)
    os.environ[name.upper()] = str(value)


def _print_commands(planned: Sequence[rows.Row], root: str, overrides: Sequence[str]) -> None:
  sets = "".join(f" --config.{s}" for s in overrides)
  for row in planned:
    workdir = os.path.join(root, row.id)
    line = (f"{row.id}: python train.py --config {row.spec} --workdir {workdir}{sets} && "
            f"python evaluate.py --config {row.spec} --workdir {workdir}{sets}")
    if row.figure3:
      line += f" && python evaluate.py --config {row.spec} --workdir {workdir}{sets} --mode sweep"
    print(line)


@cli.main_guard
def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--rows", required=True, choices=sorted(rows.ROW_SETS), help="row set")
  parser.add_argument("--protocol", default="reduced", choices=rows.PROTOCOLS)
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
             else list(rows.DEFAULT_SEEDS[args.protocol]))
  except ValueError:
    parser.error(f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. 0,1,2")
  root = args.root or os.path.join("results", f"{args.rows}_{args.protocol}")
  only = [s.strip() for s in args.only.split(",") if s.strip()]
  try:
    planned = rows.make_rows(args.rows, args.protocol, seeds, only)
  except ValueError as e:
    parser.error(str(e))
  # A bad --set key or value fails now, naming it, not when its first row starts.
  for row in {row.config: row for row in reversed(planned)}.values():
    config_checks.check_finite(rows.row_config(row, args.set).to_dict())
  if args.list:
    _print_commands(planned, root, args.set)
    return
  if args.collect:
    results.collect(root, planned)
    print(f"wrote {os.path.join(root, results.RESULTS_FILE)}")
    return
  missing = sorted({d for d in (rows.row_config(row, args.set).data.dir for row in planned)
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
  out = run_sweep(planned, root, args.set, log=log, meta=meta)
  print(f"wrote {os.path.join(root, results.RESULTS_FILE)}"
        + (f"; failed rows: {', '.join(out['failed'])}" if out["failed"] else ""))
  sys.exit(1 if out["failed"] else 0)


if __name__ == "__main__":
  main()
