"""The XLA:CPU flag that keeps convolutions off YNNPACK is in effect (jsnn/_xla.py)."""

import subprocess
import sys

import pytest

CODE = """
import jsnn, jax, jax.numpy as jnp
x = jnp.ones((8, 16, 16, 64)); k = jnp.ones((3, 3, 64, 64))
f = jax.jit(lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME',
            dimension_numbers=('NHWC', 'HWIO', 'NHWC')))
print('YNN' if '__ynn_fusion' in f.lower(x, k).compile().as_text() else 'NO_YNN')
"""


def _run(env_extra):
  import os
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env.update(env_extra, JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True,
                       timeout=120, check=True)
  return out.stdout.strip().splitlines()[-1]


def test_convolutions_do_not_go_through_ynnpack():
  import jax
  if not jax.__version__.startswith("0.10."):
    pytest.skip(f"the flag is only set for jaxlib 0.10.x, this is {jax.__version__}")
  assert _run({}) == "NO_YNN"
  # The check can fail: without the flag this jaxlib does use YNNPACK for the same conv.
  assert _run({"JSNN_KEEP_YNN_CONV": "1"}) == "YNN"
