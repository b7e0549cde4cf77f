"""XLA:CPU settings that decide convolution speed on the CPU, set only where jaxlib accepts them.

In jaxlib 0.10.x, XLA:CPU routes every standalone convolution through YNNPACK by default, whose
backward convolutions run 1.5-3.4x slower than XLA's own (Eigen) convolution on the shapes of
VGG11/WRN16 (../shared/perf-baseline.md, "What makes JAX fast on this CPU"). Removing
``individual_convolution`` from the YNN fusion list while keeping ``individual_dot`` brings a VGG11
training step to parity with the PyTorch/oneDNN reference.

XLA reads ``XLA_FLAGS`` when the backend is first initialised, so this must run before the first
computation; ``import jsnn`` does it. XLA aborts the process on a flag it does not know, so the
flag is added only where the installed jaxlib is known to accept it: jaxlib 0.10.x, measured, or
another version that a one-off probe (a subprocess that starts XLA:CPU with the flag) accepted;
the probe's answer is cached per jaxlib version. A jaxlib that rejects it gets a warning, once,
and runs without it. The flag only concerns XLA:CPU: with ``JAX_PLATFORMS`` naming no ``cpu``
(a GPU or TPU run) it is not set at all. A user who set the flag keeps their value;
``JSNN_KEEP_YNN_CONV=1`` opts out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from typing import Callable, Optional

YNN_CONV_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
FLAG_NAME = "xla_cpu_experimental_ynn_fusion_type"
# jaxlib releases whose XLA:CPU was measured with the flag (benchmarks/results).
KNOWN_JAXLIB_PREFIXES = ("0.10.",)
PROBE_CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                           "jsnn", "xla_flags.json")
_PROBE_CODE = "import jax, jax.numpy as jnp; jnp.zeros(2).block_until_ready()"


def installed_jaxlib() -> Optional[str]:
  """The installed jaxlib's version, or None."""
  try:
    from importlib.metadata import version
    return version("jaxlib")
  except Exception:  # noqa: BLE001  (no jaxlib metadata: no flag)
    return None


def probe_flag(flag: str = YNN_CONV_FLAG, timeout: float = 120.0) -> bool:
  """Whether XLA:CPU starts with ``flag``: runs a tiny computation in a subprocess."""
  env = {**os.environ, "XLA_FLAGS": flag, "JAX_PLATFORMS": "cpu", "JSNN_KEEP_YNN_CONV": "1"}
  try:
    done = subprocess.run([sys.executable, "-c", _PROBE_CODE], env=env, capture_output=True,
                          timeout=timeout)
  except (OSError, subprocess.SubprocessError):
    return False
  return done.returncode == 0


def _cached_probe(jaxlib_version: str, probe: Callable[[], bool]) -> bool:
  try:
    with open(PROBE_CACHE) as f:
      cache = json.load(f)
  except (OSError, ValueError):
    cache = {}
  if not isinstance(cache, dict):
    cache = {}
  if jaxlib_version not in cache:
    cache[jaxlib_version] = bool(probe())
    try:
      os.makedirs(os.path.dirname(PROBE_CACHE), exist_ok=True)
      tmp = f"{PROBE_CACHE}.{os.getpid()}.tmp"
      with open(tmp, "w") as f:
        json.dump(cache, f)
      os.replace(tmp, PROBE_CACHE)
    except OSError:
      pass   # an unwritable cache only means probing again next time
  return cache[jaxlib_version]


def flag_accepted(jaxlib_version: Optional[str], probe: Callable[[], bool] = probe_flag) -> bool:
  """Whether ``jaxlib_version`` accepts the flag: known versions without a probe, others by one."""
  if not jaxlib_version:
    return False
  if jaxlib_version.startswith(KNOWN_JAXLIB_PREFIXES):
    return True
  return _cached_probe(jaxlib_version, probe)


def cpu_in_platforms(platforms: Optional[str]) -> bool:
  """Whether ``JAX_PLATFORMS`` (unset or empty: every platform) may pick XLA:CPU."""
  if not platforms:
    return True
  return "cpu" in [p.strip().lower() for p in platforms.split(",")]


def configure_cpu_flags(*, jaxlib_version: Optional[str] = None,
                        probe: Callable[[], bool] = probe_flag) -> bool:
  """Adds the YNN-convolution opt-out to ``XLA_FLAGS`` where accepted; True when in effect.

  Args:
    jaxlib_version: the jaxlib to decide for (default: the installed one).
    probe: how to ask an unknown jaxlib (default :func:`probe_flag`).
  """
  if os.environ.get("JSNN_KEEP_YNN_CONV") == "1":
    return False
  flags = os.environ.get("XLA_FLAGS", "")
  if FLAG_NAME in flags:
    return YNN_CONV_FLAG in flags
  if not cpu_in_platforms(os.environ.get("JAX_PLATFORMS")):
    return False
  version = jaxlib_version or installed_jaxlib()
  if not flag_accepted(version, probe):
    if version:
      warnings.warn(f"jaxlib {version} does not accept {YNN_CONV_FLAG}: jsnn runs without it "
                    f"(convolution gradients on the CPU may be slower)", RuntimeWarning,
                    stacklevel=2)
    return False
  os.environ["XLA_FLAGS"] = (flags + " " + YNN_CONV_FLAG).strip()
  return True
