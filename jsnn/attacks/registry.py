"""Named attack specifications, the paper's evaluation suite (spec §5, Table 1) and the
AutoAttack-style ``standard`` cascade.

A spec is plain data, checked when it is built; :func:`make_attack` turns it into a function
``attack(logits_fn, x, y, *, key, epsilon) -> x_adv`` that the caller jits once and reuses for
every batch and every ε (ε is a traced argument; the spec's ``epsilon`` is only its default).
With ``with_stats=True`` the function also returns the forward and backward passes and the score
queries it spent on each example (:class:`AttackStats`).
"""

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jsnn.attacks import base
# The package re-exports functions named like these modules, so import the functions themselves.
from jsnn.attacks.apgd import apgd
from jsnn.attacks.apgd import apgd_targeted
from jsnn.attacks.fgsm import fgsm
from jsnn.attacks.pgd import default_step_size
from jsnn.attacks.pgd import pgd
from jsnn.attacks.pgd import pgd_step_size
from jsnn.attacks.sapgd import sapgd
from jsnn.attacks.square import P_INIT
from jsnn.attacks.square import square_run

KINDS = ("clean", "fgsm", "pgd", "apgd", "apgd-t", "square", "sa-pgd")
# Kinds that follow input gradients (and so depend on the gradient estimator).
GRADIENT_KINDS = ("fgsm", "pgd", "apgd", "apgd-t", "sa-pgd")

PAPER_EPSILON = 8 / 255

Attack = Callable[..., jax.Array]
"""``attack(logits_fn, x, y, *, key=None, epsilon=spec.epsilon) -> x_adv``."""


@dataclasses.dataclass(frozen=True)
class AttackSpec:
  """What to run, by name. Invalid values raise ``ValueError`` on construction.

  Attributes:
    name: the name the suite reports, e.g. "pgd7".
    kind: "clean" (the identity), "fgsm", "pgd", "apgd", "apgd-t" (APGD on a targeted loss,
      once per target), "square" (score-based, no gradients) or "sa-pgd" (SA-PGD, L∞).
    epsilon: default radius (images in [0, 1]); the attack function takes ε as an argument.
    num_steps: iterations (pgd, apgd, sa-pgd; apgd-t: per target).
    step_size: PGD's α; None means ``2.5·ε/num_steps`` computed from the ε of each call.
    loss: "ce" or "dlr" (pgd, apgd; fgsm is always CE; for apgd-t the targeted version of it).
    norm: "linf" or "l2" (pgd, apgd, apgd-t; fgsm and square are always L∞).
    random_start: PGD starts from a random point of the ball (APGD always does).
    num_restarts: APGD random restarts (apgd-t: per target).
    rho: APGD's oscillation threshold.
    num_targets: apgd-t's number of target classes (the top-k other classes by clean logit).
    num_queries: square's query budget per example, its start included.
    p_init: square's initial fraction of pixels per window.
  """
  name: str
  kind: str
  epsilon: float = PAPER_EPSILON
  num_steps: int = 1
  step_size: float | None = None
  loss: str = "ce"
  norm: str = "linf"
  random_start: bool = False
  num_restarts: int = 1
  rho: float = 0.75
  num_targets: int = 9
  num_queries: int = 5000
  p_init: float = P_INIT

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"unknown attack kind {self.kind!r}; known kinds: {', '.join(KINDS)}")
    base.check_norm(self.norm)
    base.get_loss(self.loss)
    base.check_epsilon(self.epsilon)
    base.check_num_steps(self.num_steps)
    base.check_num_steps(self.num_restarts, "num_restarts")
    if self.step_size is not None:
      base.check_positive(self.step_size, "step_size")
    if not 0 <= self.rho <= 1:
      raise ValueError(f"rho must lie in [0, 1]; got {self.rho!r}")
    if self.kind == "fgsm" and (self.norm, self.loss) != ("linf", "ce"):
      raise ValueError(
          f"fgsm is the L∞ sign step on CE; got norm={self.norm!r}, loss={self.loss!r}")
    base.check_num_steps(self.num_targets, "num_targets")
    base.check_num_steps(self.num_queries, "num_queries")
    if not 0 < self.p_init <= 1:
      raise ValueError(f"p_init must lie in (0, 1]; got {self.p_init!r}")
    if self.kind in ("square", "sa-pgd") and self.norm != "linf":
      raise ValueError(f"{self.kind} is implemented for the L∞ norm only; got norm={self.norm!r}")

  @property
  def needs_key(self) -> bool:
    """Whether the attack draws random numbers (and so needs a PRNG key)."""
    return (self.kind in ("apgd", "apgd-t", "square", "sa-pgd")
            or (self.kind == "pgd" and self.random_start))

  @property
  def uses_gradients(self) -> bool:
    """Whether the attack follows input gradients (so the gradient estimator matters)."""
    return self.kind in GRADIENT_KINDS


def _pgd(name: str, num_steps: int) -> AttackSpec:
  return AttackSpec(
      name=name, kind="pgd", num_steps=num_steps, step_size=pgd_step_size(num_steps),
      random_start=True)


