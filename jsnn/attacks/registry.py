"""Attack names: the grammar (``pgd10``, ``apgd-t100``, ``square5000``), the paper's suite
(spec §5, Table 1) and the AutoAttack-style ``standard`` cascade.

A name stands for a spec (:class:`~jsnn.attacks.spec.AttackSpec`, one subclass per kind, each in
its attack's module); :func:`make_attack` turns a spec into a function
``attack(logits_fn, x, y, *, key, epsilon) -> x_adv`` that the caller jits once and reuses for
every batch and every ε (ε is a traced argument; the spec's ``epsilon`` is only its default).
With ``with_stats=True`` it also returns the passes and queries spent on each example
(:class:`AttackStats`).

Adding an attack kind: a module with the attack and its spec, and one line in ``_FAMILIES``.
"""

import dataclasses
import re
from typing import Callable

import jax

from jsnn.attacks import base
from jsnn.attacks.apgd import APGDSpec, APGDTSpec
from jsnn.attacks.clean import CleanSpec
from jsnn.attacks.fgsm import FGSMSpec
from jsnn.attacks.mifgsm import MIFGSMSpec
from jsnn.attacks.pgd import PGDSpec, pgd_step_size
from jsnn.attacks.sapgd import SAPGDSpec
from jsnn.attacks.spec import PAPER_EPSILON, AttackSpec, AttackStats  # noqa: F401  (re-exported)
from jsnn.attacks.square import SquareSpec

Attack = Callable[..., jax.Array]
"""``attack(logits_fn, x, y, *, key=None, epsilon=spec.epsilon) -> x_adv``."""

# AutoAttack's "standard" version (Croce & Hein, 2020), less FAB-T: 100 iterations per gradient
# attack, 9 targets, 5,000 queries.
STANDARD_STEPS = 100
STANDARD_TARGETS = 9
STANDARD_QUERIES = 5000


def _pgd(name: str, num_steps: int) -> PGDSpec:
  return PGDSpec(name=name, num_steps=num_steps, step_size=pgd_step_size(num_steps),
                 random_start=True)


# Table 1's columns, in its order. APGD: 10 steps, 1 restart, rho 0.75 (torchattacks defaults).
PAPER_SUITE: tuple[AttackSpec, ...] = (
    CleanSpec(name="clean"),
    FGSMSpec(name="fgsm"),
    _pgd("pgd7", 7),
    _pgd("pgd10", 10),
    _pgd("pgd20", 20),
    _pgd("pgd40", 40),
    APGDSpec(name="apgd-ce", num_steps=10, loss="ce"),
    APGDSpec(name="apgd-dlr", num_steps=10, loss="dlr"),
)
_SPECS = {spec.name: spec for spec in PAPER_SUITE}

# The name grammar, one family per entry: (pattern, what its number counts, the spec it names from
# the match m, ε and APGD-T's number of targets t). Table 1's names are matched before these.
# Counts have no leading zeros, so that each attack has one name.
_COUNT = r"(0|[1-9]\d*)"
_FAMILIES = (
    (rf"pgd{_COUNT}", "steps", lambda m, e, t: PGDSpec(m[0], e, num_steps=int(m[1]),
                                                       random_start=True)),   # α = 2.5·ε/k
    (rf"apgd-(ce|dlr){_COUNT}", "steps", lambda m, e, t: APGDSpec(m[0], e, int(m[2]), m[1])),
    (rf"apgd-t{_COUNT}", "steps", lambda m, e, t: APGDTSpec(m[0], e, int(m[1]), num_targets=t)),
    (rf"sa-pgd{_COUNT}", "steps", lambda m, e, t: SAPGDSpec(m[0], e, num_steps=int(m[1]))),
    (rf"square{_COUNT}", "queries", lambda m, e, t: SquareSpec(m[0], e, num_queries=int(m[1]))),
    (rf"mi-fgsm{_COUNT}", "steps", lambda m, e, t: MIFGSMSpec(m[0], e, num_steps=int(m[1]))),
)
_GRAMMAR = tuple((re.compile(f"^{pattern}$"), what, build) for pattern, what, build in _FAMILIES)



def attack_names() -> tuple[str, ...]:
  """The fixed names (Table 1's, in its order); :func:`parse_attack` knows the families too."""
  return tuple(_SPECS)


def check_epsilon(value, what: str) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
    raise ValueError(f"{what} must be a number in [0, 1] (images live in [0, 1]), got {value!r}")
  return float(value)


