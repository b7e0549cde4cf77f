"""XLA:CPU settings that decide convolution speed on the CPU.

In jaxlib 0.10.x, XLA:CPU routes every standalone convolution through YNNPACK by default, whose
backward convolutions run 1.5-3.4x slower than XLA's own (Eigen) convolution on the shapes of
VGG11/WRN16 (measured in ../shared/perf-baseline.md, "What makes JAX fast on this CPU"). Removing
``individual_convolution`` from the YNN fusion list while keeping ``individual_dot`` brings a VGG11
training step to parity with the PyTorch/oneDNN reference.

XLA reads ``XLA_FLAGS`` when the backend is first initialised, so this must run before the first
computation. ``import jsnn`` does it; a user who already set the flag keeps their own value, and
``JSNN_KEEP_YNN_CONV=1`` opts out. The flag is only added for jaxlib versions known to accept it,
because an unknown XLA flag aborts the process.
"""

import os

YNN_CONV_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
_KNOWN_JAXLIB_PREFIXES = ("0.10.",)


def configure_cpu_flags() -> bool:
  """Adds the YNN-convolution opt-out to ``XLA_FLAGS``; returns True when it is in effect."""
  if os.environ.get("JSNN_KEEP_YNN_CONV") == "1":
    return False
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_cpu_experimental_ynn_fusion_type" in flags:
    return YNN_CONV_FLAG in flags
  try:
    from importlib.metadata import version
    jaxlib_version = version("jaxlib")
  except Exception:  # pragma: no cover - jaxlib always has metadata when installed by pip
    return False
  if not jaxlib_version.startswith(_KNOWN_JAXLIB_PREFIXES):
    return False
  os.environ["XLA_FLAGS"] = (flags + " " + YNN_CONV_FLAG).strip()
  return True
