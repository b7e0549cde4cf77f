r"""How much the paper's attack suite overstates robustness, against ``standard`` and ``full``.

    python -m experiments.suites --config configs/cifar10_reduced.py \
        --model "DLIF AT ρ=0=results/table2_reduced/dlif-rho0-s0" \
        --model "DLIF AT ρ=1=results/table2_reduced/dlif-rho1-s0" \
        --transfer-from runs/reduced_sigmoid_rho1 --root results/suites_reduced

The transfer source above is the same row trained with another surrogate:

    python train.py --config configs/cifar10_reduced.py:at,rho=1,seed=0 \
        --workdir runs/reduced_sigmoid_rho1 --config.model.surrogate=sigmoid \
        --config.model.surrogate_width=4.0

Each ``--model label=workdir`` is copied (its ``config.json`` and checkpoints, not its results)
into ``<root>/<slug>/`` and evaluated there with ``eval.suite=full`` and the ``eval`` section of
``--config`` (``--set eval.key=value`` overrides it): the paper's suite, the AutoAttack-style
cascade APGD-CE → APGD-T → Square, every gradient attack again under each gradient estimator, and,
with ``--transfer-from``, every gradient attack crafted on that run. The evaluation is resumable, so
rerunning after an interruption finishes what is missing.

From each model's per-example flags it then computes the robust accuracy of

* ``paper``: the worst case over the paper's attacks (``eval.attacks``), what the paper reports;
* ``standard``: the cascade alone;
* ``estimators``: the paper's attacks under every gradient estimator, worst case per example;
* ``transfer``: the attacks crafted on the ``--transfer-from`` model;
* ``full``: the worst case over all of them,

and writes ``<root>/suites.json``; ``python -m experiments.report`` renders it. The drop from
``paper`` to ``full`` is how much the paper's protocol overstates the model's robustness.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from typing import Optional, Sequence

from experiments import common
from jsnn import _io, cli

SUITES_FILE = "suites.json"


def _slug(label: str) -> str:
  return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "model"


def copy_run(source: str, dest: str) -> None:
  """Copies a training run's config and checkpoints (not its results) into ``dest``, once."""
  if os.path.isdir(os.path.join(dest, "checkpoints")):
    return
  if not os.path.isdir(os.path.join(source, "checkpoints")):
    raise ValueError(f"{source} holds no checkpoints/ directory: not a training workdir")
  os.makedirs(dest, exist_ok=True)
  for name in ("config.json", "metrics.jsonl"):
    if os.path.exists(os.path.join(source, name)):
      shutil.copy2(os.path.join(source, name), os.path.join(dest, name))
  shutil.copytree(os.path.join(source, "checkpoints"), os.path.join(dest + ".tmp-checkpoints"))
  os.replace(dest + ".tmp-checkpoints", os.path.join(dest, "checkpoints"))


def suite_accuracies(results: dict, flags: dict) -> dict:
  """Robust accuracy per suite from a ``full`` evaluation's JSON and its per-example flags.

  Args:
    results: ``robustness.json``.
    flags: ``robustness_flags.npz`` as a dict of [N] bool arrays.

  Returns:
    ``{"clean", "paper", "standard", "sa_pgd", "estimators", "transfer", "full"}`` accuracies
    (None where the evaluation did not run that part: "paper" is eval.attacks, "sa_pgd" adds the
    full suite's SA-PGD, "estimators" adds the estimator variants) and ``{"total"}``.
  """
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jsnn.evaluation import TaskKey  # pylint: disable=import-outside-toplevel

  attacks = results["attacks"]

  def flag(name):
    fingerprint = attacks[name]["fingerprint"]
    # Schema 1 (results written before jsnn.evaluation.store) keyed them "<name>-<fingerprint>".
    key = fingerprint if results.get("schema", 1) >= 2 else f"{name}-{fingerprint}"
    return np.asarray(flags[key], bool)

  def worst(names):
    if not names:
      return None
    robust = np.logical_and.reduce([flag(n) for n in names])
    return float(robust.mean())

  keys = {n: TaskKey.parse(n) for n in attacks}
  # The full suite adds SA-PGD (sa-pgd<k>) to eval.attacks: it is not the paper's suite.
  own = [n for n, k in keys.items() if not k.variant]
  frontier = [n for n in own if attacks[n].get("kind") == "sa-pgd"]
  paper = [n for n in own if n not in frontier]
  transfer = [n for n, k in keys.items() if k.is_transfer]
  estimators = [n for n, k in keys.items() if k.variant and not k.is_transfer]
  cascade = results.get("cascades", {}).get("standard")
  return {
      "clean": attacks["clean"]["accuracy"] if "clean" in attacks else None,
      "paper": worst(paper),
      "standard": cascade["accuracy"] if cascade else None,
      "sa_pgd": worst(paper + frontier) if frontier else None,
      "estimators": worst(own + estimators) if estimators else None,
      "transfer": worst(transfer),
      "full": results["worst_case"]["accuracy"],
      "total": results["worst_case"]["total"],
  }