def parse_attack(name: str, epsilon: float = PAPER_EPSILON, *,
                 num_targets: int = STANDARD_TARGETS) -> AttackSpec:
  """The attack called ``name`` at radius ``epsilon``.

  Args:
    name: a Table 1 name (``clean``, ``fgsm``, ``pgd7/10/20/40``, ``apgd-ce``, ``apgd-dlr``), or
      one of ``_FAMILIES``: ``pgd<k>``, ``apgd-ce<k>``, ``apgd-dlr<k>``, ``apgd-t<k>``,
      ``sa-pgd<k>``, ``square<q>``, ``mi-fgsm<k>``.
    epsilon: L∞ radius in [0, 1].
    num_targets: APGD-T's number of target classes.

  Returns:
    A validated spec with ``epsilon`` set. Table 1's PGD step sizes are the reference's, written
    for ε = 8/255, and keep their ratio to ε at other radii.

  Raises:
    ValueError: an unknown name (the message lists the known ones), k < 1, or ε outside [0, 1].
  """
  check_epsilon(epsilon, "epsilon")
  if name in _SPECS:
    spec = dataclasses.replace(_SPECS[name], epsilon=epsilon)
    if isinstance(spec, PGDSpec):
      spec = dataclasses.replace(spec, step_size=spec.step_size * (epsilon / PAPER_EPSILON))
    return spec
  for pattern, what, build in _GRAMMAR:
    match = pattern.match(name)
    if match:
      if int(match.groups()[-1]) < 1:
        raise ValueError(f"attack {name!r}: the number of {what} must be >= 1, got 0")
      return build(match, epsilon, num_targets)
  families = ", ".join(pattern.pattern.strip("^$").replace(_COUNT, "<k>")
                       for pattern, _, _ in _GRAMMAR)
  raise ValueError(f"unknown attack {name!r}; known attacks: {', '.join(_SPECS)}, or "
                   f"{families} for k >= 1 steps (queries for square)")


def get_attack_spec(name: str, **overrides) -> AttackSpec:
  """Looks up a Table 1 attack and optionally overrides some of its fields.

  Example: ``get_attack_spec("pgd10", step_size=None)`` is the reference's ε sweep (α = ε/4).

  Raises:
    ValueError: for an unknown name, an unknown field or an invalid value.
  """
  if name not in _SPECS:
    raise ValueError(f"unknown attack {name!r}; known attacks: {', '.join(_SPECS)}")
  fields = {f.name for f in dataclasses.fields(_SPECS[name])}
  unknown = sorted(set(overrides) - fields)
  if unknown:
    raise ValueError(f"unknown field(s) {unknown} of {type(_SPECS[name]).__name__}; fields: "
                     f"{', '.join(sorted(fields))}")
  return dataclasses.replace(_SPECS[name], **overrides)


def standard_cascade(epsilon: float = PAPER_EPSILON, *, num_steps: int = STANDARD_STEPS,
                     num_targets: int = STANDARD_TARGETS,
                     num_queries: int = STANDARD_QUERIES) -> tuple[AttackSpec, ...]:
  """The ``standard`` cascade APGD-CE → APGD-T (targeted DLR) → Square, L∞, one restart each.

  Each stage is meant to attack only the points the stages before it left correctly classified
  (see :func:`jsnn.evaluation.evaluate_checkpoint`); the names carry the budgets, e.g.
  ``("apgd-ce100", "apgd-t100", "square5000")``.
  """
  return (parse_attack(f"apgd-ce{num_steps}", epsilon),
          parse_attack(f"apgd-t{num_steps}", epsilon, num_targets=num_targets),
          parse_attack(f"square{num_queries}", epsilon))


def attack_passes(spec: AttackSpec) -> tuple[int, int]:
  """``(forward, backward)`` passes the attack runs per example, the scoring forward excluded."""
  return spec.passes()


def make_attack(spec: AttackSpec | str, *, with_stats: bool = False) -> Attack:
  """Builds ``attack(logits_fn, x, y, *, key=None, epsilon=spec.epsilon, mask=None) -> x_adv``.

  The function is pure and not jitted: jit it once (closing over or passing ``logits_fn``) and
  pass ε as an array so that every ε reuses the compiled attack. ``mask`` ([B] bool, optional)
  marks the rows worth attacking (not a padded batch's filler): Square leaves the others alone
  and stops once every masked row is fooled; the other attacks run every row anyway.

  Args:
    spec: a spec or a name :func:`parse_attack` knows.
    with_stats: return ``(x_adv, AttackStats)`` instead of ``x_adv``.

  Returns:
    The attack function. ``key`` is required when ``spec.needs_key``.
  """
  if isinstance(spec, str):
    spec = parse_attack(spec)
  if not isinstance(spec, AttackSpec):
    raise ValueError(f"make_attack expects an AttackSpec or a name; got {spec!r}")

  def attack(logits_fn, x, y, *, key=None, epsilon=spec.epsilon, mask=None):
    if spec.needs_key and key is None:
      raise ValueError(f"attack {spec.name!r} is randomised and needs a PRNG key; got key=None")
    base.check_epsilon(epsilon)
    x_adv, stats = spec.run(logits_fn, x, y, key=key, epsilon=epsilon, mask=mask)
    return (x_adv, stats) if with_stats else x_adv

  attack.__name__ = attack.__qualname__ = f"attack_{spec.name.replace('-', '_')}"
  return attack
