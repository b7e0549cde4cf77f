"""jsnn: adversarially robust spiking neural networks in JAX/Flax.

Reimplements "Robust Stable Spiking Neural Networks" (Ding et al., ICML 2024): LIF/DLIF neurons
with surrogate gradients, membrane-potential perturbation dynamics (MPPD) and the MS-MPPD
regulariser, SNN VGG/WRN models, adversarial training and a robustness evaluation suite.

Submodules are imported lazily: ``jsnn.spiking``, ``jsnn.perturbation`` and ``jsnn.attacks`` are
pure JAX; ``jsnn.models`` holds the Flax models.
"""

from jsnn import _xla

_xla.configure_cpu_flags()

import importlib as _importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "spiking", "perturbation", "losses", "models", "attacks", "data", "parallel", "train_state",
    "train_step", "trainer", "evaluation", "checkpointing", "rat",
)


def __getattr__(name):
  if name in _SUBMODULES:
    return _importlib.import_module(f"jsnn.{name}")
  raise AttributeError(f"module 'jsnn' has no attribute {name!r}")
