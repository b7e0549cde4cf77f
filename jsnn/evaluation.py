"""Robustness of a trained checkpoint: the paper's attack table, the ε sweep and sanity checks.

``evaluate_checkpoint(config, workdir)`` restores ``workdir``'s checkpoint, runs an attack suite
(by default Table 1's: clean, FGSM, PGD-7/10/20/40, APGD-CE, APGD-DLR at ε = 8/255, reference
spec §5) over every test image exactly once, and writes

* ``robustness.json``: per attack its settings, accuracy, counts, wall time (compilation
  included) and the forward and backward passes it spends per image; the worst case over all
  attacks per example (AutoAttack's robust accuracy); and the sanity checks;
* ``robustness_flags.npz``: per attack the per-example "still correct" flags the worst case needs;
* ``robustness.csv``: the table as rows.

The JSON and the flags are rewritten (atomically) after each attack, and a rerun reuses every
attack whose settings are unchanged, so an interrupted evaluation resumes where it stopped. Nothing
is written before all inputs are validated, the checkpoint restored and the test set loaded.

``sweep_epsilon(config, workdir)`` is Figure 3: PGD-10 with α = ε/4 at each ε of the sweep, its
accuracy and the MS-MPPD of the last spiking layer between clean and adversarial inputs, written
to ``eps_sweep.json``, ``eps_sweep.png`` and ``eps_sweep_mppd.png``.

Every attack runs as one jitted function ``(variables, images, labels, mask, key, epsilon) ->
per-example flags`` on fixed-size batches sharded over the mesh's data axis; the last batch is
zero-padded and masked (``data.eval_batches``). ε is a traced array, so one compilation per attack
serves every batch and every ε. BatchNorm runs in eval mode throughout (running statistics), so
examples do not interact and padding cannot change a result.

Attack names: those of Table 1 (``clean``, ``fgsm``, ``pgd7``, ``pgd10``, ``pgd20``, ``pgd40``,
``apgd-ce``, ``apgd-dlr``) and, for other step counts, ``pgd<k>``, ``apgd-ce<k>``,
``apgd-dlr<k>``, ``apgd-t<k>`` (APGD-T, targeted DLR over ``eval.apgd_targets`` classes) and
``square<q>`` (Square with q queries), k, q ≥ 1. PGD step sizes are the reference's table at
ε = 8/255 (2.55, 2, 1, 0.5 /255 for 7, 10, 20, 40 steps) scaled by ε/(8/255) at other radii, and
``2.5·ε/k`` for other k.

Suites (``eval.suite``):

* ``paper``: the attacks of ``eval.attacks`` (Table 1's by default), each on every image;
* ``standard``: clean, then the AutoAttack-style cascade APGD-CE → APGD-T → Square
  (``eval.cascade_steps`` iterations, ``eval.apgd_targets`` targets, ``eval.square_queries``
  queries), each stage attacking only the images every stage before it left correctly classified;
  its accuracy after each stage is recorded, the last one being its robust accuracy;
* ``full``: both, plus every gradient attack of ``eval.attacks`` again under each gradient
  estimator of ``eval.estimators`` (all of :data:`FULL_ESTIMATORS` when it is empty).

``eval.estimators`` also adds those variants to the other suites. A variant is named
``<attack>@<estimator>``: estimators are ``bptr``, ``rga``, ``hart`` (the model's
``gradient_estimator``, see :mod:`jsnn.spiking.neurons`) or a surrogate name with an optional width,
e.g. ``sigmoid:4``, ``straight_through``. For each attack the per-example worst case across its
estimators is recorded too. The overall worst case is over every attack, variant and the cascade.

The gradient-masking checks add, when the suite has them: Square fooling an image every white-box
attack left correct, and per estimator the images classified correctly with an input gradient that
is zero or near zero.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import functools
import hashlib
import io
import json
import logging
import os
import re
import sys
import time
import zlib
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jsnn import __version__ as JSNN_VERSION
from jsnn import attacks, data, losses, models, parallel, perturbation, spiking, trainer
from jsnn._io import atomic_write
from jsnn.attacks.registry import (PAPER_EPSILON, STANDARD_QUERIES, STANDARD_STEPS,
                                   STANDARD_TARGETS)

log = logging.getLogger("jsnn")

RESULTS_FILE = "robustness.json"
FLAGS_FILE = "robustness_flags.npz"
CSV_FILE = "robustness.csv"
SWEEP_FILE = "eps_sweep.json"
SWEEP_PLOT = "eps_sweep.png"
SWEEP_MPPD_PLOT = "eps_sweep_mppd.png"

WORST_CASE = "worst-case"
# Variant name of the transfer attacks (eval.transfer_from): "<attack>@transfer".
TRANSFER = "transfer"
STANDARD = "standard"
SUITES = ("paper", "standard", "full")
# Gradient estimators the full suite adds when eval.estimators is empty.
FULL_ESTIMATORS = ("straight_through", "bptr", "rga", "hart")
# An input gradient whose largest entry is below this counts as near zero: the CE gradient has
# underflowed (a saturated softmax, or surrogates whose tails vanish), so any step built on it is
# rounding noise.
NEAR_ZERO_GRADIENT = 1e-10
# Table 1's column headers.
DISPLAY_NAMES = {"clean": "Clean", "fgsm": "FGSM", "apgd-ce": "APGD-CE", "apgd-dlr": "APGD-DLR",
                 "standard": "Standard"}

# Sanity checks (see `sanity_checks`). A stronger attack may beat a weaker one's accuracy by at
# most this much (a fraction, i.e. 0.5 percentage points) or one example, whichever is larger:
# random starts make PGD's accuracy noisy by about that much, gradient masking by far more.
TOLERANCE = 0.005
# PGD-10 (α = ε/4) at this radius should leave (almost) nothing correct: 64/255 is a quarter of
# the pixel range, far beyond any robust CIFAR model; more than this accuracy there means the
# attack does not follow the loss (masked or obfuscated gradients).
LARGE_EPSILON = 64 / 255
LARGE_EPSILON_MAX_ACCURACY = 0.05

# Step counts without leading zeros, so that each attack has one name.
_PGD_RE = re.compile(r"^pgd(0|[1-9]\d*)$")
_APGD_RE = re.compile(r"^apgd-(ce|dlr)(0|[1-9]\d*)$")
_APGD_T_RE = re.compile(r"^apgd-t(0|[1-9]\d*)$")
_SQUARE_RE = re.compile(r"^square(0|[1-9]\d*)$")


class CheckpointMismatch(ValueError):
  """The checkpoint cannot be restored into the model its saved config describes."""


# -------------------------------------------------------------------------------------------------
# Settings: parsed and validated before any work
# -------------------------------------------------------------------------------------------------


def parse_attack(name: str, epsilon: float = PAPER_EPSILON, *,
                 num_targets: int = STANDARD_TARGETS) -> attacks.AttackSpec:
  """The attack called ``name`` at radius ``epsilon`` (see the module docstring for names).

  Args:
    name: a Table 1 name, or ``pgd<k>``, ``apgd-ce<k>``, ``apgd-dlr<k>``, ``apgd-t<k>``,
      ``square<q>``.
    epsilon: L∞ radius in [0, 1].
    num_targets: APGD-T's number of target classes.

  Returns:
    A validated AttackSpec with ``epsilon`` set and PGD's step size resolved.

  Raises:
    ValueError: an unknown name (the message lists the known ones), k < 1, or ε outside [0, 1].
  """
  _check_epsilon(epsilon, "epsilon")
  known = attacks.attack_names()
  if name in known:
    spec = attacks.get_attack_spec(name, epsilon=epsilon)
    if spec.kind == "pgd" and spec.step_size is not None:
      # The reference's step sizes are written for ε = 8/255; keep their ratio to ε elsewhere.
      spec = dataclasses.replace(
          spec, step_size=spec.step_size * (epsilon / PAPER_EPSILON))
    return spec
  targeted_match, square_match = _APGD_T_RE.match(name), _SQUARE_RE.match(name)
  if targeted_match or square_match:
    count = int((targeted_match or square_match).group(1))
    if count < 1:
      what = "steps" if targeted_match else "queries"
      raise ValueError(f"attack {name!r}: the number of {what} must be >= 1, got {count}")
    if targeted_match:
      return attacks.AttackSpec(name=name, kind="apgd-t", epsilon=epsilon, num_steps=count,
                                loss="dlr", random_start=True, num_targets=num_targets)
    return attacks.AttackSpec(name=name, kind="square", epsilon=epsilon, num_queries=count,
                              random_start=True)
  pgd_match, apgd_match = _PGD_RE.match(name), _APGD_RE.match(name)
  if pgd_match or apgd_match:
    steps = int((pgd_match or apgd_match).groups()[-1])
    if steps < 1:
      raise ValueError(f"attack {name!r}: the number of steps must be >= 1, got {steps}")
    if pgd_match:
      # Not in the reference's table (Table 1's PGD names are matched above): α = 2.5·ε/k.
      return attacks.AttackSpec(name=name, kind="pgd", epsilon=epsilon, num_steps=steps,
                                step_size=None, random_start=True)
    return attacks.AttackSpec(name=name, kind="apgd", epsilon=epsilon, num_steps=steps,
                              loss=apgd_match.group(1), random_start=True)
  raise ValueError(f"unknown attack {name!r}; known attacks: {', '.join(known)}, or pgd<k>, "
                   f"apgd-ce<k>, apgd-dlr<k>, apgd-t<k> for k >= 1 steps, square<q> for q >= 1 "
                   f"queries")


def _check_epsilon(value, what: str) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
    raise ValueError(f"{what} must be a number in [0, 1] (images live in [0, 1]), got {value!r}")
  return float(value)


@dataclasses.dataclass(frozen=True)
class EvalSettings:
  """``config.eval``, validated (see configs/default.py for each key)."""
  checkpoint: str
  specs: tuple[attacks.AttackSpec, ...]
  epsilon: float
  batch_size: int
  num_examples: int
  seed: int
  surrogate: str
  surrogate_width: float
  sweep_epsilons: tuple[float, ...]
  sanity_checks: bool
  progress_bar: bool
  data_dir: str
  tfds_data_dir: str
  suite: str = "paper"
  cascade: tuple[attacks.AttackSpec, ...] = ()
  estimators: tuple["Estimator", ...] = ()
  eot_draws: int = 1
  transfer_from: str = ""


@dataclasses.dataclass(frozen=True)
class Estimator:
  """A gradient to attack through, other than the evaluation's own (``eval.estimators`` entry).

  Attributes:
    name: as written in the config: "bptr", "rga", "hart", or a surrogate with an optional width
      ("sigmoid", "sigmoid:4", "straight_through").
    gradient_estimator: the model's ``gradient_estimator`` ("surrogate" for a surrogate entry).
    surrogate: the surrogate's name ("" = the evaluation's own: eval.surrogate or the model's).
    width: its width (0 = the surrogate's default).
  """
  name: str
  gradient_estimator: str
  surrogate: str = ""
  width: float = 0.0


def parse_estimator(text: str) -> Estimator:
  """``"rga"`` -> Estimator("rga", "rga"); ``"sigmoid:4"`` -> a sigmoid surrogate of width 4."""
  name, _, width_text = text.strip().partition(":")
  if name in spiking.GRADIENT_ESTIMATORS and name != "surrogate" and not width_text:
    return Estimator(name=name, gradient_estimator=name)
  if name in spiking.SURROGATES:
    width = 0.0
    if width_text:
      try:
        width = float(width_text)
      except ValueError:
        width = -1.0
      if not width > 0 or name == "straight_through":
        raise ValueError(f"eval.estimators entry {text!r}: the width must be a number > 0 "
                         f"(and straight_through has none)")
    return Estimator(name=text.strip(), gradient_estimator="surrogate", surrogate=name,
                     width=width)
  known = [e for e in spiking.GRADIENT_ESTIMATORS if e != "surrogate"] + sorted(spiking.SURROGATES)
  raise ValueError(f"unknown gradient estimator {text.strip()!r} in eval.estimators; expected one "
                   f"of {', '.join(known)} (a surrogate may carry a width, e.g. 'sigmoid:4')")


def _int_setting(e, key: str, default: int, minimum: int) -> int:
  value = e.get(key, default)
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    raise ValueError(f"eval.{key} must be an integer >= {minimum}, got {value!r}")
  return value


def settings_from_config(config) -> EvalSettings:
  """Validates ``config.eval`` (or an eval section itself); raises ValueError naming a bad value."""
  e = config.eval if "eval" in config else config
  checkpoint = e.checkpoint
  if checkpoint not in ("best", "latest"):
    raise ValueError(f"eval.checkpoint must be 'best' or 'latest', got {checkpoint!r}")
  epsilon = _check_epsilon(e.epsilon, "eval.epsilon")
  names = [n.strip() for n in str(e.attacks).split(",") if n.strip()]
  if not names:
    raise ValueError(f"eval.attacks names no attack: {e.attacks!r}")
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise ValueError(f"eval.attacks lists {duplicates} more than once: {e.attacks!r}")
  suite = e.get("suite", "paper")
  if suite not in SUITES:
    raise ValueError(f"unknown eval.suite {suite!r}; expected one of {', '.join(SUITES)}")
  num_targets = _int_setting(e, "apgd_targets", STANDARD_TARGETS, 1)
  eot_draws = _int_setting(e, "eot_draws", 1, 1)
  transfer_from = e.get("transfer_from", "")
  if not isinstance(transfer_from, str):
    raise ValueError(f"eval.transfer_from must be a workdir path or '', got {transfer_from!r}")
  cascade_steps = _int_setting(e, "cascade_steps", STANDARD_STEPS, 1)
  square_queries = e.get("square_queries", STANDARD_QUERIES)
  if isinstance(square_queries, bool) or not isinstance(square_queries, int) or square_queries < 1:
    raise ValueError(f"eval.square_queries, Square's query budget per image, must be an integer "
                     f">= 1, got {square_queries!r}")
  specs = tuple(parse_attack(n, epsilon, num_targets=num_targets) for n in names)
  if suite == "standard":
    specs = (parse_attack("clean"),)
  elif "clean" not in names and suite == "full":
    specs = (parse_attack("clean"),) + specs
  cascade = () if suite == "paper" else attacks.standard_cascade(
      epsilon, num_steps=cascade_steps, num_targets=num_targets, num_queries=square_queries)
  estimator_names = [n.strip() for n in str(e.get("estimators", "")).split(",") if n.strip()]
  if not estimator_names and suite == "full":
    estimator_names = list(FULL_ESTIMATORS)
  estimators = tuple(parse_estimator(n) for n in estimator_names)
  estimator_names = [x.name for x in estimators]
  duplicates = sorted({n for n in estimator_names if estimator_names.count(n) > 1})
  if duplicates:
    raise ValueError(f"eval.estimators lists {duplicates} more than once: {e.estimators!r}")
  for key in ("batch_size", "num_examples", "seed"):
    value = e[key]
    if isinstance(value, bool) or not isinstance(value, int):
      raise ValueError(f"eval.{key} must be an integer, got {value!r}")
  if e.batch_size < 1:
    raise ValueError(f"eval.batch_size must be >= 1, got {e.batch_size}")
  if e.num_examples < 0:
    raise ValueError(f"eval.num_examples must be >= 0 (0 = the whole test split), got "
                     f"{e.num_examples}")
  if e.surrogate and e.surrogate not in spiking.SURROGATES:
    raise ValueError(f"unknown eval.surrogate {e.surrogate!r}; expected '' (the model's) or one "
                     f"of {sorted(spiking.SURROGATES)}")
  if not e.surrogate_width >= 0:
    raise ValueError(f"eval.surrogate_width must be >= 0 (0 = the surrogate's default), got "
                     f"{e.surrogate_width!r}")
  sweep = []
  for item in str(e.sweep_epsilons).split(","):
    if not item.strip():
      continue
    try:
      value = float(item) / 255
    except ValueError:
      raise ValueError(f"eval.sweep_epsilons must be numbers in /255 units, got {item!r} in "
                       f"{e.sweep_epsilons!r}") from None
    sweep.append(_check_epsilon(value, f"eval.sweep_epsilons entry {item.strip()}/255"))
  return EvalSettings(
      checkpoint=checkpoint, specs=specs, epsilon=epsilon, batch_size=e.batch_size,
      num_examples=e.num_examples, seed=e.seed, surrogate=e.surrogate,
      surrogate_width=float(e.surrogate_width), sweep_epsilons=tuple(sweep),
      sanity_checks=bool(e.get("sanity_checks", True)),
      progress_bar=bool(e.get("progress_bar", True)), data_dir=e.get("data_dir", ""),
      tfds_data_dir=e.get("tfds_data_dir", ""), suite=suite, cascade=cascade,
      estimators=estimators, eot_draws=eot_draws, transfer_from=transfer_from)


def passes_per_image(spec: attacks.AttackSpec, *, attack_draws: int = 1,
                     vote_draws: int = 1) -> tuple[int, int]:
  """``(forward, backward)`` passes an evaluation with ``spec`` spends per image.

  Counted from the attacks' structure (:func:`jsnn.attacks.attack_passes`), plus the final forward
  that scores the adversarial image: clean 1 + 0; FGSM one gradient + 1 forward; PGD-k k
  gradients + 1; APGD-k with R restarts 1 forward (which examples start out correct) + R·(k + 1)
  gradients + 1; APGD-T the same with ``num_targets``·R runs. Every example of a batch runs every
  iteration (no early exit), so these are exact, except for Square, whose loop stops when its
  whole batch is fooled: for it this is the maximum, and the record holds what ran.

  For a stochastic model each EOT draw counts as a pass: the attack's passes ``attack_draws``
  times, the scoring forward ``vote_draws`` times (the majority vote).
  """
  forward, backward = attacks.attack_passes(spec)
  return forward * attack_draws + vote_draws, backward * attack_draws


def _step_size(spec: attacks.AttackSpec, epsilon: float) -> Optional[float]:
  """The step size the attack uses at ``epsilon`` (APGD: its initial 2ε, then adaptive)."""
  if spec.kind == "fgsm":
    return epsilon
  if spec.kind == "pgd":
    return spec.step_size if spec.step_size is not None else 2.5 * epsilon / spec.num_steps
  if spec.kind in ("apgd", "apgd-t"):
    return 2 * epsilon
  return None


# -------------------------------------------------------------------------------------------------
# Pure, jittable steps: (variables, images, labels, mask, key, epsilon) -> per-example outputs
# -------------------------------------------------------------------------------------------------


def _logits(model, variables, x):
  return models.apply_model(model, variables, x, train=False)[0]


def _one_draw(model, variables) -> attacks.StochasticLogitsFn:
  """``(x, key) -> logits`` of one input-encoding draw of a stochastic model."""
  return lambda x, k: models.apply_model(model, variables, x, train=False, rng=k)[0]


class _Draws(NamedTuple):
  """How a step sees the model: through EOT and majority votes when it is stochastic.

  ``attack_key`` is the key the attack's random starts use (unchanged for a deterministic model,
  so adding EOT changed no stored result); ``eot_key`` keys the attack's EOT draws and
  ``vote_key`` the scoring votes, independent of them.
  """
  attack_key: jax.Array
  eot_key: Optional[jax.Array]
  vote_key: Optional[jax.Array]
  num_draws: int

  @classmethod
  def split(cls, model, key, eot_draws: int) -> "_Draws":
    if not models.is_stochastic(model):
      return cls(key, None, None, 1)
    attack_key, eot_key, vote_key = jax.random.split(key, 3)
    return cls(attack_key, eot_key, vote_key, eot_draws)

  def logits_fn(self, model, variables) -> attacks.LogitsFn:
    """What an attack differentiates: the model, or its EOT expectation."""
    if self.eot_key is None:
      return functools.partial(_logits, model, variables)
    return attacks.expected_logits(_one_draw(model, variables), self.eot_key, self.num_draws)

  def passes(self, stats: attacks.AttackStats, mask) -> dict:
    """The attack's per-example passes, each of its EOT draws counted; 0 on padding rows."""
    return {k: jnp.where(mask, v * (1 if k == "queries" else self.num_draws), 0)
            for k, v in stats._asdict().items()}

  def correct(self, model, variables, x, labels):
    """[B] bool: the prediction (a majority vote for a stochastic model) equals the label."""
    if self.vote_key is None:
      return losses.correct(_logits(model, variables, x), labels)
    return attacks.majority_vote(_one_draw(model, variables), self.vote_key, x,
                                 self.num_draws) == labels


