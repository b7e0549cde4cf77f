"""Data parallelism over every device with ``jax.sharding``: one code path from a CPU to a pod.

A 1-D mesh over all global devices with axis ``"data"``: batches are sharded along it, parameters
and optimiser state are replicated. Under ``jit`` the BatchNorm means over the batch are then
computed over the *global* batch (XLA inserts the all-reduce), as on one device.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def maybe_initialize_distributed(enabled: bool = False) -> None:
  """Starts ``jax.distributed`` for multi-host runs (TPU pods, multi-node GPU).

  On TPU pods and SLURM/Open MPI clusters ``jax.distributed.initialize()`` discovers the coordinator
  itself; elsewhere set ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``.
  """
  if enabled or os.environ.get("JAX_COORDINATOR_ADDRESS"):
    jax.distributed.initialize()


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over the data axis."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
  n = mesh.devices.size
  if batch_size % n:
    raise ValueError(f"batch size {batch_size} is not divisible by the {n} devices; use a multiple "
                     f"of {n} (e.g. --config.training.batch_size={max(n, batch_size // n * n)})")


def put_replicated(array: np.ndarray, mesh: Mesh) -> jax.Array:
  """Places a host array that every process holds in full on every device (multi-host safe)."""
  sharding = replicated(mesh)
  return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def put_batch(array: np.ndarray, mesh: Mesh) -> jax.Array:
  """Places a global batch that every process holds in full, sharded over the data axis."""
  sharding = batch_sharding(mesh)
  return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])
