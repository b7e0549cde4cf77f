"""Named attack specifications and the paper's evaluation suite (spec §5, Table 1).

A spec is plain data, checked when it is built; :func:`make_attack` turns it into a function
``attack(logits_fn, x, y, *, key, epsilon) -> x_adv`` that the caller jits once and reuses for
every batch and every ε (ε is a traced argument; the spec's ``epsilon`` is only its default).
"""

import dataclasses
from typing import Callable

import jax

from jsnn.attacks import base
# The package re-exports functions named like these modules, so import the functions themselves.
from jsnn.attacks.apgd import apgd
from jsnn.attacks.fgsm import fgsm
from jsnn.attacks.pgd import default_step_size
from jsnn.attacks.pgd import pgd
from jsnn.attacks.pgd import pgd_step_size

KINDS = ("clean", "fgsm", "pgd", "apgd")

PAPER_EPSILON = 8 / 255

Attack = Callable[..., jax.Array]
"""``attack(logits_fn, x, y, *, key=None, epsilon=spec.epsilon) -> x_adv``."""


@dataclasses.dataclass(frozen=True)
class AttackSpec:
  """What to run, by name. Invalid values raise ``ValueError`` on construction.

  Attributes:
    name: the name the suite reports, e.g. "pgd7".
    kind: "clean" (the identity), "fgsm", "pgd" or "apgd".
    epsilon: default radius (images in [0, 1]); the attack function takes ε as an argument.
    num_steps: iterations (pgd, apgd).
    step_size: PGD's α; None means ``2.5·ε/num_steps`` computed from the ε of each call.
    loss: "ce" or "dlr" (pgd, apgd; fgsm is always CE).
    norm: "linf" or "l2" (pgd, apgd; fgsm is always L∞).
    random_start: PGD starts from a random point of the ball (APGD always does).
    num_restarts: APGD random restarts.
    rho: APGD's oscillation threshold.
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

  @property
  def needs_key(self) -> bool:
    """Whether the attack draws random numbers (and so needs a PRNG key)."""
    return self.kind == "apgd" or (self.kind == "pgd" and self.random_start)


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


def _run_clean(spec, logits_fn, x, y, key, epsilon):
  del spec, logits_fn, y, key, epsilon  # The identity: the suite's "clean" column.
  return x


def _run_fgsm(spec, logits_fn, x, y, key, epsilon):
  del spec, key  # Deterministic, and always L∞ on CE.
  return fgsm(logits_fn, x, y, epsilon=epsilon)


def _run_pgd(spec, logits_fn, x, y, key, epsilon):
  step_size = spec.step_size
  if step_size is None:
    step_size = default_step_size(epsilon, spec.num_steps)
  return pgd(
      logits_fn, x, y, key=key, epsilon=epsilon, step_size=step_size, num_steps=spec.num_steps,
      norm=spec.norm, random_start=spec.random_start, loss=spec.loss)


def _run_apgd(spec, logits_fn, x, y, key, epsilon):
  return apgd(
      logits_fn, x, y, key=key, epsilon=epsilon, num_steps=spec.num_steps, loss=spec.loss,
      norm=spec.norm, num_restarts=spec.num_restarts, rho=spec.rho)


# One runner per entry of KINDS.
_RUNNERS = {"clean": _run_clean, "fgsm": _run_fgsm, "pgd": _run_pgd, "apgd": _run_apgd}


def make_attack(spec: AttackSpec | str) -> Attack:
  """Builds ``attack(logits_fn, x, y, *, key=None, epsilon=spec.epsilon) -> x_adv``.

  The function is pure and not jitted: jit it once (closing over or passing ``logits_fn``) and
  pass ε as an array so that every ε reuses the compiled attack.

  Args:
    spec: an AttackSpec or the name of one (see :func:`get_attack_spec`).

  Returns:
    The attack function. ``key`` is required when ``spec.needs_key``.
  """
  if isinstance(spec, str):
    spec = get_attack_spec(spec)
  if not isinstance(spec, AttackSpec):
    raise ValueError(f"make_attack expects an AttackSpec or a name; got {spec!r}")

  run = _RUNNERS[spec.kind]

  def attack(logits_fn, x, y, *, key=None, epsilon=spec.epsilon):
    if spec.needs_key and key is None:
      raise ValueError(f"attack {spec.name!r} is randomised and needs a PRNG key; got key=None")
    base.check_epsilon(epsilon)
    return run(spec, logits_fn, x, y, key, epsilon)

  attack.__name__ = attack.__qualname__ = f"attack_{spec.name.replace('-', '_')}"
  return attack