def make_attack_step(spec: attacks.AttackSpec, model, attack_model=None, *,
                     with_stats: bool = False, eot_draws: int = 1) -> Callable:
  """``step(variables, images, labels, mask, key, epsilon) -> correct [B] bool`` for one attack.

  Args:
    spec: the attack.
    model: scores the adversarial images (eval-mode BatchNorm).
    attack_model: gives the attack its gradients; the same forward pass as ``model`` with another
      surrogate or gradient estimator. Defaults to ``model``.
    with_stats: return ``{"correct", "forward", "backward", "queries"}`` ([B] each): the flags and
      what the attack ran on each example (:class:`jsnn.attacks.AttackStats`, the scoring forward
      excluded, each EOT draw counted as a pass), 0 on padding rows.
    eot_draws: for a stochastic model (:func:`jsnn.models.is_stochastic`), the attack follows
      the expectation over this many draws (:func:`jsnn.attacks.expected_logits`) and the score is
      a majority vote over as many fresh ones; ignored for a deterministic model.

  Returns:
    A pure function to jit: ``images`` uint8 [B, 32, 32, 3], ``labels`` int32 [B], ``mask`` bool
    [B] (False on padding rows), ``key`` a PRNG key, ``epsilon`` a float32 scalar. The output is
    True where the example is real and still classified correctly after the attack.
  """
  attack = attacks.make_attack(spec, with_stats=True)
  attack_model = model if attack_model is None else attack_model
  attacks.eot.check_num_draws(eot_draws, "eot_draws")

  def step(variables, images, labels, mask, key, epsilon):
    x = data.to_float(images)
    draws = _Draws.split(model, key, eot_draws)
    x_adv, stats = attack(draws.logits_fn(attack_model, variables), x, labels,
                          key=draws.attack_key, epsilon=epsilon, mask=mask)
    correct = draws.correct(model, variables, x_adv, labels) & mask
    if not with_stats:
      return correct
    return {"correct": correct, **draws.passes(stats, mask)}

  return step


