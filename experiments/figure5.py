r"""Figure 5: the task loss (CE) and MS-MPPD over training, from the runs' ``metrics.jsonl``.

    python -m experiments.figure5 --workdir results/table2_reduced/dlif-rho0-s0 \
        --workdir results/table2_reduced/dlif-rho1-s0 --out results/figure5

``ce`` is the epoch mean of the task loss χ·CE(x) + (1−χ)·CE(x̃) (Eq. 16) and ``ms_mppd`` the epoch
mean of the last spiking layer's MS-MPPD between clean and perturbed training batches (Eq. 14,
logged also when ρ = 0), as the trainer writes them. The paper's Figure 5 is CIFAR-100 WRN16;
CIFAR-100 is not available offline here, so the report draws it for the runs it has. Runs passed
together with the same ``--label`` are averaged (mean ± std band over seeds).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from experiments import common
from jsnn import _io, cli

KEYS = ("ce", "ms_mppd")


def load_curves(workdir: str) -> dict:
  """Per-epoch metrics of a run: ``{"epoch": [...], key: [...]}``, one entry per epoch.

  A resumed run may log an epoch twice (killed after logging, before its checkpoint); the last
  line of each epoch wins, as it belongs to the run that continued.
  """
  by_epoch = {}
  path = os.path.join(workdir, _io.METRICS_FILE)
  with open(path) as f:
    for number, line in enumerate(f, 1):
      line = line.strip()
      if line:
        try:
          entry = json.loads(line)
        except ValueError as e:
          raise ValueError(f"cannot read {path}, line {number}: not valid JSON ({e})") from e
        if "epoch" in entry:
          by_epoch[int(entry["epoch"])] = entry
  epochs = sorted(by_epoch)
  keys = sorted({k for e in by_epoch.values() for k in e} - {"epoch"})
  return {"epoch": epochs, **{k: [by_epoch[e].get(k) for e in epochs] for k in keys}}


def group_stats(curves: list[dict], key: str) -> dict:
  """Mean and std over runs per epoch, over the epochs every run logged ``key`` for."""
  common_epochs = sorted(set.intersection(*[
      {e for e, v in zip(c["epoch"], c.get(key, [])) if v is not None} for c in curves]))
  values = np.asarray([[dict(zip(c["epoch"], c[key]))[e] for e in common_epochs] for c in curves],
                      np.float64)
  if not common_epochs:
    return {"epoch": [], "mean": [], "std": []}
  std = values.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(len(common_epochs))
  return {"epoch": common_epochs, "mean": values.mean(axis=0).tolist(), "std": std.tolist()}


def plot(groups: list[dict], path: str, keys=KEYS) -> None:
  """``groups``: ``[{"label": str, "curves": [load_curves(...), ...]}]``; one panel per key."""
  plt = common.pyplot()
  fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 3.4))
  axes = np.atleast_1d(axes)
  for ax, key in zip(axes, keys):
    for g in groups:
      curves = [c for c in g["curves"] if key in c]
      if not curves:
        continue
      s = group_stats(curves, key)
      if not s["epoch"]:
        continue
      mean, std = np.asarray(s["mean"]), np.asarray(s["std"])
      n = len(curves)
      ax.plot(s["epoch"], mean, marker="o", ms=3, label=f"{g['label']} (n={n})")
      if n > 1:
        ax.fill_between(s["epoch"], mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_title({"ce": "task loss (CE, Eq. 16)", "ms_mppd": "MS-MPPD (Eq. 14)"}.get(key, key))
    if key == "ms_mppd":
      ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  common.save_figure(fig, path)


@cli.main_guard
def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  common.add_workdir_arguments(parser, workdir_help="a training workdir", out="results/figure5")
  args = parser.parse_args(argv)
  groups = [{"label": label, "curves": curves}
            for label, curves in common.group_workdirs(args.workdir, args.label, load_curves)]
  os.makedirs(args.out, exist_ok=True)
  plot(groups, os.path.join(args.out, "figure5.png"))
  _io.write_json(os.path.join(args.out, "figure5.json"),
                    {"groups": [{"label": g["label"],
                                 **{k: group_stats(g["curves"], k) for k in KEYS
                                    if all(k in c for c in g["curves"])}} for g in groups],
                     "workdirs": [os.path.abspath(w) for w in args.workdir],
                     "command": common.command_line(), "generated": common.now()})
  print(f"Figure 5 written to {args.out}")


if __name__ == "__main__":
  main()
