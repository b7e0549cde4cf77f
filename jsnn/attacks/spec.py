"""What every attack kind's spec provides: plain data, validated on construction, that runs itself.

Each attack module defines one frozen subclass of :class:`AttackSpec` beside the attack it names
(``fgsm.FGSMSpec``, ``pgd.PGDSpec``, ``apgd.APGDSpec`` …). A spec owns everything the rest of the
library needs to know about its kind: its fields, whether it draws random numbers or follows input
gradients, the passes it spends per example, the step size it takes at a radius, the record that
identifies its result, and how to run it. Nothing outside the module switches on the kind; the
names (``pgd10``, ``apgd-t100``) are parsed in :mod:`jsnn.attacks.registry` only.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jsnn.attacks import base

PAPER_EPSILON = 8 / 255


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


@dataclasses.dataclass(frozen=True)
class AttackSpec:
  """The fields every attack has; subclasses add their own (all with defaults).

  Attributes:
    name: the name the suite reports, e.g. "pgd7".
    epsilon: default radius (images in [0, 1]); the attack function takes ε as an argument.
  """
  name: str
  epsilon: float = PAPER_EPSILON

  kind: ClassVar[str] = ""            # the family, recorded with each result
  uses_gradients: ClassVar[bool] = True   # follows input gradients: the estimator matters
  score_based: ClassVar[bool] = False     # searches on scores alone (a gradient-masking check)

  def __post_init__(self):
    base.check_epsilon(self.epsilon)

  @property
  def needs_key(self) -> bool:
    """Whether the attack draws random numbers (and so needs a PRNG key)."""
    return True

  def passes(self) -> tuple[int, int]:
    """``(forward, backward)`` passes per example, the scoring forward excluded (exact, or for an
    attack that stops early, the maximum)."""
    raise NotImplementedError

  def step_size_at(self, epsilon: float) -> Optional[float]:
    """The step size the attack takes at radius ``epsilon`` (None: it has no step)."""
    del epsilon
    return None

  def record(self) -> dict:
    """What identifies this attack's result besides ε: its kind and every field but the name.

    The fingerprint a stored result is reused under is built from it, so a new field changes the
    fingerprints of its own kind only.
    """
    fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
              if f.name not in ("name", "epsilon")}
    return {"kind": self.kind, **fields}

  def run(self, logits_fn, x, y, *, key, epsilon, mask) -> tuple[jax.Array, AttackStats]:
    """``(x_adv, AttackStats)``; ``mask`` [B] marks the rows worth attacking (or None)."""
    raise NotImplementedError

  def constant_stats(self, x) -> AttackStats:
    """The stats of an attack that spends :meth:`passes` on every row."""
    forward, backward = self.passes()
    full = lambda n: jnp.full(x.shape[:1], n, jnp.int32)
    return AttackStats(forward=full(forward), backward=full(backward), queries=full(0))
