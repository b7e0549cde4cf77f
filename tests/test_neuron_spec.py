"""NeuronSpec: validated once, the one surrogate mapping, the config mapping, the same model as
before, and the neuron settings declared in one place."""

import ast
import dataclasses
import inspect
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from jsnn import models, spiking, workdir
from jsnn.models import layers, vgg, wrn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIELDS = {f.name for f in dataclasses.fields(spiking.NeuronSpec)}


@pytest.mark.parametrize("kwargs,match", [
    ({"kind": "izhikevich"}, "unknown neuron 'izhikevich'"),
    ({"time_steps": 0}, "time_steps must be an integer >= 1, got 0"),
    ({"time_steps": 2.0}, "got 2.0"),
    ({"dlif_placement": "threshold"}, "unknown dlif_placement 'threshold'"),
    ({"leak": 1.5}, r"leak λ must be in \(0, 1\], got 1.5"),
    ({"leak": 0.0}, "got 0.0"),
    ({"threshold": 0.0}, "threshold u_th must be > 0, got 0.0"),
    ({"surrogate": "gaussian"}, "unknown surrogate 'gaussian'"),
    ({"surrogate_width": 0.0}, "surrogate_width must be > 0, or None .*, got 0.0"),
    ({"surrogate_width": -1.0}, "got -1.0"),
    ({"gradient_estimator": "bptt"}, "unknown gradient estimator 'bptt'"),
    ({"remat": "yes"}, "remat must be True or False, got 'yes'"),
])
def test_each_bad_setting_is_named(kwargs, match):
  with pytest.raises(ValueError, match=match):
    spiking.NeuronSpec(**kwargs)
  # A variant is validated too.
  with pytest.raises(ValueError, match=match):
    dataclasses.replace(spiking.NeuronSpec(), **kwargs)


def test_a_spec_is_frozen_and_hashable():
  spec = spiking.NeuronSpec(kind="lif", surrogate="sigmoid", surrogate_width=None)
  assert hash(spec) == hash(dataclasses.replace(spec)) and spec == dataclasses.replace(spec)
  with pytest.raises(dataclasses.FrozenInstanceError):
    spec.leak = 0.5


@pytest.mark.parametrize("name,width,expected", [
    ("triangle", 0.5, spiking.Triangle(width=0.5)),
    ("rectangular", 2.0, spiking.Rectangular(width=2.0)),
    ("sigmoid", 3.0, spiking.Sigmoid(alpha=3.0)),       # the width is the sharpness α
    ("arctan", 3.0, spiking.Arctan(alpha=3.0)),
    ("straight_through", 3.0, spiking.StraightThrough()),   # widthless: ignored
    ("triangle", None, spiking.Triangle()),              # None: the surrogate's own default
    ("sigmoid", None, spiking.Sigmoid()),
    ("arctan", None, spiking.Arctan()),
    ("straight_through", None, spiking.StraightThrough()),
])
def test_surrogate_name_and_width_become_one_object(name, width, expected):
  got = spiking.NeuronSpec(surrogate=name, surrogate_width=width).surrogate_fn()
  assert got == expected and type(got) is type(expected)


def test_the_config_maps_onto_the_spec():
  config = default.get_config()
  assert workdir.neuron_spec(config) == spiking.NeuronSpec()   # the defaults agree
  m = config.model
  m.neuron, m.dlif_placement, m.time_steps, m.leak, m.threshold = "lif", "leak", 4, 0.9, 0.8
  m.surrogate, m.surrogate_width, m.remat = "arctan", 3.0, True
  assert workdir.neuron_spec(config) == spiking.NeuronSpec(
      kind="lif", time_steps=4, dlif_placement="leak", leak=0.9, threshold=0.8,
      surrogate="arctan", surrogate_width=3.0, gradient_estimator="surrogate", remat=True)
  # Evaluation's overrides replace fields: a surrogate at its own default, another estimator.
  spec = workdir.neuron_spec(config, surrogate="sigmoid", surrogate_width=None,
                             gradient_estimator="rga")
  assert spec.surrogate_fn() == spiking.Sigmoid() and spec.gradient_estimator == "rga"
  assert spec.leak == 0.9
  with pytest.raises(ValueError, match=r"unknown neuron settings \['width'\]"):
    workdir.neuron_spec(config, width=0.5)
  model = workdir.model_from_config(workdir.resolve_config(config), 10, gradient_estimator="hart")
  assert model.neuron == dataclasses.replace(workdir.neuron_spec(config),
                                             gradient_estimator="hart")


def test_the_layer_runs_the_spiking_function_the_spec_names(key):
  spec = spiking.NeuronSpec(kind="dlif", time_steps=5, dlif_placement="leak", leak=0.9,
                            threshold=0.8, surrogate="sigmoid", surrogate_width=3.0)
  currents = jax.random.uniform(key, (5, 4, 6), minval=-0.5, maxval=1.5)
  layer = layers.SpikingNeuron(spec)
  variables = {"params": {"dlif_factors": jnp.array([1.0, 0.8, 1.2, 0.9, 1.1])}}

  def by_layer(c, a):
    return layer.apply({"params": {"dlif_factors": a}}, c)

  def by_hand(c, a):
    return spiking.dlif(c, a, placement="leak", leak=0.9, threshold=0.8,
                        surrogate=spiking.Sigmoid(alpha=3.0))

  factors = variables["params"]["dlif_factors"]
  np.testing.assert_array_equal(by_layer(currents, factors), by_hand(currents, factors))
  weights = jax.random.normal(jax.random.fold_in(key, 1), currents.shape)
  grad = lambda f: jax.grad(lambda c, a: jnp.sum(weights * f(c, a)), argnums=(0, 1))(
      currents, factors)
  for got, want in zip(grad(by_layer), grad(by_hand)):
    np.testing.assert_array_equal(got, want)


