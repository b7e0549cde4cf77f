"""What a benchmark needs to know about the machine it ran on, so figures compare across machines.

``cpu_model()`` names the processor (the project's machines change from session to session) and
``matmul_gflops()`` measures the fp32 matmul throughput that JAX reaches on it in the calling
process: a step's FLOP/s divided by it is the fraction of the machine the step uses.
"""

from __future__ import annotations

import os
import platform
import time


def cpu_model() -> str:
  """The CPU's model name from /proc/cpuinfo (or platform), with the number of usable cores."""
  name = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          name = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  return f"{name} ({len(os.sched_getaffinity(0))} cores)"


def matmul_gflops(size: int = 4096, repeats: int = 3) -> float:
  """Best fp32 ``size``² matmul throughput of the default JAX device, in GFLOP/s."""
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  jax.block_until_ready(matmul(a, b))
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(matmul(a, b))
    best = min(best, time.perf_counter() - start)
  return 2 * size**3 / best / 1e9


def compiled_flops(compiled) -> float:
  """FLOPs of one call of a compiled JAX function, from XLA's cost analysis (0 if unknown)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  return float((analysis or {}).get("flops", 0.0))
