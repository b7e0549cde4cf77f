"""Certified L2 robustness by randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019).

The smoothed classifier ``g(x) = argmax_c P(f(x + ε) = c)``, ``ε ~ N(0, σ²I)`` in [0, 1] pixel
units (not clipped, as Cohen et al. and jsnn's ``gaussian`` training mode), is robust at x within
the L2 radius ``R = σ·Φ⁻¹(p_A)`` whenever the top class's probability is ``p_A > ½`` (their
Theorem 1). CERTIFY (their Algorithm 1, "certify") picks the class from N0 noisy draws, bounds
``p_A`` from below with a one-sided Clopper–Pearson interval at level 1 − α from N fresh draws, and
abstains when the bound is ≤ ½; PREDICT (their §3.2) returns the top class of the draws unless a
two-sided binomial test of its count against the runner-up's has p-value > α.

The JAX side is one jitted step that counts the base classifier's votes over noisy copies
(:func:`class_counts`, ``eval.certify_draws_per_pass`` copies of each image per forward pass, in a
rolled loop); the statistics run on the host on those counts (:func:`clopper_pearson_lower`,
:func:`certify_from_counts`, :func:`predict_from_counts`). :func:`certify_checkpoint` runs it over
the test set batch by batch and writes ``certification.json`` and ``certification.npz`` after each
batch (a rerun with the same settings resumes at the first batch not done), then
``certification.png``.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from jsnn import data, models
from jsnn._io import atomic_write
from jsnn.evaluation.records import read_flags, read_json, settings_fingerprint, write_flags
from jsnn.evaluation.records import write_json
from jsnn.evaluation.context import prepare
from jsnn.evaluation.plan import common_settings
from jsnn.evaluation.runner import measure
from jsnn.evaluation.steps import attack_key, jit_step

log = logging.getLogger("jsnn")

CERTIFY_FILE = "certification.json"
CERTIFY_ARRAYS = "certification.npz"
CERTIFY_PLOT = "certification.png"
# The radii the certified accuracy is reported at (Cohen et al.'s Table 1 starts the same way).
RADII = (0.0, 0.25, 0.5, 0.75, 1.0)
ABSTAIN = -1


def class_counts(logits_fn: Callable, x: jax.Array, key: jax.Array, *, sigma, num_draws: int,
                 draws_per_pass: int, num_classes: int) -> jax.Array:
  """How often the base classifier ``argmax logits_fn(x + N(0, σ²I))`` picks each class.

  Args:
    logits_fn: images [B', ...] -> logits [B', C] (B' = draws_per_pass·B).
    x: images [B, ...] in [0, 1].
    key: PRNG key; pass i draws its noise from ``fold_in(key, i)``, so no key is used twice.
    sigma: σ (may be traced).
    num_draws: noisy copies of each image, a multiple of ``draws_per_pass`` (static).
    draws_per_pass: copies per forward pass (static).
    num_classes: C.

  Returns:
    [B, C] int32 counts summing to ``num_draws`` per example.
  """
  num_passes = num_draws // draws_per_pass
  sigma = jnp.asarray(sigma, x.dtype)

  def body(i, counts):
    noise = jax.random.normal(jax.random.fold_in(key, i), (draws_per_pass,) + x.shape, x.dtype)
    noisy = (x[None] + sigma * noise).reshape((-1,) + x.shape[1:])
    votes = jnp.argmax(logits_fn(noisy), axis=-1).reshape(draws_per_pass, x.shape[0])
    return counts + jnp.sum(jax.nn.one_hot(votes, num_classes, dtype=jnp.int32), axis=0)

  return jax.lax.fori_loop(0, num_passes, body,
                           jnp.zeros((x.shape[0], num_classes), jnp.int32))


def make_certify_step(model, settings, num_classes: int) -> Callable:
  """``step(variables, images, labels, mask, key, epsilon) -> {"select", "estimate"}``: the
  [B, C] vote counts of N0 selection draws and of N estimation draws, from independent keys
  (``epsilon`` is unused, for :func:`jsnn.evaluation.run_batches`' signature)."""

  def step(variables, images, labels, mask, key, epsilon):
    del labels, epsilon
    x = data.to_float(images)
    select_key, estimate_key, encoding_key = jax.random.split(key, 3)

    def logits_fn(z):
      rng = encoding_key if models.is_stochastic(model) else None
      return models.apply_model(model, variables, z, train=False, rng=rng)[0]

    count = lambda k, n: class_counts(logits_fn, x, k, sigma=settings.sigma, num_draws=n,
                                      draws_per_pass=settings.draws_per_pass,
                                      num_classes=num_classes)
    keep = mask[:, None]
    return {"select": jnp.where(keep, count(select_key, settings.num_select), 0),
            "estimate": jnp.where(keep, count(estimate_key, settings.num_estimate), 0)}

  return step


def clopper_pearson_lower(successes, trials, alpha) -> np.ndarray:
  """The one-sided (1 − α) Clopper–Pearson lower bound on a binomial proportion:
  ``Beta⁻¹(α; k, n − k + 1)``, 0 where k = 0 (Cohen et al.'s ``LowerConfBound``)."""
  successes = np.asarray(successes, np.float64)
  trials = np.asarray(trials, np.float64)
  safe = np.maximum(successes, 1.0)
  bound = stats.beta.ppf(alpha, safe, trials - safe + 1.0)
  return np.where(successes > 0, bound, 0.0)


def certify_from_counts(select_counts, estimate_counts, *, sigma: float,
                        alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """CERTIFY (Cohen et al., Algorithm 1) on vote counts.

  Args:
    select_counts: [N, C] counts of the N0 selection draws.
    estimate_counts: [N, C] counts of the N estimation draws.
    sigma: σ. alpha: α.

  Returns:
    ``(prediction, radius, p_lower)`` [N] each: the class (:data:`ABSTAIN` = −1 when the lower
    bound is ≤ ½), ``σ·Φ⁻¹(p_lower)`` (NaN where it abstains) and the bound itself.
  """
  select_counts = np.asarray(select_counts)
  estimate_counts = np.asarray(estimate_counts)
  top = np.argmax(select_counts, axis=1)
  successes = np.take_along_axis(estimate_counts, top[:, None], axis=1)[:, 0]
  p_lower = clopper_pearson_lower(successes, estimate_counts.sum(axis=1), alpha)
  certified = p_lower > 0.5
  radius = np.where(certified, sigma * stats.norm.ppf(np.where(certified, p_lower, 0.75)),
                    np.nan)
  return np.where(certified, top, ABSTAIN), radius, p_lower


def predict_from_counts(counts, *, alpha: float) -> np.ndarray:
  """PREDICT (Cohen et al., §3.2): the top class, or :data:`ABSTAIN` where the two-sided
  binomial test of its count n_A against the runner-up's n_B (p = ½) has p-value > α."""
  counts = np.asarray(counts)
  order = np.argsort(-counts, axis=1, kind="stable")
  top, runner_up = order[:, 0], order[:, 1]
  n_a = np.take_along_axis(counts, top[:, None], axis=1)[:, 0]
  n_b = np.take_along_axis(counts, runner_up[:, None], axis=1)[:, 0]
  # Two-sided and symmetric: P(X ≤ n_B) + P(X ≥ n_A) = 2·P(X ≤ n_B), X ~ Bin(n_A + n_B, ½).
  p_value = np.minimum(1.0, 2.0 * stats.binom.cdf(n_b, n_a + n_b, 0.5))
  return np.where(p_value <= alpha, top, ABSTAIN)


def certified_accuracy(prediction, radius, labels, radii=RADII) -> dict[str, float]:
  """Fraction of examples certified correct at each radius: prediction = label and R ≥ r."""
  labels = np.asarray(labels)
  correct = (np.asarray(prediction) == labels)
  radius = np.nan_to_num(np.asarray(radius, np.float64), nan=-1.0)
  return {f"{r:g}": float(np.mean(correct & (radius >= r))) for r in radii}


def certify_checkpoint(config, workdir: str) -> dict[str, Any]:
  """CERTIFY and PREDICT on every test image of ``workdir``'s checkpoint (``eval.certify_*``).

  Args:
    config: a config with an ``eval`` section (or the section).
    workdir: a training workdir with a checkpoint.

  Returns:
    ``{"results": the JSON, "computed": batches run, "reused": batches resumed, "paths"}``.
  """
  started = time.time()
  ctx = prepare(config, workdir)
  cs = ctx.settings.certify
  num_classes = int(ctx.meta["num_classes"])
  paths = {k: os.path.join(ctx.workdir, f) for k, f in
           (("json", CERTIFY_FILE), ("arrays", CERTIFY_ARRAYS), ("plot", CERTIFY_PLOT))}
  settings = {"mode": "certify", "sigma": cs.sigma, "n0": cs.num_select, "n": cs.num_estimate,
              "alpha": cs.alpha, "draws_per_pass": cs.draws_per_pass,
              "noise": "N(0, sigma^2 I) on [0, 1] pixels, not clipped", **common_settings(ctx)}
  settings.pop("surrogate", None), settings.pop("surrogate_width", None)
  fingerprint = settings_fingerprint(settings)
  previous = read_json(paths["json"], "certification results") or {}
  stored = read_flags(paths["arrays"])
  total = len(ctx.labels)
  arrays = {"select": np.zeros((total, num_classes), np.int32),
            "estimate": np.zeros((total, num_classes), np.int32),
            "done": np.zeros(total, bool)}
  if previous.get("fingerprint") == fingerprint and all(
      k in stored and stored[k].shape == v.shape for k, v in arrays.items()):
    arrays = {k: np.array(stored[k]) for k in arrays}
  training = ctx.run_config.training
  trained_sigma = float(training.gaussian_std) if training.mode == "gaussian" else None
  notes = list(ctx.notes)
  if trained_sigma is not None and abs(trained_sigma - cs.sigma) > 1e-9:
    notes.append(f"eval.certify_sigma = {cs.sigma} but the model was trained with Gaussian "
                 f"noise of σ = {trained_sigma}: the certificate holds, but is weaker than at "
                 f"the training σ")
  elif trained_sigma is None:
    notes.append(f"the model was trained in the {training.mode!r} mode, not with Gaussian noise: "
                 f"its smoothed classifier may abstain on most images (train with "
                 f"--config.training.mode=gaussian --config.training.gaussian_std={cs.sigma})")
  for note in notes:
    log.warning("WARNING: %s", note)
  step = jit_step(make_certify_step(ctx.model, cs, num_classes), ctx.mesh)
  key = attack_key(ctx.settings.seed, "certify")
  batch_size = ctx.settings.batch_size
  computed, reused, wall = [], [], float(previous.get("compute_time_s", 0.0)
                                          if previous.get("fingerprint") == fingerprint else 0.0)

  def record() -> dict:
    done = arrays["done"]
    prediction, radius, p_lower = certify_from_counts(arrays["select"], arrays["estimate"],
                                                      sigma=cs.sigma, alpha=cs.alpha)
    predicted = predict_from_counts(arrays["estimate"], alpha=cs.alpha)
    labels = ctx.labels[done]
    per_example = [None if np.isnan(r) else round(float(r), 6) for r in radius[done]]
    passes = (cs.num_select + cs.num_estimate) // cs.draws_per_pass
    return {
        **settings, "workdir": ctx.workdir, "data": ctx.data_source,
        "model": ctx.run_config.model.to_dict(), "training_mode": training.mode,
        "training_gaussian_std": trained_sigma, "setup_warnings": notes,
        "certified": int(done.sum()), "total": total, "complete": bool(done.all()),
        "radii": list(RADII),
        "certified_accuracy": certified_accuracy(prediction[done], radius[done], labels),
        "abstention_rate": float(np.mean(prediction[done] == ABSTAIN)) if done.any() else None,
        "predict_accuracy": float(np.mean(predicted[done] == labels)) if done.any() else None,
        "predict_abstention_rate": (float(np.mean(predicted[done] == ABSTAIN)) if done.any()
                                    else None),
        "mean_radius_of_correct": (float(np.mean(np.nan_to_num(radius[done], nan=0.0)
                                                 * (prediction[done] == labels)))
                                   if done.any() else None),
        "draws_per_image": cs.num_select + cs.num_estimate,
        "forward_passes_per_image": passes, "images_per_forward_pass": cs.draws_per_pass,
        "radius": per_example, "prediction": prediction[done].tolist(),
        "p_lower": [round(float(p), 6) for p in p_lower[done]],
        "predict": predicted[done].tolist(), "labels": labels.tolist(),
        "compute_time_s": round(wall, 3), "wall_time_s": round(time.time() - started, 3),
        "fingerprint": fingerprint}

  for start in range(0, total, batch_size):
    index = np.arange(start, min(start + batch_size, total))
    if arrays["done"][index].all():
      reused.append(start // batch_size)
      continue
    out, timing = measure(step, ctx, key=jax.random.fold_in(key, start // batch_size),
                          epsilon=0.0, subset=index,
                          desc=f"certify σ={cs.sigma} [{start}:{index[-1] + 1}]")
    wall += timing["wall_time_s"]
    arrays["select"][index], arrays["estimate"][index] = out["select"], out["estimate"]
    arrays["done"][index] = True
    computed.append(start // batch_size)
    if ctx.is_main:
      # Arrays first: a JSON is only trusted with its arrays stored.
      write_flags(paths["arrays"], arrays)
      write_json(paths["json"], record())
  results = record()
  if ctx.is_main:
    write_flags(paths["arrays"], arrays)
    write_json(paths["json"], results)
    _plot(results, paths["plot"])
    lines = ["| radius | certified accuracy (%) |", "|---:|---:|"]
    lines += [f"| {r} | {100 * a:.2f} |" for r, a in results["certified_accuracy"].items()]
    print("\n".join(lines) + f"\nabstained: {100 * results['abstention_rate']:.2f} %, "
          f"{results['draws_per_image']} draws per image, {results['compute_time_s']:.1f} s",
          flush=True)
  return {"results": results, "computed": computed, "reused": reused, "paths": paths}


def _plot(results: dict, path: str) -> None:
  """Certified accuracy against the L2 radius: the step curve of the per-example radii."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  labels, prediction = np.asarray(results["labels"]), np.asarray(results["prediction"])
  radius = np.array([-1.0 if r is None else r for r in results["radius"]])
  correct_radius = np.sort(radius[(prediction == labels) & (radius >= 0)])
  grid = np.linspace(0.0, max(1.0, float(correct_radius.max(initial=0.0)) * 1.05), 200)
  total = max(len(labels), 1)
  curve = [np.sum(correct_radius >= r) / total for r in grid]
  fig, ax = plt.subplots(figsize=(4.5, 3.2))
  ax.plot(grid, 100 * np.asarray(curve))
  marks = results["certified_accuracy"]
  ax.plot([float(r) for r in marks], [100 * a for a in marks.values()], "o")
  ax.set_xlabel("L2 radius (pixels in [0, 1])")
  ax.set_ylabel("certified accuracy (%)")
  ax.set_title(f"σ = {results['sigma']}, N = {results['n']}, α = {results['alpha']}")
  ax.grid(alpha=0.3)
  fig.tight_layout()
  atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120), mode="wb")
  plt.close(fig)
