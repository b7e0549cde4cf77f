"""What an evaluation runs on, prepared before anything runs or is written: :func:`prepare`.

The :class:`Context` holds the validated settings, the restored model and variables, the test
images, and per gradient to attack through (the evaluation's own, each ``eval.estimators`` entry)
the model that gives it (:class:`GradientModel`); the scoring model is always the trained one.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Optional

import jax
import numpy as np

from jsnn import _io, checkpointing, data, errors, models, parallel
from jsnn import workdir as workdir_lib
from jsnn.evaluation.settings import EvalSettings, settings_from_config


class CheckpointMismatch(errors.Error, ValueError):
  """The checkpoint cannot be restored into the model its saved config describes."""


@dataclasses.dataclass(frozen=True)
class Gradient:
  """The input gradient an attack follows.

  Attributes:
    surrogate: the spike function's surrogate (for "surrogate" and HART, which uses it per step).
    surrogate_width: its width (None: the surrogate's own default).
    estimator: the model's ``gradient_estimator`` ("surrogate" = BPTT through the surrogate).
    source: where it was chosen: "model", "eval.surrogate" or "eval.estimators".
  """
  surrogate: str
  surrogate_width: Optional[float]
  estimator: str = "surrogate"
  source: str = "model"


@dataclasses.dataclass(frozen=True, eq=False)
class GradientModel:
  """The model an attack takes its gradients from, and which gradient that is.

  Attributes:
    name: None for the evaluation's own gradient, else the ``eval.estimators`` entry.
    model: the Flax model (the forward pass is the trained model's; the backward pass differs).
    gradient: what it computes.
    assg_bounds: ASSG's bounds A to search over (empty for any other gradient).
  """
  name: Optional[str]
  model: Any
  gradient: Gradient
  assg_bounds: tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True, eq=False)
class TransferSource:
  """The model of ``eval.transfer_from``: attacks are crafted on it and scored on ours."""
  model: Any
  variables: Any
  record: dict


@dataclasses.dataclass(frozen=True, eq=False)
class Context:
  """A prepared evaluation (see :func:`prepare`)."""
  settings: EvalSettings
  workdir: str
  mesh: Any
  run_config: Any
  meta: dict
  model: Any                            # the trained model: it scores every attack
  variables: Any
  images: np.ndarray
  labels: np.ndarray
  data_source: str
  is_main: bool
  own: GradientModel                    # the evaluation's own gradient
  variants: Mapping[str, GradientModel]   # per eval.estimators entry
  eot_draws: int = 1                    # eval.eot_draws, or 1 if the model is deterministic
  notes: tuple[str, ...] = ()           # warnings about the setup, printed and recorded
  transfer: Optional[TransferSource] = None

  @property
  def attack_model(self):
    """The model giving the evaluation's own gradient."""
    return self.own.model

  def gradient_model(self, variant: Optional[str]) -> GradientModel:
    return self.variants[variant] if variant in self.variants else self.own


def _restore(settings: EvalSettings, workdir: str):
  """``(config, model, variables, meta, own, variants)``; explains failures."""
  try:
    run_config, model, variables, meta = workdir_lib.restore_model(workdir, settings.checkpoint)
  except (workdir_lib.CheckpointNotFound, checkpointing.MetaUnreadable):
    raise   # they say which file, and what to do
  except Exception as e:
    raise CheckpointMismatch(
        f"cannot restore the {settings.checkpoint!r} checkpoint of {workdir}: the model its saved "
        f"config describes does not match the stored arrays (was the checkpoint written by another "
        f"jsnn version, or its meta edited?), or its files are damaged (it is left untouched). "
        f"({checkpointing.reason(e)})") from e
  # The saved config builds the model; the arrays must have exactly its shapes.
  expected = jax.eval_shape(lambda: models.init_model(model, jax.random.key(0)))
  got = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), variables)
  if (jax.tree_util.tree_structure(expected) != jax.tree_util.tree_structure(got)
      or jax.tree_util.tree_leaves(expected) != jax.tree_util.tree_leaves(got)):
    raise CheckpointMismatch(
        f"the {settings.checkpoint!r} checkpoint of {workdir} holds variables that do not match "
        f"the model {run_config.model.name} of its saved config")
  num_classes = meta["num_classes"]

  def build(gradient: Gradient):
    return workdir_lib.model_from_config(
        run_config, num_classes, gradient_estimator=gradient.estimator,
        surrogate=gradient.surrogate, surrogate_width=gradient.surrogate_width)

  m = run_config.model
  if settings.surrogate:
    own_gradient = Gradient(settings.surrogate, settings.surrogate_width or None,
                            source="eval.surrogate")
    own = GradientModel(None, build(own_gradient), own_gradient)
  else:
    own = GradientModel(None, model, Gradient(m.surrogate, m.surrogate_width))
  variants = {}
  for estimator in settings.estimators:
    if estimator.surrogate:
      gradient = Gradient(estimator.surrogate, estimator.width or None, source="eval.estimators")
    else:
      # Rate-based estimators keep the evaluation's surrogate (HART uses it per step).
      gradient = dataclasses.replace(own.gradient, estimator=estimator.gradient_estimator)
    bounds = settings.assg_bounds if estimator.gradient_estimator == "assg" else ()
    variants[estimator.name] = GradientModel(estimator.name, build(gradient), gradient, bounds)
  return run_config, model, variables, meta, own, variants