def make_zero_gradient_step(model, attack_model=None, *, near_zero: bool = False,
                            eot_draws: int = 1) -> Callable:
  """Same signature; True where a correctly classified clean example has an all-zero gradient.

  The gradient is that of the cross-entropy with respect to the input, through ``attack_model``'s
  surrogate (of the EOT expectation for a stochastic model). An exactly zero gradient gives a
  gradient attack no direction at all (the surrogate's support missed every neuron, or the softmax
  saturated), so such examples look robust for free.

  With ``near_zero`` the step returns ``{"zero", "near_zero", "correct"}`` ([B] bool each): also
  whether the gradient's largest entry is below :data:`NEAR_ZERO_GRADIENT` (on correct examples),
  and which examples are classified correctly.
  """
  attack_model = model if attack_model is None else attack_model
  attacks.eot.check_num_draws(eot_draws, "eot_draws")

  def step(variables, images, labels, mask, key, epsilon):
    del epsilon  # At the clean point.
    draws = _Draws.split(model, key, eot_draws)
    x = data.to_float(images)
    grad, _, logits = attacks.input_gradient(losses.cross_entropy,
                                             draws.logits_fn(attack_model, variables), x, labels)
    axes = tuple(range(1, grad.ndim))
    if draws.vote_key is None and attack_model is model:
      correct = losses.correct(logits, labels) & mask
    else:
      correct = draws.correct(model, variables, x, labels) & mask
    zero = jnp.all(grad == 0, axis=axes) & correct
    if not near_zero:
      return zero
    return {"zero": zero, "near_zero": (jnp.max(jnp.abs(grad), axis=axes) < NEAR_ZERO_GRADIENT)
            & correct, "correct": correct}

  return step


def make_sweep_step(spec: attacks.AttackSpec, model, attack_model=None, *,
                    leak: float = 0.99, eot_draws: int = 1) -> Callable:
  """Same signature; returns ``{"correct": [B] bool, "ms_mppd": [B] float32}`` (Figure 3).

  ``ms_mppd`` is :func:`jsnn.perturbation.ms_mppd` of the clean minus adversarial input currents
  of the last spiking layer, per example (the mean over T and neurons), 0 on padding rows. Both
  forwards run in eval mode. For a stochastic model both use the same encoding draw (common random
  numbers, so the difference is the attack's), the attack uses EOT and the score a majority vote.
  """
  attack = attacks.make_attack(spec)
  attack_model = model if attack_model is None else attack_model
  capture = [models.LAST_SPIKING_LAYER]
  attacks.eot.check_num_draws(eot_draws, "eot_draws")

  def step(variables, images, labels, mask, key, epsilon):
    x = data.to_float(images)
    draws = _Draws.split(model, key, eot_draws)
    x_adv = attack(draws.logits_fn(attack_model, variables), x, labels, key=draws.attack_key,
                   epsilon=epsilon)
    _, _, clean = models.apply_model(model, variables, x, train=False, capture=capture,
                                     rng=draws.vote_key)
    _, _, adv = models.apply_model(model, variables, x_adv, train=False, capture=capture,
                                   rng=draws.vote_key)
    delta = (clean[models.LAST_SPIKING_LAYER]["currents"]
             - adv[models.LAST_SPIKING_LAYER]["currents"])    # [T, B, ...]
    per_example = jax.vmap(lambda d: perturbation.ms_mppd(d[:, None], leak), in_axes=1)(delta)
    return {"correct": draws.correct(model, variables, x_adv, labels) & mask,
            "ms_mppd": jnp.where(mask, per_example, 0.0)}

  return step


def make_transfer_step(spec: attacks.AttackSpec, model, source_model, *,
                       eot_draws: int = 1) -> Callable:
  """Like :func:`make_attack_step` (with stats), the attack crafted on another model.

  ``variables`` is ``{"target": ..., "source": ...}``: the attack follows ``source_model`` with
  the source variables (through EOT if it is stochastic) and the result is scored on ``model``.
  A transfer attack that fools an example every white-box attack left correct means the white-box
  gradients of ``model`` were masked (Athalye et al., 2018). The pass counts are the source's.
  """
  attack = attacks.make_attack(spec, with_stats=True)
  attacks.eot.check_num_draws(eot_draws, "eot_draws")

  def step(variables, images, labels, mask, key, epsilon):
    x = data.to_float(images)
    source = _Draws.split(source_model, key, eot_draws)
    target = _Draws.split(model, jax.random.fold_in(key, 1), eot_draws)
    x_adv, stats = attack(source.logits_fn(source_model, variables["source"]), x, labels,
                          key=source.attack_key, epsilon=epsilon, mask=mask)
    correct = target.correct(model, variables["target"], x_adv, labels) & mask
    return {"correct": correct, **source.passes(stats, mask)}

  return step


def jit_step(step: Callable, mesh) -> Callable:
  """Jits a step for ``mesh``; its outputs are replicated, so that every process can read them.

  The inputs carry their own shardings: batches split over the data axis (``parallel.put_batch``),
  variables replicated (as ``trainer.restore_checkpoint`` returns them).
  """
  return jax.jit(step, out_shardings=parallel.replicated(mesh))


def attack_key(seed: int, name: str) -> jax.Array:
  """The key of one attack: ``fold_in(key(seed), crc32(name))``.

  Folding in the name, not the attack's position in the suite, keeps an attack's random starts
  the same whatever else runs, so resumed and partial runs agree with a full one.
  """
  return jax.random.fold_in(jax.random.key(seed), zlib.crc32(name.encode()) & 0x7FFFFFFF)


def run_batches(step: Callable, variables, images: np.ndarray, labels: np.ndarray, *,
                batch_size: int, mesh, key: jax.Array, epsilon: float, desc: str = "",
                progress: bool = False):
  """Runs a jitted step over a split in padded, masked batches; each example counted once.

  Batch ``i`` gets the key ``fold_in(key, i)``. The host reads a batch's outputs while the next
  batch runs, so the device stays busy and the progress bar counts finished images.

  Args:
    step: a jitted ``(variables, images, labels, mask, key, epsilon) -> pytree of [B] arrays``.
    variables: model variables, replicated over the mesh.
    images: uint8 [N, 32, 32, 3] (host).
    labels: int32 [N] (host).
    batch_size: global batch size, divisible by the number of devices.
    mesh: the device mesh.
    key: PRNG key of this run.
    epsilon: the attack radius.
    desc: progress bar label.
    progress: show a tqdm bar.

  Returns:
    The step's outputs for the N real examples, as NumPy arrays [N] in the step's pytree.
  """
  from tqdm import tqdm

  parallel.check_batch_size(batch_size, mesh)
  epsilon = np.asarray(epsilon, np.float32)   # A strongly typed scalar: no retrace per value.
  outputs = []
  bar = tqdm(total=len(labels), desc=desc, unit="img", disable=not progress, leave=False,
             file=sys.stderr, dynamic_ncols=True, mininterval=1.0)

  def collect(pending):
    out, real = pending
    # Host sync: one batch's flags, while the next batch is already queued.
    outputs.append(jax.tree_util.tree_map(lambda a: np.asarray(a)[:real], jax.device_get(out)))
    bar.update(real)

  pending = None
  try:
    for i, (x, y, mask) in enumerate(data.eval_batches(images, labels, batch_size)):
      out = step(variables, parallel.put_batch(x, mesh), parallel.put_batch(y, mesh),
                 parallel.put_batch(mask, mesh), jax.random.fold_in(key, i), epsilon)
      if pending is not None:
        collect(pending)
      pending = (out, int(mask.sum()))
    if pending is not None:
      collect(pending)
  finally:
    bar.close()
  return jax.tree_util.tree_map(lambda *parts: np.concatenate(parts), *outputs)


# -------------------------------------------------------------------------------------------------
# Worst case and sanity checks (pure functions of the results)
# -------------------------------------------------------------------------------------------------


def worst_case(flags: Mapping[str, np.ndarray]) -> np.ndarray:
  """Per example, correct under every attack (AutoAttack's robust accuracy): the flags' AND."""
  if not flags:
    raise ValueError("the worst case needs at least one attack")
  return np.logical_and.reduce([np.asarray(f, bool) for f in flags.values()])


class Check(NamedTuple):
  """One sanity check: its name, whether it passed, and what it found."""
  name: str
  passed: bool
  message: str


