r"""Figure 3: PGD-10 accuracy and MS-MPPD against the attack radius ε, ρ = 0 against ρ = 1.

    python evaluate.py --workdir RUN --mode sweep            # per run: RUN/eps_sweep.json
    python -m experiments.figure3 --workdir RUN_RHO0 --label "ρ=0" --workdir RUN_RHO1 \
        --label "ρ=1" --out results/figure3

The ε sweep itself is :func:`jsnn.evaluation.sweep_epsilon` (PGD-10 with α = ε/4 at ε ∈ {10, …,
100}/255, and the MS-MPPD of the last spiking layer between clean and adversarial inputs; the sweep
driver runs it for the rows marked for Figure 3). This script only draws several runs' sweeps
together: (a) accuracy and (b) MS-MPPD against ε, runs with the same label averaged (mean ± std).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from experiments import common
from jsnn import _io, cli



def load_sweep(workdir: str) -> dict:
  """``{"epsilon_255": [...], "accuracy": [...], "ms_mppd": [...]}`` sorted by ε."""
  data = _io.read_json(os.path.join(workdir, _io.SWEEP_FILE))
  if data is None:
    raise FileNotFoundError(f"no {_io.SWEEP_FILE} in {workdir}: run python evaluate.py --workdir "
                            f"{workdir} --mode sweep")
  points = sorted(data["points"], key=lambda p: p["epsilon_255"])
  return {"epsilon_255": [p["epsilon_255"] for p in points],
          "accuracy": [p["accuracy"] for p in points],
          "ms_mppd": [p["ms_mppd"] for p in points],
          "num_examples": points[0]["total"] if points else 0}


def group_stats(sweeps: list[dict], key: str) -> dict:
  """Mean and std over runs at the ε values every run has."""
  eps = sorted(set.intersection(*[{round(e, 6) for e in s["epsilon_255"]} for s in sweeps]))
  values = np.asarray([[dict(zip([round(e, 6) for e in s["epsilon_255"]], s[key]))[e]
                        for e in eps] for s in sweeps], np.float64)
  std = values.std(axis=0, ddof=1) if len(sweeps) > 1 else np.zeros(len(eps))
  return {"epsilon_255": eps, "mean": values.mean(axis=0).tolist() if eps else [],
          "std": std.tolist() if eps else []}


def plot(groups: list[dict], path: str) -> None:
  """``groups``: ``[{"label": str, "sweeps": [load_sweep(...), ...]}]``."""
  plt = common.pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.5))
  for g in groups:
    for ax, key, scale in ((axes[0], "accuracy", 100.0), (axes[1], "ms_mppd", 1.0)):
      s = group_stats(g["sweeps"], key)
      mean, std = scale * np.asarray(s["mean"]), scale * np.asarray(s["std"])
      n = len(g["sweeps"])
      ax.plot(s["epsilon_255"], mean, marker="o", ms=3, label=f"{g['label']} (n={n})")
      if n > 1:
        ax.fill_between(s["epsilon_255"], mean - std, mean + std, alpha=0.2)
  axes[0].set_ylabel("PGD-10 accuracy (%)")
  axes[1].set_ylabel("MS-MPPD (last spiking layer)")
  axes[1].set_yscale("log")
  for ax, title in zip(axes, ("(a) accuracy under PGD-10", "(b) MS-MPPD under PGD-10")):
    ax.set_xlabel("ε (/255)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  common.save_figure(fig, path)


@cli.main_guard
def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  common.add_workdir_arguments(parser, workdir_help="a workdir with eps_sweep.json (repeatable)",
                               out="results/figure3")
  args = parser.parse_args(argv)
  groups = [{"label": label, "sweeps": sweeps}
            for label, sweeps in common.group_workdirs(args.workdir, args.label, load_sweep)]
  os.makedirs(args.out, exist_ok=True)
  plot(groups, os.path.join(args.out, "figure3.png"))
  _io.write_json(os.path.join(args.out, "figure3.json"), {
      "groups": [{"label": g["label"], "accuracy": group_stats(g["sweeps"], "accuracy"),
                  "ms_mppd": group_stats(g["sweeps"], "ms_mppd")} for g in groups],
      "workdirs": [os.path.abspath(w) for w in args.workdir],
      "command": common.command_line(), "generated": common.now()})
  print(f"Figure 3 written to {args.out}")


if __name__ == "__main__":
  main()
