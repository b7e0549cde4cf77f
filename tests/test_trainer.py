"""train_and_evaluate end to end: smoke run, resume equality, refusals, NaN stop, devices."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from jsnn import checkpointing, data, trainer, workdir
import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(**training):
  return helpers.tiny_train_config(**training)


def _params(summary):
  return jax.tree_util.tree_leaves(jax.device_get(summary["state"].params))


def test_smoke_run_writes_metrics_config_and_checkpoints(tmp_path, capsys):
  summary = trainer.train_and_evaluate(tiny_config(epochs=1), str(tmp_path))
  assert summary["total_steps"] == 2 and int(summary["state"].step) == 2
  assert summary["step_compilations"] == 1
  assert 0.0 <= summary["test_accuracy"] <= 1.0
  line = capsys.readouterr().out
  for field in ("epoch   1/1", "lr", "train acc", "CE", "MS-MPPD", "test acc", "img/s"):
    assert field in line
  records = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert records[-1]["step"] == 2 and "ms_mppd" in records[-1]
  saved = json.load(open(tmp_path / "config.json"))
  assert saved["training"]["weight_decay"] == 5e-4     # AUTO resolved
  assert os.listdir(tmp_path / "tensorboard")
  ckpt = checkpointing.Checkpoints(str(tmp_path), read_only=True)
  assert ckpt.latest_step("latest") == 2 and ckpt.latest_step("best") == 2
  assert ckpt.read_meta("best")["config"]["model"]["name"] == "vgg5"
  ckpt.close()
  # The saved checkpoint rebuilds the model on its own.
  _, model, variables, meta = workdir.restore_model(str(tmp_path))
  assert meta["step"] == 2 and model.neuron.time_steps == 2
  np.testing.assert_array_equal(jax.tree_util.tree_leaves(variables["params"])[0],
                                _params(summary)[0])


def test_a_checkpoint_of_the_older_single_item_layout_still_restores(tmp_path):
  """Checkpoints written before the variables became their own item hold one ``state`` item."""
  import orbax.checkpoint as ocp   # pylint: disable=import-outside-toplevel
  new_dir, old_dir = tmp_path / "new", tmp_path / "old"
  summary = trainer.train_and_evaluate(tiny_config(epochs=1), str(new_dir))
  state = jax.device_get(summary["state"])
  ckpt = checkpointing.Checkpoints(str(new_dir), read_only=True)
  meta = ckpt.read_meta("latest")
  abstract = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                                    summary["state"])
  ckpt.close()
  os.makedirs(old_dir)
  os.rename(new_dir / "config.json", old_dir / "config.json")
  with ocp.CheckpointManager(str(old_dir / "checkpoints" / "best")) as manager:
    manager.save(2, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                            meta=ocp.args.JsonSave(meta)))
  _, _, variables, restored_meta = workdir.restore_model(str(old_dir))
  assert restored_meta["step"] == 2
  for got, want in zip(jax.tree_util.tree_leaves(variables),
                       jax.tree_util.tree_leaves({"params": state.params,
                                                  "batch_stats": state.batch_stats})):
    np.testing.assert_array_equal(got, want)
  ckpt = checkpointing.Checkpoints(str(old_dir), read_only=True)
  restored, _ = ckpt.restore("best", abstract)
  ckpt.close()
  for got, want in zip(jax.tree_util.tree_leaves(restored), jax.tree_util.tree_leaves(state)):
    np.testing.assert_array_equal(got, want)


def test_at_reg_resolves_zero_weight_decay_and_paper_beta():
  config = tiny_config(mode="at_reg")
  config.model.name, config.data.name = "vgg11", "cifar10"
  resolved = workdir.resolve_config(config)
  assert resolved.training.weight_decay == 0.0 and resolved.training.rat_beta == 5e-4
  config.model.name = "wrn16"
  assert workdir.resolve_config(config).training.rat_beta == 4e-3


def test_resume_in_a_new_process_equals_an_uninterrupted_run(tmp_path):
  config = tiny_config(epochs=2)
  straight = trainer.train_and_evaluate(config, str(tmp_path / "straight"))
  trainer.train_and_evaluate(config, str(tmp_path / "resumed"), stop_after_epoch=1)
  script = textwrap.dedent(f"""
      import sys; sys.path.insert(0, {ROOT!r}); sys.path.insert(0, {os.path.join(ROOT, 'tests')!r})
      from test_trainer import tiny_config
      from jsnn import trainer
      s = trainer.train_and_evaluate(tiny_config(epochs=2), {str(tmp_path / 'resumed')!r})
      assert s["start_step"] == 2, s["start_step"]
  """)
  # Same compiler settings as this process (conftest disables most XLA optimisations).
  env = dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="1", JAX_PLATFORMS="cpu")
  subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
  _, _, resumed, meta = workdir.restore_model(str(tmp_path / "resumed"), "latest")
  assert meta["step"] == 4
  for a, b in zip(jax.tree_util.tree_leaves(resumed["params"]), _params(straight)):
    np.testing.assert_array_equal(a, b)


def test_a_workdir_of_another_config_is_refused(tmp_path):
  trainer.train_and_evaluate(tiny_config(epochs=1), str(tmp_path))
  before = sorted(os.listdir(tmp_path / "checkpoints" / "latest"))
  with pytest.raises(workdir.ConfigMismatch,
                     match=r"training.rho: 1.0 → 0.5.*allow_config_mismatch"):
    trainer.train_and_evaluate(tiny_config(epochs=1, rho=0.5), str(tmp_path))
  assert sorted(os.listdir(tmp_path / "checkpoints" / "latest")) == before


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
  trainer.train_and_evaluate(tiny_config(epochs=2, mode="natural"), str(tmp_path),
                             stop_after_epoch=1)
  bad = tiny_config(epochs=2, mode="natural", learning_rate=1e30)
  bad.allow_config_mismatch = True
  with pytest.raises(trainer.TrainingDiverged, match=r"between steps 2 and 4.*step 2") as info:
    trainer.train_and_evaluate(bad, str(tmp_path))
  assert "--config.training.learning_rate (now 1e+30)" in str(info.value)
  ckpt = checkpointing.Checkpoints(str(tmp_path), read_only=True)
  assert ckpt.latest_step("latest") == 2
  ckpt.close()
  _, _, variables, _ = workdir.restore_model(str(tmp_path), "latest")
  assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(variables))


def test_a_run_that_diverges_before_its_first_checkpoint_says_so(tmp_path):
  config = tiny_config(epochs=1, mode="natural", learning_rate=1e30)
  with pytest.raises(trainer.TrainingDiverged) as info:
    trainer.train_and_evaluate(config, str(tmp_path))
  message = str(info.value)
  assert "before any checkpoint was written" in message and "step None" not in message
  assert "--config.training.learning_rate (now 1e+30)" in message


@pytest.mark.parametrize("override,match", [
    ({"learning_rate": float("nan")}, r"training.learning_rate = nan"),
    ({"gaussian_std": float("inf")}, r"training.gaussian_std = inf"),
    ({"mode": "adversarial"}, "'adversarial'"),
    ({"rho": -1.0}, "rho"),
    ({"chi": 2.0}, "chi"),
    ({"epochs": 0}, "epochs"),
    ({"select_on": "validation"}, "validation_size"),
])
def test_bad_training_config_is_refused_before_any_work(tmp_path, override, match):
  with pytest.raises(ValueError, match=match):
    trainer.train_and_evaluate(tiny_config(**override), str(tmp_path / "w"))
  assert not os.path.exists(tmp_path / "w" / "checkpoints")


@pytest.mark.parametrize("key,value", [("encoding", "rate"), ("neuron", "izhikevich")])
def test_bad_model_config_is_refused_before_the_workdir_exists(tmp_path, key, value):
  config = tiny_config()
  config.model[key] = value
  with pytest.raises(ValueError, match=f"'{value}'"):
    trainer.train_and_evaluate(config, str(tmp_path / "w"))
  assert not os.path.exists(tmp_path / "w")


def test_missing_data_says_how_to_get_it(tmp_path):
  config = tiny_config()
  config.data.name = "cifar10"
  config.data.tfds_data_dir = str(tmp_path / "empty")
  with pytest.raises(data.DataUnavailableError, match="--config.data.dir"):
    trainer.train_and_evaluate(config, str(tmp_path / "w"))


MULTI_DEVICE = """
import jax, jax.numpy as jnp, numpy as np, functools, sys
sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
from jax.sharding import Mesh
from jsnn import models, parallel, train_state, train_step, workdir
from test_trainer import tiny_config
assert jax.device_count() == 4, jax.devices()
config = workdir.resolve_config(tiny_config(mode="at"))
model = workdir.model_from_config(config, 10)
tx, schedule = train_step.make_optimizer(learning_rate=0.1, epochs=1, steps_per_epoch=2)
settings = workdir.step_settings(config)
images = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
labels = np.arange(64, dtype=np.int32) % 10
results = []
for devices in (jax.devices()[:1], jax.devices()):
  mesh = Mesh(np.asarray(devices), (parallel.DATA_AXIS,))
  init = jax.jit(functools.partial(train_state.create_train_state, model, tx),
                 out_shardings=parallel.replicated(mesh))
  state = init(jax.random.key(0))
  step = jax.jit(functools.partial(train_step.train_step, model=model, tx=tx, schedule=schedule,
                                   settings=settings, batch_sharding=parallel.batch_sharding(mesh)),
                 out_shardings=parallel.replicated(mesh))
  x, y = parallel.put_replicated(images, mesh), parallel.put_replicated(labels, mesh)
  for _ in range(2):
    state, metrics = step(state, x, y)
  results.append(jax.device_get((state.params, state.batch_stats, metrics["loss"])))