# Table 1's columns, in its order. APGD: 10 steps, 1 restart, rho 0.75 (torchattacks defaults).
PAPER_SUITE: tuple[AttackSpec, ...] = (
    AttackSpec(name="clean", kind="clean"),
    AttackSpec(name="fgsm", kind="fgsm"),
    _pgd("pgd7", 7),
    _pgd("pgd10", 10),
    _pgd("pgd20", 20),
    _pgd("pgd40", 40),
    AttackSpec(name="apgd-ce", kind="apgd", num_steps=10, loss="ce", random_start=True),
    AttackSpec(name="apgd-dlr", kind="apgd", num_steps=10, loss="dlr", random_start=True),
)

_SPECS = {spec.name: spec for spec in PAPER_SUITE}

# AutoAttack's "standard" version (Croce & Hein, 2020), less FAB-T: 100 iterations per gradient
# attack, 9 targets, 5,000 queries.
STANDARD_STEPS = 100
STANDARD_TARGETS = 9
STANDARD_QUERIES = 5000


def standard_cascade(epsilon: float = PAPER_EPSILON, *, num_steps: int = STANDARD_STEPS,
                     num_targets: int = STANDARD_TARGETS,
                     num_queries: int = STANDARD_QUERIES) -> tuple[AttackSpec, ...]:
  """The ``standard`` cascade APGD-CE → APGD-T (targeted DLR) → Square, L∞, one restart each.

  Each stage is meant to attack only the points the stages before it left correctly classified
  (see :func:`jsnn.evaluation.evaluate_checkpoint`); the names carry the budgets, e.g.
  ``("apgd-ce100", "apgd-t100", "square5000")``.

  Args:
    epsilon: L∞ radius.
    num_steps: iterations of APGD-CE and of APGD-T per target.
    num_targets: APGD-T's target classes.
    num_queries: Square's query budget.

  Returns:
    The three specs, in order.
  """
  return (
      AttackSpec(name=f"apgd-ce{num_steps}", kind="apgd", epsilon=epsilon, num_steps=num_steps,
                 loss="ce", random_start=True),
      AttackSpec(name=f"apgd-t{num_steps}", kind="apgd-t", epsilon=epsilon, num_steps=num_steps,
                 loss="dlr", random_start=True, num_targets=num_targets),
      AttackSpec(name=f"square{num_queries}", kind="square", epsilon=epsilon,
                 num_queries=num_queries, random_start=True),
  )


def attack_names() -> tuple[str, ...]:
  """The names :func:`get_attack_spec` knows, in Table 1's order."""
  return tuple(_SPECS)


def get_attack_spec(name: str, **overrides) -> AttackSpec:
  """Looks up a named attack and optionally overrides some of its fields.

  Example: ``get_attack_spec("pgd10", step_size=None)`` is the reference's ε sweep (α = ε/4).

  Args:
    name: one of :func:`attack_names`.
    **overrides: AttackSpec fields to replace.

  Returns:
    The (validated) spec.

  Raises:
    ValueError: for an unknown name, an unknown field or an invalid value.
  """
  if name not in _SPECS:
    raise ValueError(f"unknown attack {name!r}; known attacks: {', '.join(_SPECS)}")
  fields = {f.name for f in dataclasses.fields(AttackSpec)}
  unknown = sorted(set(overrides) - fields)
  if unknown:
    raise ValueError(f"unknown AttackSpec field(s) {unknown}; fields: {', '.join(sorted(fields))}")
  return dataclasses.replace(_SPECS[name], **overrides)


class AttackStats(NamedTuple):
  """What an attack spent on each example of the batch, as it ran (not counting any scoring).

  Attributes:
    forward: [B] int32 forward passes evaluated on the example's row (a gradient evaluation counts
      one forward and one backward).
    backward: [B] int32 backward passes.
    queries: [B] int32 score queries that counted for the example (Square: the start plus one per
      iteration while it was still correctly classified; 0 for the other attacks).
  """
  forward: jax.Array
  backward: jax.Array
  queries: jax.Array


def attack_passes(spec: AttackSpec) -> tuple[int, int]:
  """``(forward, backward)`` passes the attack runs per example, the scoring forward excluded.

  Exact for every kind but Square, whose loop stops once its whole batch is fooled: for Square
  this is the maximum, ``2 + (num_queries − 1)`` forwards (the clean forward, the start, the
  iterations). Clean 0 + 0; FGSM 1 + 1; PGD-k k + k; APGD-k with R restarts 1 (which examples
  start out correct) + R·(k + 1) gradients; APGD-T adds a factor ``num_targets`` to the
  gradients; SA-PGD-k counts like APGD-k.
  """
  if spec.kind == "clean":
    return 0, 0
  if spec.kind == "fgsm":
    return 1, 1
  if spec.kind == "pgd":
    return spec.num_steps, spec.num_steps
  if spec.kind == "square":
    return 1 + spec.num_queries, 0
  grads = spec.num_restarts * (spec.num_steps + 1)
  if spec.kind == "apgd-t":
    grads *= spec.num_targets
  return 1 + grads, grads


