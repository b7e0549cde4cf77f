"""Checks that hold for every setting of a config, whatever its section (no JAX import)."""

from __future__ import annotations

import math
from typing import Any, Mapping

from jsnn.config_diff import flatten


def check_finite(config: Mapping[str, Any], prefix: str = "") -> None:
  """Raises ValueError naming every float setting of ``config`` that is NaN or infinite.

  No setting of jsnn means anything at NaN or infinity, and some would pass the range checks and
  fail only after an epoch of training (a NaN learning rate is not <= 0).

  Args:
    config: a config as a dict (``ConfigDict.to_dict()``), or one section of it.
    prefix: the section's dotted name with a trailing dot (``"eval."``), for the message.
  """
  bad = {}
  for key, value in flatten(config).items():
    values = value if isinstance(value, (list, tuple)) else [value]
    if any(isinstance(v, float) and not math.isfinite(v) for v in values):
      bad[f"{prefix}{key}"] = value
  if bad:
    shown = ", ".join(f"{k} = {v!r}" for k, v in bad.items())
    raise ValueError(f"{shown}: a setting must be a finite number; set "
                     f"{'it' if len(bad) == 1 else 'each'} to one, e.g. "
                     f"--config.{next(iter(bad))}=<number>")
