r"""Theorem 3.1 on a trained model: the L2-gain bound γ^l against measured ratios, per layer.

    python -m experiments.theorem31 --workdir results/table2_reduced/dlif-rho1-s0 \
        --out results/theorem31

For each weight layer l of a spiking VGG whose output feeds a spiking neuron (every conv and the two
hidden FC layers; the non-spiking readout has no membrane and is skipped), on ``--num-examples``
test images and their PGD adversarial copies (eval-mode BatchNorm):

* ``Δs^{l−1}[t]`` = clean − adversarial input of the layer: the previous spiking layer's spikes as
  the layer sees them (after the 2×2 average pooling that sits between some layers, flattened for
  the first FC); for the first conv the normalised image difference, the same at every step
  (direct encoding);
* ``ε^l`` = :func:`jsnn.perturbation.membrane_perturbation` of ``W^l·Δs^{l−1}``: the MPPD of the
  difference of the layer's conv/dense outputs **before BatchNorm** (the bias cancels), W being the
  conv/dense weight as in the paper;
* the measured ratio ``‖ε^l‖_L2 / ‖Δs^{l−1}‖_L2`` per example (norms over time and neurons, the
  paper's Eqs. 20–21), examples with ``Δs = 0`` left out;
* the paper's bound ``γ^l = sqrt(1/(1−λ))·‖W^l‖`` (Eq. 15) with ‖W‖ from
  :func:`jsnn.perturbation.spectral_norm_dense` or :func:`jsnn.perturbation.spectral_norm_conv` on
  that layer's input shape (stride 1, padding 1, as the model's convs).

Also reported, because they say how much room the bound leaves: the exact gain of the MPPD map over
T steps, ``‖L_T‖·‖W‖`` (``L_T`` the T×T lower-triangular matrix of ``λ^{t−k}``; the measured
ratio can never exceed it), and the same with BatchNorm's eval-mode scale folded into W
(``diag(γ_bn/sqrt(var+ε))·W``, what the neuron actually receives).

A note the results bear out: the proof's step from Eq. 26 to Eq. 28 drops a factor — by
Cauchy–Schwarz the valid gain for any T is ``‖W‖/(1−λ)``, and ``‖L_T‖`` exceeds ``sqrt(1/(1−λ))``
once T is large enough (``counterexample`` in the JSON gives T and the exact gains). At the paper's
T = 8 and λ = 0.99, ``‖L_8‖ ≈ 5.26 < 10``, so Eq. 15 holds for its models; it is not a bound
for all T.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, NamedTuple, Optional

import numpy as np

from experiments import common
from jsnn import _io, cli


class WeightLayer(NamedTuple):
  """One conv/dense layer that feeds a spiking neuron, and where its input comes from."""
  name: str            # "Conv_0", "Dense_1", ...
  kind: str            # "conv" | "dense"
  kernel: Any          # HWIO conv kernel or [in, out] dense kernel
  bn_scale: Any        # eval-mode BN multiplier per output channel, or None (dense layers)
  source: int          # index of the spiking layer whose spikes are its input; −1: the image
  pool: bool           # a 2×2 average pooling sits between that layer and this one
  flatten: bool        # the input is flattened ([T, B, H, W, C] → [T, B, H·W·C])


def vgg_weight_layers(model, variables) -> list[WeightLayer]:
  """The conv/dense layers of a :class:`jsnn.models.SpikingVGG`, in forward order."""
  from jsnn import models

  if not isinstance(model, models.SpikingVGG):
    raise NotImplementedError(
        f"theorem31 walks sequential VGG models; got {type(model).__name__} (WRN's residual "
        "blocks do not form a chain of W·s layers)")
  params, stats = variables["params"], variables["batch_stats"]
  out, source, pool, conv_i = [], -1, False, 0
  for entry in model.cfg:
    if entry == "A":
      pool = True
      continue
    bn_p = params[f"BatchNorm_{conv_i}"]["BatchNorm_0"]
    bn_s = stats[f"BatchNorm_{conv_i}"]["BatchNorm_0"]
    # Eval-mode BN is y = scale·(x − mean)/sqrt(var + 1e-5) + bias: a per-channel multiplier on
    # differences (layers.BatchNorm uses PyTorch's eps 1e-5).
    bn_scale = np.asarray(bn_p["scale"]) / np.sqrt(np.asarray(bn_s["var"]) + 1e-5)
    out.append(WeightLayer(f"Conv_{conv_i}", "conv", np.asarray(params[f"Conv_{conv_i}"]["Conv_0"]
                                                               ["kernel"]), bn_scale, source,
                           pool, False))
    source, pool, conv_i = source + 1, False, conv_i + 1
  for j in range(2):   # The two hidden FC layers; Dense_2 is the non-spiking readout.
    out.append(WeightLayer(f"Dense_{j}", "dense", np.asarray(params[f"Dense_{j}"]["Dense_0"]
                                                              ["kernel"]), None, source, pool,
                           j == 0))
    source, pool = source + 1, False
  return out


def counterexample(leak: float, horizons=(4, 8, 16, 32, 100, 1000)) -> dict:
  """Where the paper's time factor sqrt(1/(1−λ)) stops bounding the exact gain ‖L_T‖."""
  from jsnn import perturbation   # pylint: disable=import-outside-toplevel

  def time_gain(steps: int) -> float:   # the exact gain ‖L_T‖ per unit ‖W‖
    return float(perturbation.leak_operator_norm(leak, int(steps)))

  paper = float(np.sqrt(1 / (1 - leak)))
  gains = {int(h): time_gain(h) for h in horizons}
  first = next((h for h in range(1, 2001) if time_gain(h) > paper), None)
  return {"leak": leak, "paper_factor": paper, "valid_factor_any_T": 1 / (1 - leak),
          "exact_factor_by_T": gains, "first_T_exceeding_paper_factor": first}


