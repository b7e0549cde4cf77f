"""The identity "attack": Table 1's clean column, scored like every other attack."""

import dataclasses

from jsnn.attacks.spec import AttackSpec


@dataclasses.dataclass(frozen=True)
class CleanSpec(AttackSpec):
  """The clean images themselves (no perturbation, no passes beyond the scoring forward)."""
  kind = "clean"
  uses_gradients = False

  @property
  def needs_key(self) -> bool:
    return False

  def passes(self) -> tuple[int, int]:
    return 0, 0

  def record(self) -> dict:
    return {"kind": self.kind, "epsilon": 0.0}   # its result does not depend on ε

  def run(self, logits_fn, x, y, *, key, epsilon, mask):
    del logits_fn, y, key, epsilon, mask
    return x, self.constant_stats(x)
