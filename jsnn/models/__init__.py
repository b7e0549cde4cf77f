"""Spiking models by name: ``create_model("vgg11", num_classes=10)``.

Models are Flax Linen modules whose ``__call__(images, train)`` maps ``[B, 32, 32, 3]`` pixels in
[0, 1] to logits ``[B, num_classes]`` (the readout averaged over T). :func:`apply_model` runs one
with the batch statistics and the activations a caller asks for (the last spiking layer's input
currents and spikes for MS-MPPD/TASAD/STD, every layer's spikes).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence, Union

import flax
import jax
import jax.numpy as jnp

from jsnn import spiking
from jsnn.models import layers
from jsnn.models.layers import (ASSG_STATE, ENCODING_RNG, LAST_SPIKING_LAYER, SPIKES,
                                SpikingNeuron)
from jsnn.models.vgg import VGG_CFGS, SpikingVGG
from jsnn.models.wrn import CONVEX_COMBINATION, SpikingWideResNet
from jsnn.spiking import NeuronSpec

# Input normalisation used by the reference (spec §4.5), applied inside the model.
NORMALIZATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    "none": (None, None),
}

MODELS: dict[str, Callable[..., flax.linen.Module]] = {
    "vgg5": functools.partial(SpikingVGG, cfg=VGG_CFGS["vgg5"]),
    "vgg11": functools.partial(SpikingVGG, cfg=VGG_CFGS["vgg11"]),
    "wrn16": functools.partial(SpikingWideResNet, depth=16, widen=4),
}

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

# The paper's neuron: DLIF (input placement), T = 8, λ = 0.99, u_th = 1, Eq. 18's triangle (ω = 1).
PAPER_NEURON = NeuronSpec()


def create_model(name: str, *, num_classes: int, neuron: NeuronSpec = PAPER_NEURON,
                 width: float = 1.0, head_width: int = 4096, dtype: Union[str, Any] = "float32",
                 normalization: str = "cifar10", encoding: str = "direct") -> flax.linen.Module:
  """Creates a spiking model from the registry ``MODELS``.

  Args:
    name: ``"vgg5"``, ``"vgg11"`` or ``"wrn16"`` (WRN-16-4).
    num_classes: ≥ 2.
    neuron: every spiking layer's neuron, T included (:class:`jsnn.spiking.NeuronSpec`;
      ``PAPER_NEURON`` by default).
    width: channel multiplier (1.0 is the paper's model; smaller for CPU runs).
    head_width: VGG's hidden FC width (4096 in the paper).
    dtype: compute dtype, ``"float32"`` or ``"bfloat16"``; parameters stay float32 and the membrane
      runs in float32 either way.
    normalization: ``"cifar10"``, ``"cifar100"`` or ``"none"`` (the in-model input normalisation).
    encoding: ``"direct"`` (the paper's; deterministic) or ``"poisson"`` (rate-coded input spikes,
      a stochastic model: :func:`apply_model` then needs a key, evaluation uses EOT).

  Returns:
    A Flax module; ``model.init(key, images, train=False)`` gives its variables.
  """
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
  if not isinstance(neuron, NeuronSpec):
    raise TypeError(f"neuron must be a jsnn.spiking.NeuronSpec, got {neuron!r}")
  if encoding not in spiking.ENCODINGS:
    raise ValueError(f"unknown encoding {encoding!r}; expected one of {spiking.ENCODINGS}")
  if not isinstance(num_classes, int) or num_classes < 2:
    raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
  if not width > 0 or head_width < 1:
    raise ValueError(f"width must be > 0 and head_width >= 1, got {width}, {head_width}")
  if normalization not in NORMALIZATION:
    raise ValueError(f"unknown normalization {normalization!r}; expected one of "
                     f"{sorted(NORMALIZATION)}")
  if isinstance(dtype, str):
    if dtype not in DTYPES:
      raise ValueError(f"unknown dtype {dtype!r}; expected one of {sorted(DTYPES)}")
    dtype = DTYPES[dtype]
  mean, std = NORMALIZATION[normalization]
  kwargs = dict(num_classes=num_classes, neuron=neuron, width=width, mean=mean, std=std,
                dtype=dtype, encoding=encoding)
  if name.startswith("vgg"):
    kwargs["head_width"] = head_width
  return MODELS[name](**kwargs)


def is_stochastic(model) -> bool:
  """Whether ``model``'s forward pass draws random numbers (a Poisson input encoding)."""
  return getattr(model, "encoding", "direct") != "direct"


def init_model(model, key, image_shape: Sequence[int] = (32, 32, 3)):
  """Initialises ``{"params", "batch_stats"}`` with a batch of one (shapes only)."""
  param_key, encoding_key = jax.random.split(key)
  rngs = {"params": param_key, ENCODING_RNG: encoding_key} if is_stochastic(model) else key
  variables = jax.jit(functools.partial(model.init, train=False))(
      rngs, jnp.zeros((1,) + tuple(image_shape), jnp.float32))
  # init makes every collection mutable, so it also records the sown activations: drop them.
  return {k: variables[k] for k in ("params", "batch_stats") if k in variables}


def abstract_variables(model, sharding=None, image_shape: Sequence[int] = (32, 32, 3)):
  """``{params, batch_stats}`` of ``model`` as ``jax.ShapeDtypeStruct`` (with ``sharding``),
  without allocating them: the target of a checkpoint restore."""
  shapes = jax.eval_shape(lambda key: init_model(model, key, image_shape), jax.random.key(0))
  return jax.tree_util.tree_map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def apply_model(model, variables, images, *, train: bool, capture: Sequence[str] = (),
                rng=None):
  """Runs ``model`` and returns ``(logits, batch_stats, captured)``.

  Args:
    model: a module from :func:`create_model`.
    variables: ``{"params", "batch_stats"}``.
    images: ``[B, 32, 32, 3]`` in [0, 1].
    train: batch statistics (and updated running averages) if True, running averages otherwise.
    capture: collections to record: ``LAST_SPIKING_LAYER`` and/or ``SPIKES``.
    rng: PRNG key of the input encoding's draw; required for a stochastic model
      (:func:`is_stochastic`), ignored otherwise.

  Returns:
    logits ``[B, classes]``; the new batch statistics (the old ones when ``train`` is False); and
    ``captured``: for ``LAST_SPIKING_LAYER`` a dict ``{"currents", "spikes"}`` of ``[T, B, ...]``;
    for ``SPIKES`` a list of every spiking layer's ``[T, B, ...]`` spikes in forward order.
  """
  unknown = set(capture) - {LAST_SPIKING_LAYER, SPIKES}
  if unknown:
    raise ValueError(f"cannot capture {sorted(unknown)}; expected {LAST_SPIKING_LAYER!r} or "
                     f"{SPIKES!r}")
  rngs = None
  if is_stochastic(model):
    if rng is None:
      raise ValueError(f"the model's {model.encoding!r} input encoding draws random spikes: pass "
                       f"apply_model a PRNG key as rng=")
    rngs = {ENCODING_RNG: rng}
  mutable = (["batch_stats"] if train else []) + list(capture)
  variables = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
  if not mutable:
    return (model.apply(variables, images, train=False, rngs=rngs), variables.get("batch_stats"),
            {})
  logits, state = model.apply(variables, images, train=train, mutable=mutable, rngs=rngs)
  state = flax.core.unfreeze(state)
  batch_stats = state.pop("batch_stats", variables.get("batch_stats"))
  captured = {}
  if LAST_SPIKING_LAYER in state:
    (entry,) = _sown_leaves(state[LAST_SPIKING_LAYER])
    captured[LAST_SPIKING_LAYER] = {k: v[0] for k, v in entry.items()}
  if SPIKES in state:
    captured[SPIKES] = [entry["spikes"][0] for entry in _sown_leaves(state[SPIKES])]
  return logits, batch_stats, captured


def assg_initial_state(model, variables, images, bound):
  """ASSG's state before an attack's first gradient: every layer's moments M = 1, D = 0 at the
  batch's shape, and the bound A (a scalar, may be traced) in every layer.

  Args:
    model: a model with ``gradient_estimator="assg"``.
    variables: ``{"params", "batch_stats"}``.
    images: the batch the attack will run on (only its shape is used).
    bound: A.

  Returns:
    The ``assg_state`` collection, a pytree of arrays.
  """
  variables = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
  shapes = jax.eval_shape(
      lambda x: model.apply(variables, x, train=False, mutable=[ASSG_STATE])[1], images)
  bound = jnp.asarray(bound, jnp.float32)

  def fill(path, leaf):
    if getattr(path[-1], "key", None) == "bound":
      return jnp.broadcast_to(bound, leaf.shape)
    return spiking.adaptive.initial_moments(leaf.shape[1:])

  return jax.tree_util.tree_map_with_path(fill, flax.core.unfreeze(shapes)[ASSG_STATE])


def apply_assg(model, variables, images, state):
  """``(logits, new_state)``: one eval-mode forward pass of an ASSG model that first updates the
  moments of ``state`` (:func:`assg_initial_state`) and then differentiates with them."""
  variables = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
  logits, new = model.apply({**variables, ASSG_STATE: state}, images, train=False,
                            mutable=[ASSG_STATE])
  return logits, flax.core.unfreeze(new)[ASSG_STATE]


def _sown_leaves(tree):
  """The innermost dicts of sown values, in the order the modules were called."""
  if any(isinstance(v, tuple) for v in tree.values()):
    return [tree]
  return [leaf for v in tree.values() for leaf in _sown_leaves(v)]


def count_params(params) -> int:
  return sum(int(x.size) for x in jax.tree_util.tree_leaves(params))


__all__ = [
    "ASSG_STATE", "apply_assg", "assg_initial_state", "MODELS", "NORMALIZATION", "ENCODING_RNG", "LAST_SPIKING_LAYER", "SPIKES", "CONVEX_COMBINATION",
    "NeuronSpec", "PAPER_NEURON", "SpikingNeuron", "SpikingVGG", "SpikingWideResNet", "abstract_variables", "apply_model",
    "count_params",
    "create_model", "init_model", "is_stochastic", "layers",
]