def load_test_set(run_config, *, data_dir: str = "", tfds_data_dir: str = ""):
  """The test split the run was evaluated on during training: ``(images, labels, source)``.

  Synthetic runs regenerate the synthetic test set from the run's seed, exactly as
  ``data.load_dataset`` does; CIFAR runs read the saved ``data.dir`` (or TFDS), unless
  ``data_dir``/``tfds_data_dir`` point elsewhere (the data moved to another machine).
  """
  d = run_config.data
  if d.name == "synthetic":
    images, labels = data.make_synthetic(data.SYNTHETIC_TEST_SIZE, data.NUM_CLASSES["synthetic"],
                                         seed=run_config.seed, split="test")
    return images, labels, f"synthetic(seed={run_config.seed}) test"
  data_dir = data_dir or d.dir or None
  tfds_data_dir = tfds_data_dir or d.tfds_data_dir or None
  images, labels = data.load_split(d.name, "test", data_dir=data_dir, tfds_data_dir=tfds_data_dir,
                                   download=d.download)
  where = f"npz:{os.path.abspath(data_dir)}" if data_dir else f"tfds:{d.name}"
  return images, labels, f"{d.name} test ({where})"


def prepare(config, workdir: str) -> Context:
  """Everything that can fail on bad input, before any attack runs or any file is written."""
  settings = settings_from_config(config)
  mesh = parallel.make_mesh()
  if settings.batch_size % mesh.devices.size:
    n = mesh.devices.size
    raise ValueError(f"eval.batch_size {settings.batch_size} is not divisible by the {n} devices; "
                     f"use a multiple of {n} (e.g. --config.eval.batch_size="
                     f"{max(n, settings.batch_size // n * n)})")
  workdir = os.path.abspath(workdir)
  if os.path.isdir(workdir) and jax.process_index() == 0:
    # Results are written after the first attack; a read-only run fails now, not then.
    _io.check_writable([workdir], todo=f"; make it writable (chmod -R u+w {workdir}), or "
                       f"evaluate a copy of the run (cp -r {workdir} COPY; python evaluate.py "
                       f"--workdir COPY)")
  run_config, model, variables, meta, own, variants = _restore(settings, workdir)
  targets = max((getattr(s, "num_targets", 0) for s in settings.cascade + settings.specs),
                default=0)
  num_classes = int(meta["num_classes"])
  if targets and (num_classes < 4 or targets > num_classes - 1):
    raise ValueError(f"APGD-T needs at least 4 classes and at most classes − 1 = "
                     f"{num_classes - 1} targets; got {num_classes} classes and "
                     f"eval.apgd_targets = {targets}")
  images, labels, source = load_test_set(run_config, data_dir=settings.data_dir,
                                         tfds_data_dir=settings.tfds_data_dir)
  if settings.num_examples > len(labels):
    raise ValueError(f"eval.num_examples {settings.num_examples} is more than the "
                     f"{len(labels)} test examples of {source}")
  if settings.num_examples:
    images, labels = images[:settings.num_examples], labels[:settings.num_examples]
  eot_draws, notes = settings.eot_draws, []
  if models.is_stochastic(model) and eot_draws == 1:
    notes.append(
        f"the model is stochastic ({run_config.model.encoding} input encoding) but eval.eot_draws "
        f"is 1: every attack follows the gradient of a single random draw and every prediction is "
        f"one draw, which overstates robustness (the randomness masks the gradient). Set "
        f"--config.eval.eot_draws to 10 or more.")
  elif not models.is_stochastic(model) and eot_draws > 1:
    notes.append(f"eval.eot_draws = {eot_draws} ignored: the model is deterministic "
                 f"({run_config.model.get('encoding', 'direct')} encoding), every draw is the same")
    eot_draws = 1
  transfer = _restore_transfer_source(settings, workdir, run_config, meta)
  return Context(settings, workdir, mesh, run_config, meta, model, variables, images,
                 labels.astype(np.int32), source, jax.process_index() == 0, own, variants,
                 eot_draws, tuple(notes), transfer)


def _restore_transfer_source(settings: EvalSettings, workdir: str, run_config,
                             meta) -> Optional[TransferSource]:
  """The model of ``eval.transfer_from``, checked to classify the same data."""
  if not settings.transfer_from:
    return None
  source_dir = os.path.abspath(settings.transfer_from)
  if source_dir == workdir:
    raise ValueError(f"eval.transfer_from is the evaluated workdir itself ({source_dir}); name "
                     f"another run, e.g. the same model trained with another surrogate")
  if not os.path.isdir(source_dir):
    raise ValueError(f"eval.transfer_from {settings.transfer_from!r} is not a directory")
  src_config, src_model, src_variables, src_meta = workdir_lib.restore_model(
      source_dir, settings.checkpoint)
  if (src_config.data.name != run_config.data.name
      or int(src_meta["num_classes"]) != int(meta["num_classes"])):
    raise ValueError(f"eval.transfer_from {source_dir} was trained on {src_config.data.name} "
                     f"({src_meta['num_classes']} classes), the evaluated model on "
                     f"{run_config.data.name} ({meta['num_classes']} classes)")
  m = src_config.model
  record = {"workdir": source_dir, "checkpoint": settings.checkpoint,
            "checkpoint_step": int(src_meta["step"]), "model": m.name, "neuron": m.neuron,
            "surrogate": m.surrogate, "surrogate_width": m.surrogate_width,
            "encoding": m.get("encoding", "direct"), "seed": src_config.seed}
  return TransferSource(src_model, src_variables, record)
