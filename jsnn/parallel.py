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

from jsnn import errors

DATA_AXIS = "data"


class DistributedSetupError(errors.Error, ValueError):
  """A multi-process run was asked for, but where its processes meet is not known."""


# What a multi-process run outside SLURM, Open MPI or a TPU pod needs to be told.
DISTRIBUTED_ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def maybe_initialize_distributed(enabled: bool = False) -> None:
  """Starts ``jax.distributed`` for multi-process runs (TPU pods, multi-node GPU, CPU hosts).

  Runs when ``enabled`` (``--config.distributed=True``) or when ``JAX_COORDINATOR_ADDRESS`` is set.
  On TPU pods and SLURM/Open MPI clusters ``jax.distributed.initialize()`` discovers the
  coordinator itself; elsewhere set ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0),
  ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``.

  Raises:
    DistributedSetupError: no coordinator could be found, or a setting is not an integer.
  """
  if jax.distributed.is_initialized():
    return
  if not (enabled or os.environ.get("JAX_COORDINATOR_ADDRESS")):
    return
  kwargs = {}
  for name, key in (("JAX_NUM_PROCESSES", "num_processes"), ("JAX_PROCESS_ID", "process_id")):
    value = os.environ.get(name)
    if value is not None:
      try:
        kwargs[key] = int(value)
      except ValueError:
        raise DistributedSetupError(f"{name}={value!r} is not an integer") from None
  try:
    jax.distributed.initialize(**kwargs)
  except (ValueError, RuntimeError) as e:
    missing = [n for n in DISTRIBUTED_ENV if not os.environ.get(n)]
    raise DistributedSetupError(
        f"a multi-process run (--config.distributed=True or JAX_COORDINATOR_ADDRESS) could not "
        f"start: {e}"
        + (f"; {', '.join(missing)} not set" if missing else "")
        + ". Outside SLURM, Open MPI or a TPU pod, set JAX_COORDINATOR_ADDRESS=host:port (process "
          "0's), JAX_NUM_PROCESSES and JAX_PROCESS_ID in every process") from None


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