def _constant_stats(spec, x):
  forward, backward = attack_passes(spec)
  full = lambda n: jnp.full(x.shape[:1], n, jnp.int32)
  return AttackStats(forward=full(forward), backward=full(backward), queries=full(0))


def _run_clean(spec, logits_fn, x, y, key, epsilon, mask):
  del logits_fn, y, key, epsilon, mask  # The identity: the suite's "clean" column.
  return x, _constant_stats(spec, x)


def _run_fgsm(spec, logits_fn, x, y, key, epsilon, mask):
  del key, mask  # Deterministic, and always L∞ on CE.
  return fgsm(logits_fn, x, y, epsilon=epsilon), _constant_stats(spec, x)


def _run_pgd(spec, logits_fn, x, y, key, epsilon, mask):
  del mask  # Fixed work per row: a mask would save nothing.
  step_size = spec.step_size
  if step_size is None:
    step_size = default_step_size(epsilon, spec.num_steps)
  x_adv = pgd(
      logits_fn, x, y, key=key, epsilon=epsilon, step_size=step_size, num_steps=spec.num_steps,
      norm=spec.norm, random_start=spec.random_start, loss=spec.loss)
  return x_adv, _constant_stats(spec, x)


def _run_apgd(spec, logits_fn, x, y, key, epsilon, mask):
  del mask  # Fixed work per row: a mask would save nothing.
  x_adv = apgd(
      logits_fn, x, y, key=key, epsilon=epsilon, num_steps=spec.num_steps, loss=spec.loss,
      norm=spec.norm, num_restarts=spec.num_restarts, rho=spec.rho)
  return x_adv, _constant_stats(spec, x)


def _run_apgd_targeted(spec, logits_fn, x, y, key, epsilon, mask):
  del mask  # Fixed work per row: a mask would save nothing.
  x_adv = apgd_targeted(
      logits_fn, x, y, key=key, epsilon=epsilon, num_steps=spec.num_steps,
      num_targets=spec.num_targets, loss=spec.loss, norm=spec.norm,
      num_restarts=spec.num_restarts, rho=spec.rho)
  return x_adv, _constant_stats(spec, x)


def _run_sapgd(spec, logits_fn, x, y, key, epsilon, mask):
  del mask  # Fixed work per row: a mask would save nothing.
  x_adv = sapgd(logits_fn, x, y, key=key, epsilon=epsilon, num_steps=spec.num_steps,
                loss=spec.loss, num_restarts=spec.num_restarts)
  return x_adv, _constant_stats(spec, x)


def _run_square(spec, logits_fn, x, y, key, epsilon, mask):
  result = square_run(logits_fn, x, y, key=key, epsilon=epsilon, num_queries=spec.num_queries,
                      p_init=spec.p_init, mask=mask)
  # Every row of the batch is evaluated at each iteration the loop ran; only active rows count
  # the query.
  forward = jnp.full(x.shape[:1], 2, jnp.int32) + result.num_iterations
  return result.x_adv, AttackStats(forward=forward, backward=jnp.zeros_like(forward),
                                   queries=result.queries)


# One runner per entry of KINDS.
_RUNNERS = {"clean": _run_clean, "fgsm": _run_fgsm, "pgd": _run_pgd, "apgd": _run_apgd,
            "apgd-t": _run_apgd_targeted, "square": _run_square, "sa-pgd": _run_sapgd}


def make_attack(spec: AttackSpec | str, *, with_stats: bool = False) -> Attack:
  """Builds ``attack(logits_fn, x, y, *, key=None, epsilon=spec.epsilon, mask=None) -> x_adv``.

  The function is pure and not jitted: jit it once (closing over or passing ``logits_fn``) and
  pass ε as an array so that every ε reuses the compiled attack. ``mask`` ([B] bool, optional)
  marks the rows worth attacking (not a padded batch's filler): Square leaves the others alone
  and stops once every masked row is fooled; the other attacks run every row anyway.

  Args:
    spec: an AttackSpec or the name of one (see :func:`get_attack_spec`).
    with_stats: return ``(x_adv, AttackStats)`` instead of ``x_adv``.

  Returns:
    The attack function. ``key`` is required when ``spec.needs_key``.
  """
  if isinstance(spec, str):
    spec = get_attack_spec(spec)
  if not isinstance(spec, AttackSpec):
    raise ValueError(f"make_attack expects an AttackSpec or a name; got {spec!r}")

  run = _RUNNERS[spec.kind]

  def attack(logits_fn, x, y, *, key=None, epsilon=spec.epsilon, mask=None):
    if spec.needs_key and key is None:
      raise ValueError(f"attack {spec.name!r} is randomised and needs a PRNG key; got key=None")
    base.check_epsilon(epsilon)
    x_adv, stats = run(spec, logits_fn, x, y, key, epsilon, mask)
    return (x_adv, stats) if with_stats else x_adv

  attack.__name__ = attack.__qualname__ = f"attack_{spec.name.replace('-', '_')}"
  return attack
