"""A real two-process run: two processes on this machine joined by ``jax.distributed``.

Each process has two CPU devices, so the global mesh has four, as in the single-process
four-device run it must equal: the same training steps (parameters and batch statistics), the same
per-epoch clean evaluation, and checkpoints that restore in one process.
"""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from jsnn import parallel, workdir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RUN = """
import sys
sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
import jax
from jsnn import trainer
from test_trainer import tiny_config
config = tiny_config(mode="at")
config.distributed = {distributed!r}
summary = trainer.train_and_evaluate(config, {workdir!r})
assert jax.device_count() == 4, jax.devices()
print("PROCESSES", jax.process_count(), "DEVICES", jax.device_count(), "LOCAL",
      jax.local_device_count())
"""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env(devices: int, **extra) -> dict:
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
  env.update(JAX_PLATFORMS="cpu", JAX_DISABLE_MOST_OPTIMIZATIONS="1",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **extra)
  return env


def _code(workdir: str, distributed: bool) -> str:
  return RUN.format(root=ROOT, tests=os.path.join(ROOT, "tests"), workdir=workdir,
                    distributed=distributed)


def _metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  base = tmp_path_factory.mktemp("multiprocess")
  single, multi = str(base / "single"), str(base / "multi")
  reference = subprocess.run([sys.executable, "-c", _code(single, False)], env=_env(4),
                             capture_output=True, text=True, timeout=600)
  assert reference.returncode == 0, reference.stderr[-3000:]
  address = f"127.0.0.1:{_free_port()}"
  procs = [subprocess.Popen(
      [sys.executable, "-c", _code(multi, True)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True, env=_env(2, JAX_COORDINATOR_ADDRESS=address, JAX_NUM_PROCESSES="2",
                          JAX_PROCESS_ID=str(i)))
      for i in range(2)]
  outs = []
  for p in procs:
    try:
      outs.append(p.communicate(timeout=600))
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      raise
  for p, (stdout, stderr) in zip(procs, outs):
    assert p.returncode == 0, stderr[-3000:]
    assert "PROCESSES 2 DEVICES 4 LOCAL 2" in stdout, stdout
  return single, multi


def test_two_processes_train_and_evaluate_as_one_process_on_four_devices(runs):
  single, multi = runs
  a, b = _metrics(single), _metrics(multi)
  assert [m["step"] for m in a] == [m["step"] for m in b] == [2]
  for key in ("loss", "ce_clean", "ms_mppd", "test_accuracy"):
    np.testing.assert_allclose(a[0][key], b[0][key], rtol=2e-4, atol=2e-5, err_msg=key)


def test_the_two_process_checkpoint_restores_in_one_process(runs):
  single, multi = runs
  assert jax.process_count() == 1
  restored = [jax.device_get(workdir.restore_model(w, "latest")[2]) for w in runs]
  for x, y in zip(jax.tree_util.tree_leaves(restored[0]), jax.tree_util.tree_leaves(restored[1])):
    np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-5)


def test_distributed_without_a_coordinator_is_a_one_line_error(tmp_path):
  out = subprocess.run(
      [sys.executable, os.path.join(ROOT, "train.py"), "--config",
       os.path.join(ROOT, "configs", "smoke.py"), "--workdir", str(tmp_path / "w"),
       "--config.distributed=True"], env=_env(1), capture_output=True, text=True, timeout=300)
  assert out.returncode == 2, out.stderr[-2000:]
  assert out.stderr.startswith("error: ") and "JAX_COORDINATOR_ADDRESS" in out.stderr
  assert "Traceback" not in out.stderr and not (tmp_path / "w").exists()


def test_a_bad_process_count_is_named(monkeypatch):
  monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
  monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "localhost:1234")
  monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
  with pytest.raises(parallel.DistributedSetupError, match="JAX_NUM_PROCESSES='two'"):
    parallel.maybe_initialize_distributed(False)