def run(models: Sequence[tuple[str, str]], config_spec: str, root: str,
        transfer_from: Optional[str] = None, overrides: Sequence[str] = ()) -> dict:
  """Evaluates every model with the full suite and writes ``<root>/suites.json``."""
  # JAX is imported only here, so that --help and argument errors stay fast.
  import numpy as np  # pylint: disable=import-outside-toplevel
  from jsnn import evaluation  # pylint: disable=import-outside-toplevel

  config = common.load_config(config_spec, overrides)
  config.eval.suite = "full"
  if transfer_from:
    config.eval.transfer_from = os.path.abspath(transfer_from)
  evaluation.settings_from_config(config)     # bad settings fail before anything is copied
  entries = []
  for label, source in models:
    workdir = os.path.join(root, _slug(label))
    copy_run(source, workdir)
    started = time.time()
    summary = evaluation.evaluate_checkpoint(config, workdir)
    results = summary["results"]
    with np.load(os.path.join(workdir, evaluation.FLAGS_FILE)) as f:
      flags = {k: f[k] for k in f.files}
    masking = results.get("masking", {})
    entries.append({
        "label": label, "source": os.path.abspath(source), "workdir": os.path.abspath(workdir),
        "accuracies": suite_accuracies(results, flags),
        "estimators": {k: v["worst_case_accuracy"]
                       for k, v in results["estimators"].get("estimators", {}).items()},
        "cascade": {n: results["cascades"]["standard"]["stages"][n]["accuracy"]
                    for n in results["cascades"]["standard"]["order"]},
        "square_beats_white_box": masking.get("square_vs_white_box", {}).get("count"),
        "transfer_beats_white_box": masking.get("transfer_vs_white_box", {}).get("count"),
        "zero_gradient": masking.get("zero_gradient"),
        "checks": results["checks"],
        # Summed over the runs, which an interrupted evaluation computed in several calls.
        "eval_wall_time_s": round(sum(
            float(r.get("wall_time_s", 0)) for section in ("attacks", "check_runs")
            for r in results[section].values() if isinstance(r, dict))
            + float(results["cascades"]["standard"].get("wall_time_s", 0)), 1),
        "this_call_wall_time_s": round(time.time() - started, 1),
        "model": {k: results["model"].get(k) for k in ("name", "width", "head_width",
                                                       "time_steps", "neuron", "surrogate")},
        "training": {k: results["training"].get(k) for k in ("mode", "rho", "epochs")},
        "eval": {k: config.eval[k] for k in ("attacks", "epsilon", "num_examples", "cascade_steps",
                                              "apgd_targets", "square_queries", "seed")},
        "estimator_names": list(evaluation.FULL_ESTIMATORS) if not config.eval.estimators
                           else config.eval.estimators.split(","),
        "transfer_from": results.get("transfer_from"),
        "data": results["data"],
    })
    out = {"config": config_spec, "overrides": list(overrides), "models": entries,
           "command": common.command_line(), "git": common.git_commit(), "updated": common.now()}
    _io.write_json(os.path.join(root, SUITES_FILE), out)
  return out


def _parse_model(text: str) -> tuple[str, str]:
  label, sep, path = text.rpartition("=")
  if not sep or not label or not path:
    raise argparse.ArgumentTypeError(f"--model takes label=workdir, got {text!r}")
  return label, path


@cli.main_guard
def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", required=True, help="config file[:arg] whose eval section runs")
  parser.add_argument("--model", action="append", type=_parse_model, required=True,
                      help="label=workdir of a trained run (repeatable)")
  parser.add_argument("--transfer-from", default=None,
                      help="workdir of a run to craft transfer attacks on")
  parser.add_argument("--root", required=True, help="where the copies and suites.json go")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="config override, e.g. eval.num_examples=200 (repeatable)")
  args = parser.parse_args(argv)
  out = run(args.model, args.config, args.root, args.transfer_from, args.set)
  for m in out["models"]:
    a = m["accuracies"]
    print(f"{m['label']}: " + ", ".join(f"{k} {100 * v:.2f}" for k, v in a.items()
                                        if k != "total" and v is not None))
  return 0


if __name__ == "__main__":
  sys.exit(main())
