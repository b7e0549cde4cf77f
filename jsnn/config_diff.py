"""Which differences between a run's saved config and the current one change the trained model.

No JAX import: the experiment drivers decide from files alone whether a run is done.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

# Keys that may differ between a run and its resumption without changing its result
# (``model.remat`` trades memory for time; the values are the same either way).
RESUME_IGNORED_KEYS = ("allow_config_mismatch", "logging", "eval", "data.dir", "data.tfds_data_dir",
                       "data.download", "distributed", "model.remat")


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  """``{"a": {"b": 1}}`` → ``{"a.b": 1}``."""
  out = {}
  for k, v in d.items():
    key = f"{prefix}{k}"
    if isinstance(v, Mapping):
      out.update(flatten(v, key + "."))
    else:
      out[key] = v
  return out


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any],
                       defaults: Optional[Mapping[str, Any]] = None) -> list[str]:
  """Dotted keys whose values differ, leaving out those that cannot change the trained model.

  Both sides are compared as JSON stores them (tuples as lists). Keys under
  :data:`RESUME_IGNORED_KEYS` are left out. A key the saved config lacks was added by a newer jsnn
  after the run was trained, with a default that keeps the older behaviour: with ``defaults``
  (a config like ``configs/default.py``'s, as a dict) it differs only if the current value is not
  that default; without, it is left out.
  """
  a, b = (flatten(json.loads(json.dumps(d))) for d in (saved, current))
  base = flatten(json.loads(json.dumps(defaults))) if defaults is not None else None
  ignored = lambda k: any(k == p or k.startswith(p + ".") for p in RESUME_IGNORED_KEYS)

  def differs(k):
    if k in a:
      return a[k] != b.get(k)
    return base is not None and (k not in base or base[k] != b.get(k))

  return sorted(k for k in set(a) | set(b) if not ignored(k) and differs(k))