def sanity_checks(results: Mapping[str, Any]) -> list[Check]:
  """Checks for signs of gradient masking in an accuracy table; a failed check is a warning.

  Surrogate gradients can mask gradients, and a masked model looks robust. The checks run where
  the attacks they compare are present (each entry needs ``accuracy`` and ``total``):

  * ``pgd-vs-fgsm``: every PGD-k is at most FGSM's accuracy;
  * ``pgd-steps``: PGD accuracy does not rise as the steps grow (7 → 10 → 20 → 40);
  * ``apgd-vs-pgd``: APGD-CE-k is at most PGD-k's accuracy (the same budget);
  * ``large-epsilon``: PGD-10 at ε = 64/255 (``results["check_runs"]["large_epsilon"]``) leaves at
    most 5 % correct;
  * ``zero-gradient``: no correctly classified clean example has an all-zero (or, where counted,
    near-zero) input gradient (``results["check_runs"]["zero_gradient"]["count"]`` and
    ``["near_zero_count"]``); ``zero-gradient@<estimator>`` the same under each estimator variant;
  * ``square-vs-white-box``: Square fools no image that every white-box attack left correct
    (``results["masking"]["square_vs_white_box"]["count"]``);
  * ``transfer-vs-white-box``: no attack crafted on another model (``eval.transfer_from``) fools
    an image that every white-box attack left correct
    (``results["masking"]["transfer_vs_white_box"]["count"]``).

  The comparisons allow a slack of ``TOLERANCE`` (0.5 percentage points) or one example, whichever
  is larger.

  Args:
    results: ``{"attacks": {name: {"accuracy", "total", ...}}, "check_runs": {...}}``; names as in
      :func:`parse_attack`.

  Returns:
    The checks that could run, passed or not, in the order above.
  """
  entries = results.get("attacks", {})
  runs = results.get("check_runs", {})
  specs = {name: parse_attack(name) for name in entries if name != WORST_CASE and "@" not in name}
  acc = {name: float(entries[name]["accuracy"]) for name in specs}

  def slack(*names):
    total = min(int(entries[n]["total"]) for n in names)
    return max(TOLERANCE, 1 / max(total, 1))

  def pct(x):
    return f"{100 * x:.2f}%"

  checks = []
  pgds = sorted((s.num_steps, n) for n, s in specs.items() if s.kind == "pgd")
  if "fgsm" in acc and pgds:
    bad = [n for _, n in pgds if acc[n] > acc["fgsm"] + slack(n, "fgsm")]
    checks.append(Check(
        "pgd-vs-fgsm", not bad,
        f"{', '.join(f'{n} {pct(acc[n])}' for n in bad)} above FGSM {pct(acc['fgsm'])}: an "
        "iterative attack that does worse than one step suggests masked gradients" if bad else
        f"every PGD ≤ FGSM ({pct(acc['fgsm'])})"))
  if len(pgds) > 1:
    bad = [(a, b) for (_, a), (_, b) in zip(pgds, pgds[1:]) if acc[b] > acc[a] + slack(a, b)]
    checks.append(Check(
        "pgd-steps", not bad,
        "; ".join(f"{b} {pct(acc[b])} above {a} {pct(acc[a])}" for a, b in bad)
        + ": more PGD steps should not help the model" if bad else
        "PGD accuracy does not rise with the steps (" + " → ".join(n for _, n in pgds) + ")"))
  pairs = [(n, f"pgd{s.num_steps}") for n, s in specs.items()
           if s.kind == "apgd" and s.loss == "ce" and f"pgd{s.num_steps}" in acc]
  if pairs:
    bad = [(a, p) for a, p in pairs if acc[a] > acc[p] + slack(a, p)]
    checks.append(Check(
        "apgd-vs-pgd", not bad,
        "; ".join(f"{a} {pct(acc[a])} above {p} {pct(acc[p])}" for a, p in bad)
        + ": APGD-CE should be at least as strong as PGD with the same steps" if bad else
        ", ".join(f"{a} ≤ {p}" for a, p in pairs)))
  if "large_epsilon" in runs:
    r = runs["large_epsilon"]
    ok = r["accuracy"] <= LARGE_EPSILON_MAX_ACCURACY
    checks.append(Check(
        "large-epsilon", ok,
        f"PGD-10 at ε = {_eps255(r['epsilon'])} leaves {pct(r['accuracy'])} correct "
        f"({'≤' if ok else '>'} {pct(LARGE_EPSILON_MAX_ACCURACY)})"
        + ("" if ok else ": the attack does not follow the loss (masked or obfuscated gradients)")))
  for name in ["zero_gradient"] + sorted(n for n in runs if n.startswith("zero_gradient@")):
    if name not in runs:
      continue
    r = runs[name]
    count, near = int(r["count"]), r.get("near_zero_count")
    under = f" under {name.split('@')[1]}" if "@" in name else ""
    bad = count > 0 or bool(near)
    text = f"{count} of {r['total']} test images are classified correctly with an all-zero input "
    text += f"gradient{under}"
    if near is not None:
      correct = max(int(r.get("correct_clean", r["total"])), 1)
      text += (f", {near} with a zero or near-zero one (max |∇| < {NEAR_ZERO_GRADIENT:g}; "
               f"{pct(near / correct)} of the {correct} correct)")
    checks.append(Check(
        name.replace("_", "-"), not bad,
        text + (": gradient attacks cannot move them, so their robustness is overstated"
                if bad else "")))
  masking = results.get("masking", {})

  def beats_white_box(name: str, entry: dict, subject: str, meaning: str) -> None:
    count = int(entry["count"])
    checks.append(Check(
        name, count == 0,
        f"{subject} {count} of {entry['total']} images that every white-box attack "
        f"({len(entry['white_box'])} runs) left correct" + (f": {meaning}" if count else "")))

  if masking.get("square_vs_white_box"):
    square = masking["square_vs_white_box"]
    beats_white_box("square-vs-white-box", square, f"Square ({', '.join(square['square'])}) fools",
                    "a gradient-free attack beating the gradient attacks means masked gradients")
  if masking.get("transfer_vs_white_box"):
    transfer = masking["transfer_vs_white_box"]
    beats_white_box("transfer-vs-white-box", transfer,
                    f"attacks crafted on {transfer['source']} fool",
                    "a black-box transfer beating white-box attacks means the white-box "
                    "gradients are masked")
  return checks


# -------------------------------------------------------------------------------------------------
# Output: table, CSV, atomic files
# -------------------------------------------------------------------------------------------------


def display_name(name: str) -> str:
  return DISPLAY_NAMES.get(name, name if name == WORST_CASE else name.upper())


def table_order(names: Sequence[str]) -> list[str]:
  """Table 1's columns first, in its order; other attacks after, as given."""
  paper = attacks.attack_names()
  return ([n for n in paper if n in names] + [n for n in names if n not in paper])


def format_table(accuracies: Mapping[str, float]) -> str:
  """A Markdown table: one column per attack (in the given order), accuracies in % to 2 decimals."""
  names = list(accuracies)
  cells = [f"{100 * accuracies[n]:.2f}" for n in names]
  widths = [max(len(display_name(n)), len(c)) for n, c in zip(names, cells)]
  header = "| " + " | ".join(display_name(n).rjust(w) for n, w in zip(names, widths)) + " |"
  rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
  row = "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"
  return "\n".join([header, rule, row])


def _eps255(epsilon: float) -> str:
  return f"{epsilon * 255:.4g}/255"


def _write_json(path: str, obj) -> None:
  atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2) + "\n"))


def _read_json(path: str, what: str) -> Optional[dict]:
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      obj = json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f"cannot read the existing {what} {path} ({e}); move it away to start "
                     "afresh (it is left untouched)") from e
  if not isinstance(obj, dict):
    raise ValueError(f"{path} is not a {what} written by jsnn (a JSON object); move it away to "
                     "start afresh (it is left untouched)")
  return obj


def _read_flags(path: str) -> dict[str, np.ndarray]:
  if not os.path.exists(path):
    return {}
  try:
    with np.load(path, allow_pickle=False) as archive:
      return {k: archive[k] for k in archive.files}
  except (OSError, ValueError, zlib.error) as e:
    raise ValueError(f"cannot read the existing per-example flags {path} ({e}); move it away to "
                     "start afresh (it is left untouched)") from e


def _write_flags(path: str, flags: Mapping[str, np.ndarray]) -> None:
  atomic_write(path, lambda f: np.savez_compressed(f, **flags), mode="wb")


def _fingerprint(settings: Mapping[str, Any]) -> str:
  return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


# -------------------------------------------------------------------------------------------------
# Restoring the model and the test set
# -------------------------------------------------------------------------------------------------


class _Variant(NamedTuple):
  """An estimator variant: the model that gives the attacks their gradients, and its record."""
  estimator: Estimator
  attack_model: Any
  surrogate: dict


class _Transfer(NamedTuple):
  """The source of the transfer attacks (eval.transfer_from): its model, variables and record."""
  model: Any
  variables: Any
  record: dict


class _Context(NamedTuple):
  settings: EvalSettings
  workdir: str
  mesh: Any
  run_config: Any
  model: Any
  attack_model: Any
  variables: Any
  meta: dict
  surrogate: dict
  images: np.ndarray
  labels: np.ndarray
  data_source: str
  is_main: bool
  variants: dict = {}
  eot_draws: int = 1                   # what the steps use: eval.eot_draws, or 1 if deterministic
  notes: tuple = ()                    # warnings about the setup, printed and recorded
  transfer: Optional["_Transfer"] = None


def _surrogate_override(name: str, width: Optional[float]) -> dict:
  """``model_from_config`` overrides for surrogate ``name`` (width None/0: its own default)."""
  if width:
    return dict(surrogate=name, surrogate_width=width)
  # Width 0 means the surrogate's own default, which create_model reaches through an object.
  return dict(surrogate=spiking.get_surrogate(name))


