"""The neuron settings of a spiking network, declared once: :class:`NeuronSpec`.

A spec is a frozen, hashable dataclass of Python values. The Flax layers hold one as a field
(``jsnn.models.SpikingNeuron``), ``jit`` can take one as a static argument, and
``dataclasses.replace`` gives a variant, say another surrogate to attack through. It is validated
once, when it is built. :func:`jsnn.workdir.neuron_spec` builds it from ``config.model``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from jsnn.spiking.neurons import DLIF_PLACEMENTS, check_estimator
from jsnn.spiking.surrogate import SURROGATES, get_surrogate

NEURONS = ("lif", "dlif")
# Surrogates whose width parameter is a sharpness α (larger = narrower), not a width.
_SHARPNESS_SURROGATES = ("sigmoid", "arctan")
_WIDTHLESS_SURROGATES = ("straight_through",)


@dataclasses.dataclass(frozen=True)
class NeuronSpec:
  """Every spiking layer's neuron: its dynamics, its surrogate gradient and its backward pass.

  The dynamics are paper Eq. 1 with a hard reset: ``v[t] = λ·u[t−1] + I[t]``,
  ``s[t] = H(v[t] − u_th)``, ``u[t] = v[t]·(1 − s[t])``. DLIF (§3.3) adds a trainable factor
  ``a[t]`` per layer and time step. The surrogate replaces H's derivative in the backward pass; the
  paper trains and attacks with the triangle of Eq. 18,
  ``∂s/∂v = (1/ω²)·max(ω − |v − u_th|, 0)`` with ω = 1.

  Attributes:
    kind: ``"lif"`` (Eq. 1) or ``"dlif"`` (§3.3).
    time_steps: T ≥ 1, the length of the time loop (8 in the paper).
    dlif_placement: where DLIF's factor acts, ``"input"`` (reference code: ``a[t]·I[t]``; made
      the paper's tables) or ``"leak"`` (the paper's equation: ``λ·a[t]·u[t−1]``). LIF ignores it.
    leak: λ ∈ (0, 1] (0.99).
    threshold: u_th > 0 (1.0).
    surrogate: a name of ``jsnn.spiking.SURROGATES``: ``"triangle"`` (Eq. 18), ``"sigmoid"``,
      ``"arctan"``, ``"rectangular"`` or ``"straight_through"``.
    surrogate_width: > 0, the surrogate's one shape parameter: the width ω of the triangle and the
      rectangle, the sharpness α of the sigmoid and arctan; ignored by ``"straight_through"``.
      None means the surrogate's own default (ω = 1, α = 4 for the sigmoid, α = 2 for arctan).
    gradient_estimator: the backward pass, one of ``jsnn.spiking.GRADIENT_ESTIMATORS``:
      ``"surrogate"`` (BPTT with ``surrogate``, what training uses) or ``"bptr"``, ``"rga"``,
      ``"hart"``, ``"assg"``, ``"pdsg"`` for attacks. The forward pass does not depend on it.
    remat: recompute each neuron's time loop in the backward pass instead of storing it. Off by
      default: with the loop unrolled, storing is both faster and smaller on CPU (WRN16 AT at
      batch 64: 7.7 GiB of XLA temporaries against 8.9 GiB with remat; benchmarks/results).
  """
  kind: str = "dlif"
  time_steps: int = 8
  dlif_placement: str = "input"
  leak: float = 0.99
  threshold: float = 1.0
  surrogate: str = "triangle"
  surrogate_width: float | None = 1.0
  gradient_estimator: str = "surrogate"
  remat: bool = False

  def __post_init__(self):
    if self.kind not in NEURONS:
      raise ValueError(f"unknown neuron {self.kind!r}; expected one of {NEURONS}")
    if (not isinstance(self.time_steps, int) or isinstance(self.time_steps, bool)
        or self.time_steps < 1):
      raise ValueError(f"time_steps must be an integer >= 1, got {self.time_steps!r}")
    if self.dlif_placement not in DLIF_PLACEMENTS:
      raise ValueError(f"unknown dlif_placement {self.dlif_placement!r}; expected one of "
                       f"{DLIF_PLACEMENTS}")
    if not _is_number(self.leak) or not 0.0 < self.leak <= 1.0:
      raise ValueError(f"leak λ must be in (0, 1], got {self.leak!r}")
    if not _is_number(self.threshold) or not self.threshold > 0.0:
      raise ValueError(f"threshold u_th must be > 0, got {self.threshold!r}")
    if self.surrogate not in SURROGATES:
      raise ValueError(f"unknown surrogate {self.surrogate!r}; expected one of "
                       f"{sorted(SURROGATES)}")
    if self.surrogate_width is not None and (not _is_number(self.surrogate_width)
                                             or not self.surrogate_width > 0.0):
      raise ValueError(f"surrogate_width must be > 0, or None for the surrogate's default, got "
                       f"{self.surrogate_width!r}")
    check_estimator(self.gradient_estimator)
    if not isinstance(self.remat, bool):
      # A ValueError like the others: a bad config value, which the CLI reports in one line.
      raise ValueError(f"remat must be True or False, got {self.remat!r}")  # noqa: TRY004

  def surrogate_fn(self) -> Callable:
    """The surrogate derivative object of ``jsnn.spiking.surrogate`` (hashable, static).

    The one place where a name and a width become a surrogate: ``surrogate_width`` is passed as
    ``alpha`` to the sigmoid and arctan and as ``width`` to the others; None leaves the
    surrogate's default.
    """
    if self.surrogate_width is None or self.surrogate in _WIDTHLESS_SURROGATES:
      return get_surrogate(self.surrogate)
    key = "alpha" if self.surrogate in _SHARPNESS_SURROGATES else "width"
    return get_surrogate(self.surrogate, **{key: self.surrogate_width})


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)
