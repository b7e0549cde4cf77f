"""Evaluation settings: ``config.eval`` validated before any work, and pass counts."""

from __future__ import annotations

import dataclasses
from typing import Optional

from jsnn import attacks, config_checks, spiking
from jsnn.attacks.registry import (STANDARD_QUERIES, STANDARD_STEPS, STANDARD_TARGETS,
                                   check_epsilon, parse_attack)

# Name of the per-example worst case over every attack (AutoAttack's robust accuracy).
WORST_CASE = "worst-case"
# Variant name of the transfer attacks (eval.transfer_from): "<attack>@transfer".
TRANSFER = "transfer"
STANDARD = "standard"
SUITES = ("paper", "standard", "full")
# Gradient estimators the full suite adds when eval.estimators is empty.
FULL_ESTIMATORS = ("straight_through", "bptr", "rga", "hart", "assg", "pdsg")
# The attack the full suite adds, at eval.cascade_steps steps like the cascade's APGD: sa-pgd100.
SAPGD = "sa-pgd"
# eval.assg_search's default: ASSG's bound A tried at 3 values per example (0.35, 0.42, 0.49).
ASSG_SEARCH = 3
# eval.estimators value that adds none, not even the full suite's.
NO_ESTIMATORS = "none"

# An input gradient whose largest entry is below this counts as near zero: the CE gradient has
# underflowed (a saturated softmax, or surrogates whose tails vanish), so any step built on it is
# rounding noise.
NEAR_ZERO_GRADIENT = 1e-10

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
  assg_bounds: tuple[float, ...] = (spiking.adaptive.ASSG_BOUND,)
  certify: Optional["CertifySettings"] = None


@dataclasses.dataclass(frozen=True)
class CertifySettings:
  """``eval.certify_*``: Cohen et al.'s CERTIFY/PREDICT (ICML 2019, Algorithm 1 / §3.2).

  Attributes:
    sigma: σ of the smoothing noise N(0, σ²I), in [0, 1] pixel units.
    num_select: N0, the draws that pick the top class.
    num_estimate: N, the draws that bound its probability.
    alpha: α, the failure probability of the certificate (and of PREDICT's test).
    draws_per_pass: noisy copies of each image per forward pass (a larger batch per pass).
  """
  sigma: float
  num_select: int
  num_estimate: int
  alpha: float
  draws_per_pass: int


def certify_settings(e) -> CertifySettings:
  """Validates ``eval.certify_*``; raises ValueError naming the bad value."""
  sigma = e.get("certify_sigma", 0.25)
  if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
    raise ValueError(f"eval.certify_sigma, the smoothing noise's σ, must be a number > 0, got "
                     f"{sigma!r}")
  alpha = e.get("certify_alpha", 0.001)
  if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
    raise ValueError(f"eval.certify_alpha must lie in (0, 1), got {alpha!r}")
  num_select = _int_setting(e, "certify_n0", 100, 1)
  num_estimate = _int_setting(e, "certify_n", 1000, 1)
  if num_select > num_estimate:
    raise ValueError(f"eval.certify_n0 ({num_select}) must not exceed eval.certify_n "
                     f"({num_estimate}): N0 only selects the class, N bounds its probability")
  draws_per_pass = _int_setting(e, "certify_draws_per_pass", 10, 1)
  for name, value in (("certify_n0", num_select), ("certify_n", num_estimate)):
    if value % draws_per_pass:
      raise ValueError(f"eval.{name} ({value}) must be a multiple of "
                       f"eval.certify_draws_per_pass ({draws_per_pass})")
  return CertifySettings(sigma=float(sigma), num_select=num_select, num_estimate=num_estimate,
                         alpha=float(alpha), draws_per_pass=draws_per_pass)


@dataclasses.dataclass(frozen=True)
class Estimator:
  """A gradient to attack through, other than the evaluation's own (``eval.estimators`` entry).

  Attributes:
    name: as written in the config: "bptr", "rga", "hart", "assg", "pdsg", or a surrogate with an
      optional width
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
  config_checks.check_finite(e.to_dict() if hasattr(e, "to_dict") else dict(e), "eval.")
  checkpoint = e.checkpoint
  if checkpoint not in ("best", "latest"):
    raise ValueError(f"eval.checkpoint must be 'best' or 'latest', got {checkpoint!r}")
  epsilon = check_epsilon(e.epsilon, "eval.epsilon")
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
  assg_search = e.get("assg_search", ASSG_SEARCH)
  if isinstance(assg_search, bool) or not isinstance(assg_search, int) or assg_search < 1:
    raise ValueError(f"eval.assg_search, the number of ASSG bounds A tried per example, must be "
                     f"an integer >= 1, got {assg_search!r}")
  specs = tuple(parse_attack(n, epsilon, num_targets=num_targets) for n in names)
  if suite == "standard":
    specs = (parse_attack("clean"),)
  elif suite == "full":
    if "clean" not in names:
      specs = (parse_attack("clean"),) + specs
    if not any(isinstance(spec, attacks.SAPGDSpec) for spec in specs):
      # The strongest published SNN attack, at the cascade's budget (100 steps by default).
      specs += (parse_attack(f"{SAPGD}{cascade_steps}", epsilon),)
  cascade = () if suite == "paper" else attacks.standard_cascade(
      epsilon, num_steps=cascade_steps, num_targets=num_targets, num_queries=square_queries)
  estimator_names = [n.strip() for n in str(e.get("estimators", "")).split(",") if n.strip()]
  if not estimator_names and suite == "full":
    estimator_names = list(FULL_ESTIMATORS)
  if estimator_names == [NO_ESTIMATORS]:
    # The full suite without estimator variants: the paper's attacks and the cascade only.
    estimator_names = []
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
    sweep.append(check_epsilon(value, f"eval.sweep_epsilons entry {item.strip()}/255"))
  return EvalSettings(
      checkpoint=checkpoint, specs=specs, epsilon=epsilon, batch_size=e.batch_size,
      num_examples=e.num_examples, seed=e.seed, surrogate=e.surrogate,
      surrogate_width=float(e.surrogate_width), sweep_epsilons=tuple(sweep),
      sanity_checks=bool(e.get("sanity_checks", True)),
      progress_bar=bool(e.get("progress_bar", True)), data_dir=e.get("data_dir", ""),
      tfds_data_dir=e.get("tfds_data_dir", ""), suite=suite, cascade=cascade,
      estimators=estimators, eot_draws=eot_draws, transfer_from=transfer_from,
      assg_bounds=spiking.adaptive.assg_search_bounds(assg_search), certify=certify_settings(e))


def passes_per_image(spec: attacks.AttackSpec, *, attack_draws: int = 1,
                     vote_draws: int = 1) -> tuple[int, int]:
  """``(forward, backward)`` passes an evaluation with ``spec`` spends per image.

  Counted from the attacks' structure (the spec's ``passes()``), plus the final forward
  that scores the adversarial image: clean 1 + 0; FGSM one gradient + 1 forward; PGD-k k
  gradients + 1; APGD-k with R restarts 1 forward (which examples start out correct) + R·(k + 1)
  gradients + 1; APGD-T the same with ``num_targets``·R runs. Every example of a batch runs every
  iteration (no early exit), so these are exact, except for Square, whose loop stops when its
  whole batch is fooled: for it this is the maximum, and the record holds what ran.

  For a stochastic model each EOT draw counts as a pass: the attack's passes ``attack_draws``
  times, the scoring forward ``vote_draws`` times (the majority vote).
  """
  forward, backward = spec.passes()
  return forward * attack_draws + vote_draws, backward * attack_draws