def _restore(settings: EvalSettings, workdir: str):
  """``(config, model, attack_model, variables, meta, surrogate, variants)``; explains failures."""
  try:
    run_config, model, variables, meta = trainer.restore_checkpoint(workdir, settings.checkpoint)
  except trainer.CheckpointNotFound:
    raise
  except Exception as e:
    raise CheckpointMismatch(
        f"cannot restore the {settings.checkpoint!r} checkpoint of {workdir}: the model its saved "
        f"config describes does not match the stored arrays (was the checkpoint written by another "
        f"jsnn version, or its meta edited?). {type(e).__name__}: {e}") from e
  # The saved config builds the model; the arrays must have exactly its shapes.
  expected = jax.eval_shape(lambda: models.init_model(model, jax.random.key(0)))
  got = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), variables)
  if (jax.tree_util.tree_structure(expected) != jax.tree_util.tree_structure(got)
      or jax.tree_util.tree_leaves(expected) != jax.tree_util.tree_leaves(got)):
    raise CheckpointMismatch(
        f"the {settings.checkpoint!r} checkpoint of {workdir} holds variables that do not match "
        f"the model {run_config.model.name} of its saved config")
  m = run_config.model
  base_override = {}
  if settings.surrogate:
    width = settings.surrogate_width or None
    base_override = _surrogate_override(settings.surrogate, width)
    attack_model = trainer.model_from_config(run_config, meta["num_classes"], **base_override)
    surrogate = {"name": settings.surrogate, "width": width, "source": "eval.surrogate"}
  else:
    attack_model = model
    surrogate = {"name": m.surrogate, "width": m.surrogate_width, "source": "model"}
  variants = {}
  for estimator in settings.estimators:
    if estimator.surrogate:
      width = estimator.width or None
      override = _surrogate_override(estimator.surrogate, width)
      record = {"name": estimator.surrogate, "width": width, "source": "eval.estimators"}
    else:
      # Rate-based estimators keep the evaluation's surrogate (HART uses it per step).
      override, record = dict(base_override), dict(surrogate)
    record["gradient_estimator"] = estimator.gradient_estimator
    variant_model = trainer.model_from_config(
        run_config, meta["num_classes"], gradient_estimator=estimator.gradient_estimator,
        **override)
    variants[estimator.name] = _Variant(estimator, variant_model, record)
  return run_config, model, attack_model, variables, meta, surrogate, variants


def load_test_set(run_config, *, data_dir: str = "", tfds_data_dir: str = ""):
  """The test split the run was evaluated on during training: ``(images, labels, source)``.

  Synthetic runs regenerate the synthetic test set from the run's seed, exactly as
  ``data.load_dataset`` does; CIFAR runs read the saved ``data.dir`` (or TFDS), unless
  ``data_dir``/``tfds_data_dir`` point elsewhere (the data moved to another machine).
  """
  d = run_config.data
  if d.name == "synthetic":
    images, labels = data.make_synthetic(data.SYNTHETIC_TEST_SIZE, data.NUM_CLASSES["synthetic"],
                                         seed=run_config.seed, split="test")
    return images, labels, f"synthetic(seed={run_config.seed}) test"
  data_dir = data_dir or d.dir or None
  tfds_data_dir = tfds_data_dir or d.tfds_data_dir or None
  images, labels = data.load_split(d.name, "test", data_dir=data_dir, tfds_data_dir=tfds_data_dir,
                                   download=d.download)
  where = f"npz:{os.path.abspath(data_dir)}" if data_dir else f"tfds:{d.name}"
  return images, labels, f"{d.name} test ({where})"


def _prepare(config, workdir: str) -> _Context:
  """Everything that can fail on bad input, before any attack runs or any file is written."""
  settings = settings_from_config(config)
  mesh = parallel.make_mesh()
  if settings.batch_size % mesh.devices.size:
    n = mesh.devices.size
    raise ValueError(f"eval.batch_size {settings.batch_size} is not divisible by the {n} devices; "
                     f"use a multiple of {n} (e.g. --config.eval.batch_size="
                     f"{max(n, settings.batch_size // n * n)})")
  workdir = os.path.abspath(workdir)
  run_config, model, attack_model, variables, meta, surrogate, variants = _restore(
      settings, workdir)
  targeted = [s for s in settings.cascade + settings.specs if s.kind == "apgd-t"]
  if targeted:
    num_classes = int(meta["num_classes"])
    targets = max(s.num_targets for s in targeted)
    if num_classes < 4 or targets > num_classes - 1:
      raise ValueError(f"APGD-T needs at least 4 classes and at most classes − 1 = "
                       f"{num_classes - 1} targets; got {num_classes} classes and "
                       f"eval.apgd_targets = {targets}")
  images, labels, source = load_test_set(run_config, data_dir=settings.data_dir,
                                         tfds_data_dir=settings.tfds_data_dir)
  if settings.num_examples > len(labels):
    raise ValueError(f"eval.num_examples {settings.num_examples} is more than the "
                     f"{len(labels)} test examples of {source}")
  if settings.num_examples:
    images, labels = images[:settings.num_examples], labels[:settings.num_examples]
  eot_draws, notes = settings.eot_draws, []
  if models.is_stochastic(model) and eot_draws == 1:
    notes.append(
        f"the model is stochastic ({run_config.model.encoding} input encoding) but eval.eot_draws "
        f"is 1: every attack follows the gradient of a single random draw and every prediction is "
        f"one draw, which overstates robustness (the randomness masks the gradient). Set "
        f"--config.eval.eot_draws to 10 or more.")
  elif not models.is_stochastic(model) and eot_draws > 1:
    notes.append(f"eval.eot_draws = {eot_draws} ignored: the model is deterministic "
                 f"({run_config.model.get('encoding', 'direct')} encoding), every draw is the same")
    eot_draws = 1
  transfer = _restore_transfer_source(settings, workdir, run_config, meta)
  return _Context(settings, workdir, mesh, run_config, model, attack_model, variables, meta,
                  surrogate, images, labels.astype(np.int32), source, jax.process_index() == 0,
                  variants, eot_draws, tuple(notes), transfer)


def _restore_transfer_source(settings: EvalSettings, workdir: str, run_config,
                             meta) -> Optional[_Transfer]:
  """The model of ``eval.transfer_from``, checked to classify the same data."""
  if not settings.transfer_from:
    return None
  source_dir = os.path.abspath(settings.transfer_from)
  if source_dir == workdir:
    raise ValueError(f"eval.transfer_from is the evaluated workdir itself ({source_dir}); name "
                     f"another run, e.g. the same model trained with another surrogate")
  if not os.path.isdir(source_dir):
    raise ValueError(f"eval.transfer_from {settings.transfer_from!r} is not a directory")
  src_config, src_model, src_variables, src_meta = trainer.restore_checkpoint(
      source_dir, settings.checkpoint)
  if (src_config.data.name != run_config.data.name
      or int(src_meta["num_classes"]) != int(meta["num_classes"])):
    raise ValueError(f"eval.transfer_from {source_dir} was trained on {src_config.data.name} "
                     f"({src_meta['num_classes']} classes), the evaluated model on "
                     f"{run_config.data.name} ({meta['num_classes']} classes)")
  m = src_config.model
  record = {"workdir": source_dir, "checkpoint": settings.checkpoint,
            "checkpoint_step": int(src_meta["step"]), "model": m.name, "neuron": m.neuron,
            "surrogate": m.surrogate, "surrogate_width": m.surrogate_width,
            "encoding": m.get("encoding", "direct"), "seed": src_config.seed}
  return _Transfer(src_model, src_variables, record)


def _common_settings(ctx: _Context, variant: Optional[str] = None) -> dict:
  """What identifies a result besides the attack: the model, the examples, the seed, and the
  gradient the attack follows (an estimator variant adds its estimator)."""
  surrogate = ctx.variants[variant].surrogate if variant in ctx.variants else ctx.surrogate
  common = {"checkpoint": ctx.settings.checkpoint, "checkpoint_step": int(ctx.meta["step"]),
            "dataset": ctx.run_config.data.name, "num_examples": len(ctx.labels),
            "seed": ctx.settings.seed, "surrogate": surrogate["name"],
            "surrogate_width": surrogate["width"]}
  if variant == TRANSFER:
    common.update(surrogate=ctx.transfer.record["surrogate"],
                  surrogate_width=ctx.transfer.record["surrogate_width"],
                  transfer_from=ctx.transfer.record)
  elif variant:
    common["gradient_estimator"] = surrogate["gradient_estimator"]
    common["estimator"] = variant
  if models.is_stochastic(ctx.model):
    # Keys only stochastic models have, so that deterministic results keep their fingerprints.
    common["eot_draws"] = ctx.eot_draws
  return common


def _attack_settings(spec: attacks.AttackSpec, epsilon: float, ctx: _Context,
                     variant: Optional[str] = None) -> dict:
  fwd, bwd = _expected_passes(spec, ctx, variant)
  common = _common_settings(ctx, variant)
  # Settings that cannot change this attack's result are left out, so changing them reuses it.
  if not spec.needs_key:
    common["seed"] = None
  if not spec.uses_gradients:
    common["surrogate"] = common["surrogate_width"] = None
  settings = {"attack": spec.name, "kind": spec.kind,
              "epsilon": 0.0 if spec.kind == "clean" else epsilon,
              "steps": spec.num_steps if spec.kind in ("pgd", "apgd", "apgd-t") else
              (1 if spec.kind == "fgsm" else 0),
              "step_size": _step_size(spec, epsilon),
              "loss": None if spec.kind == "clean" else spec.loss,
              "norm": None if spec.kind == "clean" else spec.norm,
              "random_start": spec.needs_key,
              "restarts": spec.num_restarts if spec.kind in ("apgd", "apgd-t") else None,
              "rho": spec.rho if spec.kind in ("apgd", "apgd-t") else None,
              "forward_passes_per_image": fwd, "backward_passes_per_image": bwd, **common}
  # Keys of the newer attacks only, so that the older attacks' fingerprints stay as they were.
  if spec.kind == "apgd-t":
    settings["targets"] = spec.num_targets
  if spec.kind == "square":
    settings.update(steps=None, loss="margin", queries=spec.num_queries, p_init=spec.p_init)
  return settings


def _expected_passes(spec: attacks.AttackSpec, ctx: _Context,
                     variant: Optional[str] = None) -> tuple[int, int]:
  """:func:`passes_per_image`, each EOT draw counted as a pass (a transfer attack's on its source
  model, the scoring votes on the evaluated one)."""
  source_draws = ctx.eot_draws
  if variant == TRANSFER:
    source_draws = ctx.settings.eot_draws if models.is_stochastic(ctx.transfer.model) else 1
  return passes_per_image(spec, attack_draws=source_draws, vote_draws=ctx.eot_draws)