def _layer_input(layer: WeightLayer, image_delta, spike_deltas, time_steps: int):
  import jax.numpy as jnp
  from jsnn.models import layers

  if layer.source < 0:
    x = jnp.broadcast_to(image_delta[None], (time_steps,) + image_delta.shape)
  else:
    x = spike_deltas[layer.source]
  if layer.pool:
    x = layers.avg_pool(x, 2)
  if layer.flatten:
    x = x.reshape(x.shape[0], x.shape[1], -1)
  return x


def _apply_weight(layer: WeightLayer, x, kernel):
  """``W·x`` without bias for a time-major ``x``; conv as the model's (stride 1, padding k//2)."""
  import jax
  import jax.numpy as jnp

  if layer.kind == "dense":
    return jnp.einsum("tbi,io->tbo", x, kernel)
  k = kernel.shape[0]
  folded = x.reshape((-1,) + x.shape[2:])
  y = jax.lax.conv_general_dilated(folded, kernel, (1, 1), [(k // 2, k // 2)] * 2,
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return y.reshape(x.shape[:2] + y.shape[1:])


def analyse(model, variables, images, labels, *, key, attack: str = "pgd10",
            epsilon: float = 8 / 255, leak: Optional[float] = None) -> dict:
  """Bounds and measured ratios per layer for one batch of clean images and their attacks.

  Args:
    model: a spiking VGG from :func:`jsnn.models.create_model`.
    variables: its ``{"params", "batch_stats"}``.
    images: ``[B, 32, 32, 3]`` in [0, 1]. labels: ``[B]`` int.
    key: PRNG key of the attack's random start.
    attack: an attack name of :mod:`jsnn.attacks` (PGD-10 by default) or an AttackSpec.
    epsilon: L∞ radius.
    leak: λ; the model's by default.

  Returns:
    ``{"layers": [...], "all_within_paper_bound": bool, ...}`` (JSON-ready).
  """
  import jax
  import jax.numpy as jnp
  from jsnn import attacks, models, perturbation

  leak = float(model.neuron.leak if leak is None else leak)
  time_steps = model.neuron.time_steps
  images = jnp.asarray(images, jnp.float32)
  labels = jnp.asarray(labels, jnp.int32)
  logits_fn = lambda x: models.apply_model(model, variables, x, train=False)[0]
  attack_fn = attacks.make_attack(attack)
  attack = attack if isinstance(attack, str) else attack.name
  adv = jax.jit(lambda x, y, k: attack_fn(logits_fn, x, y, key=k, epsilon=epsilon))(
      images, labels, key)
  capture = [models.SPIKES]
  clean_logits, _, clean = models.apply_model(model, variables, images, train=False,
                                              capture=capture)
  adv_logits, _, pert = models.apply_model(model, variables, adv, train=False, capture=capture)
  spike_deltas = [a - b for a, b in zip(clean[models.SPIKES], pert[models.SPIKES])]
  # The in-model normalisation (x − mean)/std is affine: differences only see 1/std.
  std = jnp.asarray(model.std if model.std is not None else (1.0,) * 3, jnp.float32)
  image_delta = (images - adv) / std.reshape(1, 1, 1, -1)

  time_factor = float(np.sqrt(1 / (1 - leak)))
  exact_factor = float(perturbation.leak_operator_norm(leak, time_steps))
  rows = []
  for layer in vgg_weight_layers(model, variables):
    x = _layer_input(layer, image_delta, spike_deltas, time_steps)
    kernel = jnp.asarray(layer.kernel, jnp.float32)
    in_norm = jnp.sqrt(jnp.sum(jnp.square(x.reshape(time_steps, x.shape[1], -1)), axis=(0, 2)))
    entry = {"layer": layer.name, "kind": layer.kind, "input_shape": list(x.shape[2:]),
             "input": "normalised image" if layer.source < 0 else
             f"spikes of spiking layer {layer.source}" + (" after 2×2 avg pool" if layer.pool
                                                          else "")}
    variants = {"pre_bn": kernel}
    if layer.bn_scale is not None:
      variants["bn_folded"] = kernel * jnp.asarray(layer.bn_scale, jnp.float32).reshape(
          (1,) * (kernel.ndim - 1) + (-1,))
    for variant, w in variants.items():
      if layer.kind == "dense":
        norm = perturbation.spectral_norm_dense(w)
      else:
        k = w.shape[0]
        norm = perturbation.spectral_norm_conv(w, tuple(x.shape[2:]),
                                               padding=[(k // 2, k // 2)] * 2)
      eps = perturbation.membrane_perturbation(_apply_weight(layer, x, w), leak)
      out_norm = jnp.sqrt(jnp.sum(jnp.square(eps.reshape(time_steps, eps.shape[1], -1)),
                                  axis=(0, 2)))
      valid = np.asarray(in_norm) > 0
      ratios = np.asarray(out_norm)[valid] / np.asarray(in_norm)[valid]
      norm = float(norm)
      bound, exact = time_factor * norm, exact_factor * norm
      # Power iteration converges from below, so ‖W‖ can be a hair low: allow 1e-4 relative.
      max_ratio = float(ratios.max()) if ratios.size else None
      entry[variant] = {
          "spectral_norm": norm, "paper_bound": bound, "exact_gain": exact,
          "valid_bound_any_T": norm / (1 - leak),
          "ratio_max": max_ratio,
          "ratio_mean": float(ratios.mean()) if ratios.size else None,
          "ratio_median": float(np.median(ratios)) if ratios.size else None,
          "ratios": ratios.tolist(),
          "max_ratio_over_paper_bound": None if max_ratio is None else max_ratio / bound,
          "exceeds_paper_bound": bool(max_ratio is not None and max_ratio > bound * (1 + 1e-4)),
          "exceeds_exact_gain": bool(max_ratio is not None and max_ratio > exact * (1 + 1e-4)),
      }
    entry["examples_with_zero_input_difference"] = int((~valid).sum())
    rows.append(entry)

  flagged = [r["layer"] for r in rows
             if any(r[v]["exceeds_paper_bound"] for v in ("pre_bn", "bn_folded") if v in r)]
  return {
      "leak": leak, "time_steps": time_steps, "attack": attack, "epsilon": epsilon,
      "num_examples": int(images.shape[0]),
      "clean_accuracy": float(jnp.mean(jnp.argmax(clean_logits, -1) == labels)),
      "adversarial_accuracy": float(jnp.mean(jnp.argmax(adv_logits, -1) == labels)),
      "time_factor_paper": time_factor, "time_factor_exact": exact_factor,
      "w": "the conv/dense weight (pre_bn, the paper's W); bn_folded multiplies each output "
           "channel by BN's eval-mode scale",
      "note": "ε is the MPPD of W·Δs with the plain λ (Eq. 11); DLIF factors are part of neither "
              "W nor the recurrence, as in the reference's MS-MPPD (spec §3.1)",
      "layers": rows, "all_within_paper_bound": not flagged,
      "layers_exceeding_paper_bound": flagged,
      "counterexample": counterexample(leak),
  }


def plot(result: dict, path: str) -> None:
  """Per layer: the paper's γ, the exact gain and the measured ratios (log scale)."""
  plt = common.pyplot()
  rows = result["layers"]
  fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(rows) + 2), 3.8))
  x = np.arange(len(rows))
  bound = [r["pre_bn"]["paper_bound"] for r in rows]
  exact = [r["pre_bn"]["exact_gain"] for r in rows]
  ax.bar(x, bound, width=0.6, color="0.85", label="γ (paper, Eq. 15)")
  ax.scatter(x, exact, marker="_", s=400, color="k", label="exact gain ‖L_T‖·‖W‖")
  for i, r in enumerate(rows):
    ratios = r["pre_bn"]["ratios"]
    jitter = (np.random.default_rng(i).random(len(ratios)) - 0.5) * 0.3
    ax.scatter(i + jitter, ratios, s=6, color="tab:blue", alpha=0.6,
               label="measured ‖ε‖/‖Δs‖ (per example)" if i == 0 else None)
  ax.set_yscale("log")
  ax.set_xticks(x, [r["layer"] for r in rows], rotation=30)
  ax.set_ylabel("L2 gain")
  ax.set_title(f"Theorem 3.1: λ = {result['leak']}, T = {result['time_steps']}, "
               f"{result['attack']} at ε = {result['epsilon'] * 255:.3g}/255")
  ax.grid(alpha=0.3, axis="y")
  ax.legend(fontsize=7)
  fig.tight_layout()
  common.save_figure(fig, path)


@cli.main_guard
def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="a training workdir (VGG model)")
  parser.add_argument("--out", default="results/theorem31", help="output directory")
  parser.add_argument("--checkpoint", default="best", choices=["best", "latest"])
  parser.add_argument("--num-examples", type=int, default=64, help="first N test images")
  parser.add_argument("--attack", default="pgd10")
  parser.add_argument("--epsilon", type=float, default=8.0, help="L∞ radius in /255")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--name", default="", help="file stem (default: the workdir's name)")
  args = parser.parse_args(argv)

  import jsnn  # noqa: F401  (XLA:CPU flags before JAX starts)
  import jax
  from jsnn import evaluation, workdir

  start = time.time()
  config, model, variables, meta = workdir.restore_model(args.workdir, args.checkpoint)
  images, labels, source = evaluation.load_test_set(config)
  images = np.asarray(images[:args.num_examples], np.float32) / 255.0
  labels = np.asarray(labels[:args.num_examples])
  result = analyse(model, variables, images, labels, key=jax.random.key(args.seed),
                   attack=args.attack, epsilon=args.epsilon / 255)
  name = args.name or os.path.basename(os.path.normpath(args.workdir))
  result.update(workdir=os.path.abspath(args.workdir), checkpoint=args.checkpoint,
                checkpoint_step=meta.get("step"), data=source, model=config.model.to_dict(),
                command=common.command_line(), git=common.git_commit(), generated=common.now(),
                wall_s=time.time() - start)
  os.makedirs(args.out, exist_ok=True)
  result["figure"] = f"theorem31_{name}.png"
  plot(result, os.path.join(args.out, result["figure"]))
  _io.write_json(os.path.join(args.out, f"theorem31_{name}.json"), result)
  for r in result["layers"]:
    p = r["pre_bn"]
    print(f"{r['layer']:>8}: max ratio {p['ratio_max']:.4g} ≤ exact {p['exact_gain']:.4g} "
          f"≤ paper γ {p['paper_bound']:.4g}" if p["ratio_max"] is not None else
          f"{r['layer']:>8}: no input difference")
  if not result["all_within_paper_bound"]:
    print("FLAG: measured ratio above the paper's bound in "
          f"{result['layers_exceeding_paper_bound']}")
    raise SystemExit(1)


if __name__ == "__main__":
  main()
