"""Models: parameter counts from the layer lists, shapes, capture, jit/grad, no retrace."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jsnn import models


def _conv(cin, cout, k=3, bias=True):
  return cin * cout * k * k + (cout if bias else 0)


def _dense(cin, cout):
  return cin * cout + cout


def _vgg_count(convs, flat, classes, t=8):
  bn = lambda c: 2 * c
  n = sum(_conv(a, b) + bn(b) for a, b in convs)
  n += _dense(flat, 4096) + _dense(4096, 4096) + _dense(4096, classes)
  return n + (len(convs) + 2) * t     # one DLIF factor per spiking layer and time step


def _wrn16_count(classes, t=8):
  n = _conv(3, 16, bias=False)
  spiking_layers = 0
  for cin, cout in [(16, 64), (64, 128), (128, 256)]:
    # First block: BN_in, conv3x3, BN_out, conv3x3, 1x1 shortcut, 2 convex weights.
    n += 2 * cin + _conv(cin, cout, bias=False) + 2 * cout + _conv(cout, cout, bias=False)
    n += _conv(cin, cout, 1, bias=False) + 2
    # Second block: BN, conv3x3, BN, conv3x3, 2 convex weights.
    n += 2 * cout + _conv(cout, cout, bias=False) + 2 * cout + _conv(cout, cout, bias=False) + 2
    spiking_layers += 4
  n += 2 * 256 + _dense(256, classes)
  return n + (spiking_layers + 1) * t


@pytest.mark.parametrize("name,expected", [
    ("vgg11", _vgg_count([(3, 64), (64, 128), (128, 256), (256, 512), (512, 512), (512, 512),
                          (512, 512), (512, 512)], 512 * 4 * 4, 10)),
    ("vgg5", _vgg_count([(3, 64), (64, 128), (128, 128)], 128 * 8 * 8, 10)),
    ("wrn16", _wrn16_count(10)),
])
def test_parameter_counts_equal_the_reference_architecture(name, expected):
  model = models.create_model(name, num_classes=10)
  shapes = jax.eval_shape(lambda: models.init_model(model, jax.random.key(0)))
  assert models.count_params(shapes["params"]) == expected
  if name == "vgg11":
    assert expected == 61_377_114     # as counted on the reference PyTorch model
  if name == "wrn16":
    assert expected == 2_749_006


def test_lif_models_have_no_dlif_factors():
  model = models.create_model("vgg11", num_classes=100, neuron=models.NeuronSpec(kind="lif"))
  shapes = jax.eval_shape(lambda: models.init_model(model, jax.random.key(0)))
  assert models.count_params(shapes["params"]) == _vgg_count(
      [(3, 64), (64, 128), (128, 256), (256, 512), (512, 512), (512, 512), (512, 512),
       (512, 512)], 8192, 100, t=0)


def _tiny(name, time_steps=3, dlif_placement="input", **kw):
  kw = {"width": 0.125, "head_width": 16, **kw}
  if name == "wrn16":
    kw.pop("head_width")
  neuron = models.NeuronSpec(time_steps=time_steps, dlif_placement=dlif_placement)
  return models.create_model(name, num_classes=10, neuron=neuron, **kw)


@pytest.mark.parametrize("name", ["vgg5", "vgg11", "wrn16"])
def test_forward_shapes_and_captures(name, key):
  model = _tiny(name)
  variables = models.init_model(model, key)
  x = jax.random.uniform(key, (2, 32, 32, 3))
  logits, stats, captured = models.apply_model(
      model, variables, x, train=True, capture=[models.LAST_SPIKING_LAYER, models.SPIKES])
  assert logits.shape == (2, 10) and logits.dtype == jnp.float32
  last = captured[models.LAST_SPIKING_LAYER]
  expected_last = (3, 2, 16) if name.startswith("vgg") else (3, 2, 8, 8, 32)
  assert last["currents"].shape == expected_last == last["spikes"].shape
  n_spiking = {"vgg5": 5, "vgg11": 10, "wrn16": 13}[name]
  assert len(captured[models.SPIKES]) == n_spiking
  np.testing.assert_array_equal(captured[models.SPIKES][-1], last["spikes"])
  assert set(np.unique(np.asarray(last["spikes"]))) <= {0.0, 1.0}
  # Train mode updates the running statistics; eval mode leaves them.
  changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), stats,
                                   variables["batch_stats"])
  assert any(jax.tree_util.tree_leaves(changed))
  _, same, _ = models.apply_model(model, variables, x, train=False)
  assert same is variables["batch_stats"]


def test_eval_logits_are_independent_of_batch_composition(key):
  model = _tiny("vgg5")
  variables = models.init_model(model, key)
  x = jax.random.uniform(key, (4, 32, 32, 3))
  full = models.apply_model(model, variables, x, train=False)[0]
  half = models.apply_model(model, variables, x[:2], train=False)[0]
  np.testing.assert_allclose(full[:2], half, rtol=1e-5, atol=1e-5)


def test_leak_placement_changes_the_model_but_not_its_parameters(key):
  x = jax.random.uniform(key, (2, 32, 32, 3))
  a, b = _tiny("vgg5", dlif_placement="input"), _tiny("vgg5", dlif_placement="leak")
  variables = models.init_model(a, key)
  variables["params"] = jax.tree_util.tree_map_with_path(
      lambda p, v: v * 1.3 if "dlif_factors" in str(p) else v, variables["params"])
  sa = models.apply_model(a, variables, x, train=True, capture=[models.SPIKES])[2][models.SPIKES]
  sb = models.apply_model(b, variables, x, train=True, capture=[models.SPIKES])[2][models.SPIKES]
  assert not np.array_equal(sa[0], sb[0])


def test_jit_and_grad_run_and_do_not_retrace(key):
  model = _tiny("wrn16", time_steps=2)
  variables = models.init_model(model, key)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def loss_and_grad(params, batch_stats, x, y):
    def loss(p):
      logits, stats, _ = models.apply_model(model, {"params": p, "batch_stats": batch_stats}, x,
                                            train=True)
      return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1)), stats
    return jax.value_and_grad(loss, has_aux=True)(params)

  for seed in range(2):
    k = jax.random.key(seed)
    x = jax.random.uniform(k, (2, 32, 32, 3))
    (value, _), grads = loss_and_grad(variables["params"], variables["batch_stats"], x,
                                      jnp.array([1, 2]))
    assert jnp.isfinite(value)
    assert all(jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))
  # The DLIF factors and convex weights receive gradients.
  flat = {jax.tree_util.keystr(p): g for p, g in
          jax.tree_util.tree_leaves_with_path(grads)}
  assert any(jnp.any(g != 0) for p, g in flat.items() if "dlif_factors" in p)
  assert any(jnp.any(g != 0) for p, g in flat.items() if "convex_combination" in p)


def test_bfloat16_compute_keeps_float32_parameters(key):
  model = _tiny("vgg5", dtype="bfloat16")
  variables = models.init_model(model, key)
  assert all(v.dtype == jnp.float32 for v in jax.tree_util.tree_leaves(variables))
  logits = models.apply_model(model, variables, jnp.ones((2, 32, 32, 3)), train=False)[0]
  assert logits.dtype == jnp.float32 and jnp.all(jnp.isfinite(logits))


@pytest.mark.parametrize("kwargs,match", [
    ({"name": "resnet19"}, "'resnet19'"),
    ({"kind": "izhikevich"}, "'izhikevich'"),
    ({"num_classes": 1}, "num_classes"),
    ({"time_steps": 0}, "time_steps"),
    ({"leak": 1.5}, "leak"),
    ({"dlif_placement": "threshold"}, "'threshold'"),
    ({"surrogate": "gaussian"}, "'gaussian'"),
    ({"dtype": "float16"}, "'float16'"),
])
def test_bad_arguments_raise_value_errors(kwargs, match):
  kwargs = {"name": "vgg5", "num_classes": 10, **kwargs}
  neuron = {f.name: kwargs.pop(f.name) for f in dataclasses.fields(models.NeuronSpec)
            if f.name in kwargs}
  with pytest.raises(ValueError, match=match):
    models.create_model(kwargs.pop("name"), neuron=models.NeuronSpec(**neuron), **kwargs)
