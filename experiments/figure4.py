r"""Figure 4: the trained DLIF factors a^l[t] per layer and time step, and their averages.

    python -m experiments.figure4 --workdir results/table2_reduced/dlif-rho1-s0 \
        --workdir results/table2_reduced/dlif-rho0-s0 --out results/figure4

For each workdir (a DLIF model) it reads the ``dlif_factors`` parameter of every spiking layer
(one value per time step, shared by the layer, initialised to 1; spec §1.3) from the checkpoint,
writes ``dlif_factors.json`` into the workdir (the sweep driver does this after training) and, for
all of them together, ``figure4.json`` and ``figure4.png``: (a, b) a heatmap per run of factor by
layer × time step, (c) the average over time per layer, (d) the average over layers per time step.
The paper shows VGG11 AT ρ = 1 and ρ = 0 on CIFAR-10 (Appendix B). Which placement the factor has
(on the input current, the reference's, or on the leak, the paper's) is recorded with them.
"""

from __future__ import annotations

import argparse
import os
import re

import numpy as np

from experiments import common
from jsnn import _io, cli



def spiking_layer_order(model, variables) -> list[tuple]:
  """Module paths of the model's spiking layers in the order a forward pass calls them.

  Traced with ``jax.eval_shape`` (no compute) and Flax's method interceptor, so the order does not
  rest on module names.
  """
  import flax.linen as nn
  import jax
  import jax.numpy as jnp
  from jsnn import models

  order = []

  def interceptor(next_fun, args, kwargs, context):
    if isinstance(context.module, models.SpikingNeuron) and context.method_name == "__call__":
      order.append(tuple(context.module.path))
    return next_fun(*args, **kwargs)

  params = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
  with nn.intercept_methods(interceptor):
    jax.eval_shape(lambda: model.apply(params, jnp.zeros((1, 32, 32, 3)), train=False))
  return order


def factors_from_params(params, order=None) -> list[list[float]]:
  """``[layer][t]``: every spiking layer's ``dlif_factors``, in forward order.

  Args:
    params: the model's parameters.
    order: module paths in call order (:func:`spiking_layer_order`); without it, modules are
      sorted by path with numeric suffixes compared as numbers (Flax numbers them in call order).
  """
  found = []

  def walk(tree, path):
    for key, value in tree.items():
      if isinstance(value, dict) or hasattr(value, "items"):
        walk(value, path + (key,))
      elif key == "dlif_factors":
        index = re.search(r"(\d+)$", path[-1]) if path else None
        found.append((path, int(index.group(1)) if index else 0, np.asarray(value)))

  walk(params, ())
  if order is not None:
    rank = {tuple(p): i for i, p in enumerate(order)}
    found.sort(key=lambda item: rank.get(item[0], len(rank)))
  else:
    # SpikingNeuron_10 after _9: compare every path element's numeric suffix as a number.
    def natural(path):
      parts = [re.match(r"^(.*?)(\d*)$", name).groups() for name in path]
      return tuple((stem, int(digits) if digits else -1) for stem, digits in parts)
    found.sort(key=lambda item: natural(item[0]))
  return [f.astype(float).tolist() for _, _, f in found]


def summarise(factors: list[list[float]]) -> dict:
  a = np.asarray(factors, np.float64)
  return {"factors": factors, "mean_over_time": a.mean(axis=1).tolist(),
          "mean_over_layers": a.mean(axis=0).tolist(), "mean": float(a.mean()),
          "min": float(a.min()), "max": float(a.max()),
          "layers": a.shape[0], "time_steps": a.shape[1]}


def extract(workdir: str, which: str = "best") -> dict:
  """Reads the DLIF factors of ``workdir``'s checkpoint and writes ``dlif_factors.json`` there."""
  from jsnn import workdir as workdir_lib

  config, model, variables, meta = workdir_lib.restore_model(workdir, which)
  if config.model.neuron != "dlif":
    raise ValueError(f"{workdir} trained {config.model.neuron!r} neurons, which have no factors")
  result = {"workdir": os.path.abspath(workdir), "checkpoint": which,
            "checkpoint_step": meta.get("step"), "model": config.model.name,
            "placement": config.model.dlif_placement, "rho": config.training.rho,
            "mode": config.training.mode, "distance": config.training.distance,
            "seed": config.seed,
            **summarise(factors_from_params(variables["params"],
                                            spiking_layer_order(model, variables)))}
  _io.write_json(os.path.join(workdir, _io.FACTORS_FILE), result)
  return result


def plot(runs: list[dict], labels: list[str], path: str) -> None:
  """Heatmaps (one per run) and the two averages, like the paper's Figure 4."""
  plt = common.pyplot()
  n = len(runs)
  fig, axes = plt.subplots(1, n + 2, figsize=(3.6 * (n + 2), 3.4))
  values = np.concatenate([np.ravel(r["factors"]) for r in runs])
  spread = max(abs(values.max() - 1), abs(values.min() - 1), 1e-3)
  for ax, run, label in zip(axes[:n], runs, labels):
    im = ax.imshow(np.asarray(run["factors"]), cmap="coolwarm", vmin=1 - spread,
                   vmax=1 + spread, aspect="auto")
    ax.set_title(label, fontsize=9)
    ax.set_xlabel("time step t")
    ax.set_ylabel("spiking layer l")
    fig.colorbar(im, ax=ax, fraction=0.046)
  for run, label in zip(runs, labels):
    axes[n].plot(np.arange(run["layers"]), run["mean_over_time"], marker="o", label=label)
    axes[n + 1].plot(np.arange(run["time_steps"]), run["mean_over_layers"], marker="o",
                     label=label)
  axes[n].set_title("average over time steps", fontsize=9)
  axes[n].set_xlabel("spiking layer l")
  axes[n + 1].set_title("average over layers", fontsize=9)
  axes[n + 1].set_xlabel("time step t")
  for ax in axes[n:]:
    ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  common.save_figure(fig, path)


def run_label(run: dict) -> str:
  return (f"{run.get('model', '')} {run.get('mode', '')} ρ={run.get('rho')}"
          f" {run.get('distance', '')} seed {run.get('seed')}").strip()


@cli.main_guard
def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", action="append", required=True,
                      help="a DLIF training workdir (repeatable)")
  parser.add_argument("--label", action="append", default=[], help="legend label per workdir")
  parser.add_argument("--checkpoint", default="best", choices=["best", "latest"])
  parser.add_argument("--out", default="results/figure4", help="output directory")
  args = parser.parse_args(argv)
  import jsnn  # noqa: F401  (XLA:CPU flags before JAX starts)
  runs = [extract(w, args.checkpoint) for w in args.workdir]
  labels = args.label + [run_label(r) for r in runs[len(args.label):]]
  os.makedirs(args.out, exist_ok=True)
  plot(runs, labels, os.path.join(args.out, "figure4.png"))
  _io.write_json(os.path.join(args.out, "figure4.json"),
                    {"runs": runs, "labels": labels, "command": common.command_line(),
                     "generated": common.now()})
  for run, label in zip(runs, labels):
    print(f"{label}: mean factor {run['mean']:.4f} (min {run['min']:.4f}, max {run['max']:.4f})")


if __name__ == "__main__":
  main()
