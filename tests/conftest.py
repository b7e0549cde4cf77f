"""Test settings: CPU only, strict shape/dtype promotion, seeded keys."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tests must not grab all the host's memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jsnn  # noqa: E402,F401  (sets the XLA:CPU flags before jax initialises)
import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
# Fast compiles: unit tests check values, not speed.
jax.config.update("jax_disable_most_optimizations", True)

DATA_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


@pytest.fixture
def key():
  return jax.random.key(0)


@pytest.fixture
def cifar10_dir():
  path = os.path.join(DATA_DIR, "cifar10")
  if not os.path.exists(os.path.join(path, "test.npz")):
    pytest.skip(f"real CIFAR-10 not found at {path} (see ../shared/data/README.md)")
  return path


@pytest.fixture
def cifar10_mini_path():
  path = os.path.join(DATA_DIR, "cifar10-mini", "cifar10_mini.npz")
  if not os.path.exists(path):
    pytest.skip(f"CIFAR-10 mini subset not found at {path} (see ../shared/data/README.md)")
  return path