# Logits of a tiny VGG5 (width 1/8, head 16, T = 3, initial parameters doubled so that every layer
# spikes) on two uniform images, and the L1 norm of logit 0's input gradient, recorded from
# create_model's keyword arguments before NeuronSpec (main at 0ddbaf0, CPU, the conftest flags).
RECORDED = {
    "dlif-triangle": (
        {"kind": "dlif", "leak": 0.99, "threshold": 1.0, "surrogate": "triangle",
         "surrogate_width": 1.0},
        ([[0.8943692, -0.51818144, -1.0615517, 1.3333932, -1.0828695, -0.44402725, 0.704071,
           -0.20249605, 1.1998875, 1.0855883],
          [0.8594319, -0.25408047, -1.1212865, 1.1494831, -1.3880253, -0.71396804, 0.62803376,
           -0.2082786, 0.9409694, 1.165433]], 458.607421875)),
    "lif-sigmoid": (
        {"kind": "lif", "leak": 0.9, "threshold": 0.8, "surrogate": "sigmoid",
         "surrogate_width": 3.0},
        ([[0.5332959, -0.32394007, -0.54767454, 0.5894707, -0.5014092, -0.21029076, 0.20330495,
           -0.09970387, 0.20690411, 0.63378733],
          [0.48149073, -0.39898008, -0.6699854, 0.7721484, -1.0996523, -0.031594165, 0.51755935,
           -0.067573234, 0.5321902, 0.9064859]], 37.613792419433594)),
    "dlif-leak-arctan": (
        {"kind": "dlif", "dlif_placement": "leak", "leak": 0.95, "threshold": 1.0,
         "surrogate": "arctan", "surrogate_width": 3.0},
        ([[0.3092312, -0.052179724, -0.5235405, 0.5265407, -0.3387499, -0.29333776, 0.3768408,
           -0.20963444, 0.5085982, 0.40979636],
          [0.3206315, -0.20062533, -0.6388856, 0.73223484, -0.58276665, -0.40510735, 0.42604324,
           -0.13353345, 0.72253513, 0.5016272]], 187.34161376953125)),
}


@pytest.mark.parametrize("case", list(RECORDED))
def test_create_model_with_a_spec_gives_the_logits_of_before(case):
  settings, (expected_logits, expected_grad) = RECORDED[case]
  model = models.create_model("vgg5", num_classes=10, width=0.125, head_width=16,
                              neuron=spiking.NeuronSpec(time_steps=3, **settings))
  variables = models.init_model(model, jax.random.key(0))
  variables["params"] = jax.tree_util.tree_map(lambda v: 2.0 * v, variables["params"])
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  logits_fn = lambda x: models.apply_model(model, variables, x, train=False)[0]
  np.testing.assert_allclose(logits_fn(x), expected_logits, rtol=1e-5, atol=1e-5)
  grad = jax.grad(lambda x: jnp.sum(logits_fn(x)[:, 0]))(x)
  np.testing.assert_allclose(float(jnp.sum(jnp.abs(grad))), expected_grad, rtol=1e-4)


def _declarations(path):
  """``(line, name)`` of every class field and every parameter with a default in ``path``."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.ClassDef):
      found += [(n.lineno, n.target.id) for n in node.body
                if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]
    elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
      a = node.args
      positional = (a.posonlyargs + a.args)[len(a.posonlyargs + a.args) - len(a.defaults):]
      found += [(p.lineno, p.arg) for p in positional]
      found += [(p.lineno, p.arg) for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
  return found


def test_the_neuron_settings_are_declared_once():
  # No module of the models re-declares a field of the spec: SpikingNeuron holds the spec.
  for module in (layers.SpikingNeuron, layers.SpikingNetwork, vgg.SpikingVGG,
                 wrn.SpikingWideResNet, wrn.BasicBlock):
    assert not {f.name for f in dataclasses.fields(module)} & FIELDS, module
  assert {f.name for f in dataclasses.fields(layers.SpikingNeuron)} - {"parent", "name"} == {
      "spec", "is_last"}
  assert not set(inspect.signature(models.create_model).parameters) & FIELDS
  # Nor does any source file between the config and the spec: no `leak: float = 0.99` field, no
  # `leak=0.99` default (jsnn.spiking's pure functions keep their own keyword arguments).
  files = [os.path.join("jsnn", "models", n) for n in os.listdir(os.path.join(REPO, "jsnn",
                                                                               "models"))
           if n.endswith(".py")] + [os.path.join("jsnn", "workdir.py")]
  for path in files:
    found = [(line, n) for line, n in _declarations(os.path.join(REPO, path)) if n in FIELDS]
    assert not found, (path, found)