for a, b in zip(jax.tree_util.tree_leaves(results[0]), jax.tree_util.tree_leaves(results[1])):
  np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
try:
  parallel.check_batch_size(6, mesh)
except ValueError as e:
  assert "6 is not divisible by the 4 devices" in str(e), e
else:
  raise AssertionError("batch 6 on 4 devices accepted")
print("OK")
"""


def test_four_devices_give_the_single_device_step(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_DISABLE_MOST_OPTIMIZATIONS="1",
             XLA_FLAGS="--xla_force_host_platform_device_count=4")
  code = MULTI_DEVICE.format(root=ROOT, tests=os.path.join(ROOT, "tests"))
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


def test_a_partial_save_left_by_a_kill_is_ignored(tmp_path):
  """Orbax writes to a temporary directory, renamed when complete (jsnn/checkpointing.py)."""
  config = tiny_config(epochs=2)
  trainer.train_and_evaluate(config, str(tmp_path), stop_after_epoch=1)
  partial = tmp_path / "checkpoints" / "latest" / "4.orbax-checkpoint-tmp-1234"
  (partial / "state").mkdir(parents=True)
  (partial / "state" / "garbage").write_bytes(b"\x00" * 10)
  _, _, _, meta = workdir.restore_model(str(tmp_path), "latest")
  assert meta["step"] == 2
  summary = trainer.train_and_evaluate(config, str(tmp_path))
  assert summary["start_step"] == 2 and int(summary["state"].step) == 4


@pytest.mark.slow
def test_reduced_cpu_config_learns_real_cifar10(tmp_path, cifar10_mini_path):
  """Two epochs of configs/cifar10_cpu.py:natural on CIFAR-10-mini beat chance (10 %) clearly."""
  from configs import cifar10_cpu
  config = cifar10_cpu.get_config("natural")
  config.data.dir = cifar10_mini_path
  config.training.epochs = 2
  config.logging.progress_bar = False
  summary = trainer.train_and_evaluate(config, str(tmp_path))
  assert summary["test_accuracy"] > 0.2, summary["test_accuracy"]