def _measure(step, ctx: _Context, *, key, epsilon: float, desc: str, subset=None,
             variables=None):
  images, labels = ctx.images, ctx.labels
  batch_size = ctx.settings.batch_size
  if subset is not None:
    images, labels = images[subset], labels[subset]
    # A cascade stage compiles its own step anyway, so a subset smaller than a batch gets a
    # batch of its own size (a multiple of the devices) instead of padding: APGD-T and Square
    # on a few survivors would otherwise spend most of their passes on filler rows.
    devices = ctx.mesh.devices.size
    batch_size = min(batch_size, -(-len(labels) // devices) * devices)
  start = time.time()
  out = run_batches(step, ctx.variables if variables is None else variables, images, labels,
                    batch_size=batch_size, mesh=ctx.mesh, key=key, epsilon=epsilon,
                    desc=desc, progress=ctx.settings.progress_bar and ctx.is_main)
  wall = time.time() - start
  return out, {"wall_time_s": round(wall, 3),
               "images_per_second": round(len(labels) / max(wall, 1e-9), 3),
               "batch_size": batch_size, "num_devices": ctx.mesh.devices.size,
               "device_kind": jax.devices()[0].device_kind,
               "finished": datetime.datetime.now().isoformat(timespec="seconds")}


def _counting_traces(step: Callable) -> Callable:
  """Wraps a step so that ``wrapped.count`` says how often jit traced (compiled) it."""

  @functools.wraps(step)
  def wrapped(*args):
    wrapped.count += 1
    return step(*args)

  wrapped.count = 0
  return wrapped


def _number(value: float):
  """A count per image for the JSON: an int when it is one, else 4 decimals."""
  return int(round(value)) if abs(value - round(value)) < 1e-9 else round(float(value), 4)


def _budget(out: Mapping[str, np.ndarray], total: int, scored: int) -> dict:
  """Passes and queries per image of ``total`` images, from a step's per-example stats.

  ``scored`` images got one more forward (the scoring of the adversarial image).
  """
  forward = int(out["forward"].astype(np.int64).sum()) + scored
  backward = int(out["backward"].astype(np.int64).sum())
  queries = out["queries"].astype(np.int64)
  budget = {"forward_passes_per_image": _number(forward / max(total, 1)),
            "backward_passes_per_image": _number(backward / max(total, 1)),
            "queries_per_image": _number(int(queries.sum()) / max(total, 1))}
  attacked = queries[queries > 0]
  if attacked.size:
    budget.update(queries_mean_attacked=_number(float(attacked.mean())),
                  queries_median_attacked=_number(float(np.median(attacked))),
                  queries_max=int(attacked.max()))
  return budget


# -------------------------------------------------------------------------------------------------
# The attack table
# -------------------------------------------------------------------------------------------------


class _Task(NamedTuple):
  section: str          # "attacks" or "check_runs"
  name: str             # key in the section
  spec: Optional[attacks.AttackSpec]   # None: the zero-gradient count
  epsilon: float
  variant: Optional[str] = None        # estimator variant (eval.estimators entry) or TRANSFER


def _tasks(ctx: _Context) -> tuple[list[_Task], list[str]]:
  """The runs of the suite (table order, then estimator variants) and of the sanity checks."""
  s = ctx.settings
  specs = {spec.name: spec for spec in s.specs}
  order = table_order(list(specs))
  tasks = [_Task("attacks", name, specs[name], s.epsilon) for name in order]
  for name in order:
    if specs[name].uses_gradients:
      tasks += [_Task("attacks", f"{name}@{v}", specs[name], s.epsilon, v) for v in ctx.variants]
  if ctx.transfer is not None:
    tasks += [_Task("attacks", f"{name}@{TRANSFER}", specs[name], s.epsilon, TRANSFER)
              for name in order if specs[name].uses_gradients]
  if s.sanity_checks:
    large = dataclasses.replace(attacks.get_attack_spec("pgd10"), name="pgd10-large-epsilon",
                                step_size=None, epsilon=LARGE_EPSILON)
    tasks += [_Task("check_runs", "large_epsilon", large, LARGE_EPSILON),
              _Task("check_runs", "zero_gradient", None, 0.0)]
    tasks += [_Task("check_runs", f"zero_gradient@{v}", None, 0.0, v) for v in ctx.variants]
  return tasks, [t.name for t in tasks if t.section == "attacks"]


def _task_settings(task: _Task, ctx: _Context) -> dict:
  if task.spec is None:
    return {"attack": "zero-gradient", "loss": "ce", **_common_settings(ctx, task.variant),
            "seed": None, "near_zero_max_abs": NEAR_ZERO_GRADIENT}
  return _attack_settings(task.spec, task.epsilon, ctx, task.variant)


def _run_task(task: _Task, ctx: _Context) -> tuple[np.ndarray, dict, int]:
  """Runs one task over the test set: ``(per-example flags, its JSON entry fields, traces)``."""
  attack_model = (ctx.variants[task.variant].attack_model if task.variant in ctx.variants
                  else ctx.attack_model)
  variables = None
  if task.spec is None:
    step = make_zero_gradient_step(ctx.model, attack_model, near_zero=True,
                                   eot_draws=ctx.eot_draws)
  elif task.variant == TRANSFER:
    step = make_transfer_step(task.spec, ctx.model, ctx.transfer.model,
                              eot_draws=ctx.settings.eot_draws)
    variables = {"target": ctx.variables, "source": ctx.transfer.variables}
  else:
    step = make_attack_step(task.spec, ctx.model, attack_model, with_stats=True,
                            eot_draws=ctx.eot_draws)
  step = _counting_traces(step)
  out, timing = _measure(jit_step(step, ctx.mesh), ctx, key=attack_key(ctx.settings.seed,
                                                                       task.name),
                         epsilon=task.epsilon, desc=f"{task.name} ε={_eps255(task.epsilon)}",
                         variables=variables)
  total = len(ctx.labels)
  if task.spec is None:
    # The zero-gradient run counts examples; the others count correct (robust) examples.
    count, near, correct = (int(out[k].sum()) for k in ("zero", "near_zero", "correct"))
    fields = {"count": count, "fraction": count / total, "near_zero_count": near,
              "correct_clean": correct, "fraction_of_correct": count / max(correct, 1),
              "near_zero_fraction_of_correct": near / max(correct, 1)}
    return out["zero"].astype(bool), {**fields, "total": total, **timing}, step.count
  correct = int(out["correct"].sum())
  budget = _budget(out, total, scored=total * ctx.eot_draws)
  if task.spec.kind != "square":
    # Everything but Square runs a fixed number of passes: the count is known beforehand.
    expected = _expected_passes(task.spec, ctx, task.variant)
    got = (budget["forward_passes_per_image"], budget["backward_passes_per_image"])
    if got != expected:
      raise RuntimeError(f"{task.name} ran {got} (forward, backward) passes per image, not the "
                         f"{expected} its structure implies: a bug in jsnn's pass counting")
  fields = {"accuracy": correct / total, "correct": correct, "total": total, **budget, **timing}
  return out["correct"].astype(bool), fields, step.count


def _run_cascade(ctx: _Context, start: np.ndarray, start_fingerprint: str, previous: dict,
                 stored_flags: Mapping[str, np.ndarray], save: Callable) -> dict:
  """The ``standard`` cascade: each stage attacks only the images still correct before it.

  Args:
    ctx: the evaluation.
    start: [N] bool, the images the first stage attacks (those classified correctly, clean).
    start_fingerprint: what ``start`` was computed with; every stage's fingerprint chains on it.
    previous: the cascade's entry of an earlier run (or {}), to reuse unchanged stages.
    stored_flags: the stored per-example flags.
    save: ``save(entry, new_flags)`` records progress after each computed stage.

  Returns:
    The cascade's entry: ``stages`` ({name: entry}), ``order``, and the final ``accuracy``,
    ``correct``, ``total``, passes and queries per image (its clean forward included), wall time;
    plus ``flags`` ({flag key: [N] bool}) and ``computed``/``reused``/``traces`` for the summary
    (removed before writing).
  """
  s = ctx.settings
  total = len(ctx.labels)
  robust = np.asarray(start, bool).copy()
  fingerprint = start_fingerprint
  old_stages = previous.get("stages", {}) if isinstance(previous, dict) else {}
  entry = {"stages": {}, "order": [spec.name for spec in s.cascade], "start_correct":
           int(robust.sum()), "epsilon": s.epsilon}
  flags, computed, reused, traces = {}, [], [], {}
  for spec in s.cascade:
    stage_settings = {**_attack_settings(spec, s.epsilon, ctx), "cascade": STANDARD,
                      "after": fingerprint}
    fingerprint = _fingerprint(stage_settings)
    flag_key = f"{STANDARD}/{spec.name}-{fingerprint}"
    old = old_stages.get(spec.name)
    if (isinstance(old, dict) and old.get("fingerprint") == fingerprint
        and flag_key in stored_flags and stored_flags[flag_key].shape == robust.shape):
      robust = np.asarray(stored_flags[flag_key], bool)
      flags[flag_key] = robust
      entry["stages"][spec.name] = old
      reused.append(spec.name)
      continue
    subset = np.flatnonzero(robust)
    before = int(robust.sum())
    attack_model = ctx.attack_model if spec.uses_gradients else ctx.model
    step = _counting_traces(make_attack_step(spec, ctx.model, attack_model, with_stats=True,
                                             eot_draws=ctx.eot_draws))
    if subset.size:
      out, timing = _measure(jit_step(step, ctx.mesh), ctx,
                             key=attack_key(s.seed, f"{STANDARD}/{spec.name}"),
                             epsilon=s.epsilon, subset=subset,
                             desc=f"{STANDARD}/{spec.name} ε={_eps255(s.epsilon)}")
      robust = robust.copy()
      robust[subset] = out["correct"].astype(bool)
    else:
      out = {k: np.zeros(0, np.int32) for k in ("forward", "backward", "queries")}
      timing = {"wall_time_s": 0.0}
    traces[spec.name] = step.count
    correct = int(robust.sum())
    attacked = int(subset.size)
    stage = {**stage_settings, "attacked": attacked, "fooled": before - correct,
             "accuracy": correct / total, "correct": correct, "total": total,
             **_budget(out, total, scored=attacked * ctx.eot_draws), **timing,
             "fingerprint": fingerprint}
    if attacked:
      per_attacked = _budget(out, attacked, scored=attacked * ctx.eot_draws)
      stage.update({f"{k}_attacked": v for k, v in per_attacked.items()
                    if k.endswith("_per_image")})
    entry["stages"][spec.name] = stage
    flags[flag_key] = robust
    computed.append(spec.name)
    log.info("%s/%s: attacked %d, %d/%d (%.2f%%) still correct in %.1f s", STANDARD, spec.name,
             attacked, correct, total, 100 * correct / total, timing["wall_time_s"])
    save({**entry, "flags": flags})
  stages = [entry["stages"][n] for n in entry["order"]]
  for key in ("forward_passes_per_image", "backward_passes_per_image", "queries_per_image"):
    # The clean forward (votes) that chose the first stage's images counts once per image.
    entry[key] = _number(sum(float(st[key]) for st in stages)
                         + ctx.eot_draws * key.startswith("forward"))
  entry.update(accuracy=int(robust.sum()) / total, correct=int(robust.sum()), total=total,
               wall_time_s=round(sum(float(st.get("wall_time_s", 0)) for st in stages), 3),
               after=start_fingerprint)
  return {**entry, "flags": flags, "final_flags": robust, "computed": computed,
          "reused": reused, "traces": traces}


def evaluate_checkpoint(config, workdir: str) -> dict[str, Any]:
  """Robust accuracy of ``workdir``'s checkpoint under ``config.eval``'s attack suite.

  Resumable: an attack whose entry in ``robustness.json`` has the same settings (attack, ε, steps,
  step size, seed, number of examples, checkpoint and its step, surrogate and gradient estimator)
  and whose per-example flags are stored is not run again; a cascade stage is reused when it and
  everything before it are unchanged. The batch size is recorded but does not count as a setting.

  Args:
    config: a config with an ``eval`` section like ``configs/default.py``'s (or the section).
    workdir: a training workdir with a checkpoint.

  Returns:
    A summary: ``accuracies`` (table order, estimator variants, the ``standard`` cascade, worst
    case last), ``computed`` and ``reused`` run names (cascade stages as ``standard/<stage>``),
    ``traces`` (compilations per computed run), ``checks``, ``warnings``, ``table``, ``results``
    (the JSON) and ``paths``.

  Raises:
    ValueError: a bad setting, batch size or example count; ``CheckpointMismatch``; or an
      unreadable existing results file. Nothing is written in those cases.
    trainer.CheckpointNotFound: no checkpoint of that kind in ``workdir``.
  """
  started = time.time()
  ctx = _prepare(config, workdir)
  s = ctx.settings
  paths = {k: os.path.join(ctx.workdir, f) for k, f in
           (("json", RESULTS_FILE), ("flags", FLAGS_FILE), ("csv", CSV_FILE))}
  results = _read_json(paths["json"], "robustness results") or {}
  stored_flags = _read_flags(paths["flags"])
  for section in ("attacks", "check_runs", "cascades"):
    results.setdefault(section, {})
    if not isinstance(results[section], dict):
      raise ValueError(f"{paths['json']} has a malformed {section!r} section; move it away to "
                       "start afresh (it is left untouched)")
  results.update(workdir=ctx.workdir, data=ctx.data_source,
                 model=ctx.run_config.model.to_dict(),
                 training=ctx.run_config.training.to_dict(), jsnn_version=JSNN_VERSION,
                 suite=s.suite, norm="linf", epsilon=s.epsilon,
                 # Direct encoding: the same input gives the same spikes, so no EOT is needed.
                 stochastic=models.is_stochastic(ctx.model),
                 encoding=ctx.run_config.model.get("encoding", "direct"),
                 setup_warnings=list(ctx.notes),
                 transfer_from=ctx.transfer.record if ctx.transfer else None)
  results.update(_common_settings(ctx))
  results["eot_draws"] = ctx.eot_draws if models.is_stochastic(ctx.model) else None
  for note in ctx.notes:
    log.warning("WARNING: %s", note)

  def save_progress(new_flags):
    nonlocal stored_flags
    if ctx.is_main:
      # Flags first: a JSON entry is only trusted when its flags are stored too.
      stored_flags = _live_flags(results, {**stored_flags, **new_flags})
      _write_flags(paths["flags"], stored_flags)
      _write_json(paths["json"], results)

  tasks, order = _tasks(ctx)
  computed, reused, traces = [], [], {}
  flags = {}   # This run's per-example flags, keyed like the .npz: "<name>-<fingerprint>".
  fingerprints = {}
  for task in tasks:
    task_settings = _task_settings(task, ctx)
    fingerprint = _fingerprint(task_settings)
    fingerprints[task.name] = fingerprint
    flag_key = f"{task.name}-{fingerprint}"
    entry = results[task.section].get(task.name)
    if (isinstance(entry, dict) and entry.get("fingerprint") == fingerprint
        and flag_key in stored_flags and stored_flags[flag_key].shape == ctx.labels.shape):
      flags[flag_key] = stored_flags[flag_key]
      reused.append(task.name)
      continue
    task_flags, fields, traces[task.name] = _run_task(task, ctx)
    flags[flag_key] = task_flags
    results[task.section][task.name] = {**task_settings, **fields, "fingerprint": fingerprint}
    computed.append(task.name)
    count = fields.get("correct", fields.get("count"))
    log.info("%s: %d/%d (%.2f%%) in %.1f s", task.name, count, fields["total"],
             100 * count / fields["total"], fields["wall_time_s"])
    save_progress({flag_key: task_flags})

  suite_flags = {n: flags[f"{n}-{fingerprints[n]}"] for n in order}
  cascade = None
  if s.cascade:
    clean_key = f"clean-{fingerprints['clean']}"

    def save_cascade(partial):
      results["cascades"][STANDARD] = {k: v for k, v in partial.items() if k != "flags"}
      save_progress(partial["flags"])

    cascade = _run_cascade(ctx, flags[clean_key], fingerprints["clean"],
                           results["cascades"].get(STANDARD, {}), stored_flags, save_cascade)
    flags.update(cascade.pop("flags"))
    suite_flags[STANDARD] = cascade.pop("final_flags")
    computed += [f"{STANDARD}/{n}" for n in cascade.pop("computed")]
    reused += [f"{STANDARD}/{n}" for n in cascade.pop("reused")]
    traces.update({f"{STANDARD}/{n}": c for n, c in cascade.pop("traces").items()})
    results["cascades"][STANDARD] = cascade
  else:
    results["cascades"].pop(STANDARD, None)

  # Worst case over the suite, per example: every attack, variant and the cascade.
  robust = worst_case(suite_flags)
  results["worst_case"] = {
      "attacks": list(suite_flags), "epsilon": s.epsilon,
      "accuracy": int(robust.sum()) / len(robust), "correct": int(robust.sum()),
      "total": len(robust), **_common_settings(ctx)}
  results["estimators"] = _estimator_summary(ctx, order, suite_flags, results)
  results["masking"] = _masking_diagnostics(ctx, order, suite_flags, results, flags)
  accuracies = {n: results["attacks"][n]["accuracy"] for n in order}
  if cascade is not None:
    accuracies[STANDARD] = cascade["accuracy"]
  accuracies[WORST_CASE] = results["worst_case"]["accuracy"]

  base_names = [n for n in order if "@" not in n]
  suite_results = {"attacks": {n: results["attacks"][n] for n in base_names},
                   "check_runs": ({n: v for n, v in results["check_runs"].items()
                                   if n in {t.name for t in tasks}} if s.sanity_checks else {}),
                   "masking": results["masking"]}
  checks = sanity_checks(suite_results)
  results["checks"] = [c._asdict() for c in checks]
  warnings = [c for c in checks if not c.passed]
  results["wall_time_s"] = round(time.time() - started, 3)

  table = _format_report(ctx, results, accuracies, base_names, checks, warnings)
  if ctx.is_main:
    _write_json(paths["json"], results)
    atomic_write(paths["csv"], lambda f: f.write(_csv(results, order)))
    print(table, flush=True)
  return {"accuracies": accuracies, "computed": computed, "reused": reused, "traces": traces,
          "checks": checks, "warnings": warnings, "table": table, "results": results,
          "paths": paths}


def _own_label(ctx: _Context) -> str:
  """The evaluation's own gradient, by its surrogate's name (marked if a variant has that name)."""
  own = ctx.surrogate["name"]
  return f"{own} (default)" if own in ctx.variants else own


def _estimator_summary(ctx: _Context, order, suite_flags, results) -> dict:
  """Per estimator, its attacks' accuracies and worst case; per attack, the worst case across
  its estimators (the evaluation's own gradient is named after its surrogate)."""
  own = _own_label(ctx)
  by_estimator = {own: [n for n in order if "@" not in n and
                        results["attacks"][n]["kind"] in attacks.GRADIENT_KINDS]}
  for variant in ctx.variants:
    by_estimator[variant] = [n for n in order if n.endswith(f"@{variant}")]
  summary = {"estimators": {}, "per_attack": {}}
  for est, names in by_estimator.items():
    if not names:
      continue
    robust = worst_case({n: suite_flags[n] for n in names})
    summary["estimators"][est] = {
        "attacks": {n.split("@")[0]: results["attacks"][n]["accuracy"] for n in names},
        "worst_case_accuracy": int(robust.sum()) / len(robust),
        **({"gradient_estimator": ctx.variants[est].surrogate["gradient_estimator"],
            "surrogate": ctx.variants[est].surrogate["name"]} if est in ctx.variants else
           {"gradient_estimator": "surrogate", "surrogate": own})}
  if ctx.variants:
    for name in by_estimator[own]:
      names = [name] + [f"{name}@{v}" for v in ctx.variants]
      robust = worst_case({n: suite_flags[n] for n in names})
      summary["per_attack"][name] = {
          "estimators": [own] + list(ctx.variants),
          "accuracies": [results["attacks"][n]["accuracy"] for n in names],
          "worst_case_accuracy": int(robust.sum()) / len(robust), "correct": int(robust.sum()),
          "total": len(robust)}
  return summary


def _masking_diagnostics(ctx: _Context, order, suite_flags, results, flags) -> dict:
  """Square against the white-box attacks, and per estimator the (near-)zero gradients."""
  out = {}
  white_box = {n: f for n, f in suite_flags.items() if n != STANDARD and
               not n.endswith(f"@{TRANSFER}") and
               results["attacks"][n]["kind"] in attacks.GRADIENT_KINDS}
  transfers = {n: ~np.asarray(f, bool) for n, f in suite_flags.items()
               if n.endswith(f"@{TRANSFER}")}
  squares = {n: ~np.asarray(f, bool) for n, f in suite_flags.items() if n != STANDARD and
             results["attacks"][n]["kind"] == "square"}
  cascade = results["cascades"].get(STANDARD)
  if cascade:
    order_ = cascade["order"]
    stage_flags = {}
    for name in order_:
      st = cascade["stages"][name]
      stage_flags[name] = flags[f"{STANDARD}/{name}-{st['fingerprint']}"]
    for i, name in enumerate(order_):
      if cascade["stages"][name]["kind"] == "square":
        before = stage_flags[order_[i - 1]] if i else None
        if before is not None:
          squares[f"{STANDARD}/{name}"] = np.asarray(before, bool) & ~stage_flags[name]
      elif cascade["stages"][name]["kind"] in attacks.GRADIENT_KINDS:
        white_box[f"{STANDARD}/{name}"] = stage_flags[name]

  def beaten_by(fooled: Mapping[str, np.ndarray]) -> dict:
    """Images some run of ``fooled`` fooled while every white-box attack left them correct."""
    beaten = np.logical_or.reduce(list(fooled.values())) & worst_case(white_box)
    return {"count": int(beaten.sum()), "total": len(beaten), "white_box": sorted(white_box),
            "examples": np.flatnonzero(beaten)[:20].tolist()}

  if squares and white_box:
    out["square_vs_white_box"] = {**beaten_by(squares), "square": sorted(squares)}
  if transfers and white_box:
    out["transfer_vs_white_box"] = {**beaten_by(transfers), "transfer": sorted(transfers),
                                    "source": ctx.transfer.record["workdir"]}
  zero = {n: r for n, r in results["check_runs"].items()
          if n.startswith("zero_gradient") and isinstance(r, dict)}
  if zero:
    out["zero_gradient"] = {
        (n.split("@")[1] if "@" in n else _own_label(ctx)):
        {k: r.get(k) for k in ("count", "near_zero_count", "correct_clean", "fraction_of_correct",
                               "near_zero_fraction_of_correct", "total")}
        for n, r in zero.items()}
  return out


def _format_report(ctx, results, accuracies, base_names, checks, warnings) -> str:
  s = ctx.settings
  step_text = f"step {results['checkpoint_step']}"
  main = {n: a for n, a in accuracies.items() if "@" not in n}
  lines = [f"Robust accuracy (%) of {ctx.workdir} ({s.checkpoint} checkpoint, {step_text}) on "
           f"{len(ctx.labels)} images of {ctx.data_source}, L∞ ε = {_eps255(s.epsilon)}, "
           f"suite {s.suite}", "", format_table(main), ""]
  if models.is_stochastic(ctx.model):
    lines += [f"stochastic model ({results['encoding']} encoding): attacks follow the expectation "
              f"over {ctx.eot_draws} draws (EOT), predictions are a majority over "
              f"{ctx.eot_draws} draws", ""]
  transferred = [n for n in accuracies if n.endswith(f"@{TRANSFER}")]
  if transferred:
    source = ctx.transfer.record
    lines += [f"transfer from {source['workdir']} (surrogate {source['surrogate']}): "
              + ", ".join(f"{display_name(n.split('@')[0])} {100 * accuracies[n]:.2f}"
                          for n in transferred), ""]
  lines += [f"WARNING: {note}" for note in ctx.notes]
  cascade = results["cascades"].get(STANDARD)
  if cascade:
    stages = " → ".join(f"{n} {100 * cascade['stages'][n]['accuracy']:.2f} "
                        f"({cascade['stages'][n]['attacked']} attacked)" for n in cascade["order"])
    lines += [f"standard cascade: clean {100 * cascade['start_correct'] / cascade['total']:.2f} → "
              f"{stages}; {cascade['forward_passes_per_image']} forward + "
              f"{cascade['backward_passes_per_image']} backward passes and "
              f"{cascade['queries_per_image']} queries per image", ""]
  per_attack = results["estimators"].get("per_attack", {})
  if per_attack:
    estimators = next(iter(per_attack.values()))["estimators"]
    header = "| attack | " + " | ".join(estimators) + " | worst |"
    rows = [header, "|---|" + "---:|" * (len(estimators) + 1)]
    for name, r in per_attack.items():
      cells = [f"{100 * a:.2f}" for a in r["accuracies"] + [r["worst_case_accuracy"]]]
      rows.append(f"| {display_name(name)} | " + " | ".join(cells) + " |")
    lines += ["Accuracy (%) per gradient estimator:", *rows, ""]
  if checks:
    lines.append(f"sanity checks: {len(checks) - len(warnings)}/{len(checks)} passed")
    lines += [f"WARNING [{c.name}]: {c.message}" for c in warnings]
  return "\n".join(lines)


def _live_flags(results, stored_flags):
  """The stored flags some JSON entry still refers to (older settings' flags are dropped)."""
  live = {f"{name}-{entry.get('fingerprint')}" for section in ("attacks", "check_runs")
          for name, entry in results.get(section, {}).items() if isinstance(entry, dict)}
  for cascade_name, cascade in results.get("cascades", {}).items():
    if isinstance(cascade, dict):
      live |= {f"{cascade_name}/{name}-{entry.get('fingerprint')}"
               for name, entry in cascade.get("stages", {}).items() if isinstance(entry, dict)}
  return {k: v for k, v in stored_flags.items() if k in live}


CSV_COLUMNS = ("attack", "accuracy", "correct", "total", "epsilon", "steps", "step_size", "loss",
               "norm", "seed", "wall_time_s", "forward_passes_per_image",
               "backward_passes_per_image", "checkpoint", "checkpoint_step", "surrogate",
               "queries_per_image", "gradient_estimator", "attacked")


def _csv(results, order) -> str:
  buf = io.StringIO()
  writer = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
  writer.writeheader()
  for name in order:
    writer.writerow({**results["attacks"][name], "attack": name})
  cascade = results.get("cascades", {}).get(STANDARD)
  if cascade:
    for name in cascade["order"]:
      writer.writerow({**cascade["stages"][name], "attack": f"{STANDARD}/{name}"})
    writer.writerow({**{k: v for k, v in cascade.items() if k not in ("stages", "order")},
                     "attack": STANDARD})
  writer.writerow({"attack": WORST_CASE, **{k: v for k, v in results["worst_case"].items()
                                            if k != "attacks"}})
  return buf.getvalue()


# -------------------------------------------------------------------------------------------------
# The ε sweep (Figure 3)
# -------------------------------------------------------------------------------------------------


def sweep_epsilon(config, workdir: str) -> dict[str, Any]:
  """PGD-10 (α = ε/4) accuracy and clean-vs-adversarial MS-MPPD at each ε of the sweep (Fig. 3).

  One compiled step serves every ε. ``eps_sweep.json`` is rewritten after each ε and a rerun
  reuses the points whose settings are unchanged; the plots are drawn at the end. The reference
  uses α = 15/255 at ε = 100/255 (apparently a typo, spec §5); here α = ε/4 throughout.

  Args:
    config: a config with an ``eval`` section (or the section).
    workdir: a training workdir with a checkpoint.

  Returns:
    ``{"points": [...], "computed": [ε...], "traces": int, "paths": {...}}``.
  """
  ctx = _prepare(config, workdir)
  s = ctx.settings
  if not s.sweep_epsilons:
    raise ValueError("eval.sweep_epsilons is empty")
  paths = {k: os.path.join(ctx.workdir, f) for k, f in
           (("json", SWEEP_FILE), ("plot", SWEEP_PLOT), ("mppd_plot", SWEEP_MPPD_PLOT))}
  previous = _read_json(paths["json"], "ε sweep") or {}
  old_points = {p.get("fingerprint"): p for p in previous.get("points", [])
                if isinstance(p, dict)}
  spec = attacks.get_attack_spec("pgd10", step_size=None)
  leak = float(ctx.run_config.model.leak)
  step = _counting_traces(make_sweep_step(spec, ctx.model, ctx.attack_model, leak=leak,
                                          eot_draws=ctx.eot_draws))
  jitted = jit_step(step, ctx.mesh)
  sweep = {"workdir": ctx.workdir, "data": ctx.data_source, "attack": "pgd10",
           "step_size_rule": "epsilon/4", "ms_mppd_leak": leak,
           "ms_mppd": "mean over the test set of ms_mppd(clean - adversarial input currents of "
                      "the last spiking layer), eval mode", **_common_settings(ctx), "points": []}
  computed = []
  for epsilon in s.sweep_epsilons:
    point_settings = {**_attack_settings(spec, epsilon, ctx), "ms_mppd_leak": leak,
                      "sweep": True}
    point_settings["forward_passes_per_image"] += 1   # The clean forward for MS-MPPD.
    fingerprint = _fingerprint(point_settings)
    if fingerprint in old_points:
      sweep["points"].append(old_points[fingerprint])
      continue
    out, timing = _measure(jitted, ctx, key=attack_key(s.seed, "sweep-pgd10"), epsilon=epsilon,
                           desc=f"pgd10 ε={_eps255(epsilon)}")
    correct = int(out["correct"].sum())
    point = {"epsilon": epsilon, "epsilon_255": epsilon * 255,
             "step_size": _step_size(spec, epsilon), "accuracy": correct / len(ctx.labels),
             "correct": correct, "total": len(ctx.labels),
             "ms_mppd": float(out["ms_mppd"].astype(np.float64).mean()), **timing,
             "fingerprint": fingerprint}
    sweep["points"].append(point)
    computed.append(epsilon)
    log.info("sweep ε=%s: %.2f%% correct, MS-MPPD %.4g", _eps255(epsilon),
             100 * point["accuracy"], point["ms_mppd"])
    if ctx.is_main:
      _write_json(paths["json"], sweep)
  if ctx.is_main:
    _write_json(paths["json"], sweep)
    _plot_sweep(sweep["points"], paths)
    lines = ["| ε (/255) | PGD-10 accuracy (%) | MS-MPPD |", "|---:|---:|---:|"]
    lines += [f"| {p['epsilon_255']:.4g} | {100 * p['accuracy']:.2f} | {p['ms_mppd']:.4g} |"
              for p in sweep["points"]]
    print("\n".join(lines), flush=True)
  return {"points": sweep["points"], "computed": computed, "traces": step.count, "paths": paths}


def _plot_sweep(points, paths) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  x = [p["epsilon_255"] for p in points]
  for key, path, label in (("accuracy", paths["plot"], "PGD-10 accuracy (%)"),
                           ("ms_mppd", paths["mppd_plot"], "MS-MPPD (last spiking layer)")):
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    y = [100 * p[key] if key == "accuracy" else p[key] for p in points]
    ax.plot(x, y, marker="o")
    ax.set_xlabel("ε (/255)")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120), mode="wb")
    plt.close(fig)
