"""The tasks of an evaluation: what runs, in which order, and what identifies each result.

A :class:`Task` is frozen data: the attack spec, ε, the gradient it follows (its
:class:`TaskKey`) and, for a stage of the ``standard`` cascade, the task whose survivors it
attacks (``after``). :func:`plan` lists them for a prepared context; :func:`task_record` is what
identifies a task's result (the store reuses a result under the same record). Keys become strings
only here (:attr:`TaskKey.name`, the key in ``robustness.json``) and are parsed back only here
(:meth:`TaskKey.parse`).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from jsnn import attacks, models
from jsnn.evaluation.context import Context
from jsnn.evaluation.records import table_order
from jsnn.evaluation.settings import NEAR_ZERO_GRADIENT, STANDARD, TRANSFER

# The sanity checks' runs (results["check_runs"]): PGD-10 at a large radius, and the count of
# correctly classified images whose input gradient is zero.
LARGE_EPSILON_RUN = "large_epsilon"
ZERO_GRADIENT_RUN = "zero_gradient"
# PGD-10 (α = ε/4) at this radius should leave (almost) nothing correct: 64/255 is a quarter of
# the pixel range, far beyond any robust CIFAR model (checks.py).
LARGE_EPSILON = 64 / 255


@dataclasses.dataclass(frozen=True)
class TaskKey:
  """Which result: an attack (or check run), under which gradient, in which cascade.

  Attributes:
    attack: the attack's name ("pgd10", "apgd-t100") or a check run's ("zero_gradient").
    variant: None (the evaluation's own gradient), an ``eval.estimators`` entry, or "transfer".
    cascade: None, or the cascade ("standard") whose stage this is.
  """
  attack: str
  variant: Optional[str] = None
  cascade: Optional[str] = None

  @property
  def name(self) -> str:
    """The key in ``robustness.json``'s section and in the summary's lists."""
    if self.cascade:
      return f"{self.cascade}/{self.attack}"
    return f"{self.attack}@{self.variant}" if self.variant else self.attack

  @classmethod
  def parse(cls, name: str) -> "TaskKey":
    cascade, slash, rest = name.partition("/")
    if slash:
      return cls(rest, cascade=cascade)
    attack, _, variant = name.partition("@")
    return cls(attack, variant or None)

  @property
  def is_transfer(self) -> bool:
    return self.variant == TRANSFER


@dataclasses.dataclass(frozen=True)
class Task:
  """One run over the test images.

  Attributes:
    key: what it is (see :class:`TaskKey`).
    section: where its result goes: "attacks", "check_runs" or "cascade" (a stage).
    spec: the attack; None for the zero-gradient count.
    epsilon: the L∞ radius it runs at.
    after: attack only the images still correct after this task (a cascade stage); its flags
      are then "correct after both".
  """
  key: TaskKey
  section: str
  spec: Optional[attacks.AttackSpec]
  epsilon: float
  after: Optional[TaskKey] = None


def plan(ctx: Context) -> list[Task]:
  """The suite's attacks in table order, then under each estimator and the transfer source;
  the sanity checks' runs; the cascade's stages, each after the one before it (the first after
  the clean run)."""
  s = ctx.settings
  specs = {spec.name: spec for spec in s.specs}
  order = table_order(list(specs))
  tasks = [Task(TaskKey(name), "attacks", specs[name], s.epsilon) for name in order]
  gradient_attacks = [name for name in order if specs[name].uses_gradients]
  tasks += [Task(TaskKey(name, v), "attacks", specs[name], s.epsilon)
            for name in gradient_attacks for v in ctx.variants]
  if ctx.transfer is not None:
    tasks += [Task(TaskKey(name, TRANSFER), "attacks", specs[name], s.epsilon)
              for name in gradient_attacks]
  if s.sanity_checks:
    large = dataclasses.replace(attacks.get_attack_spec("pgd10"), name="pgd10-large-epsilon",
                                step_size=None, epsilon=LARGE_EPSILON)
    tasks.append(Task(TaskKey(LARGE_EPSILON_RUN), "check_runs", large, LARGE_EPSILON))
    tasks += [Task(TaskKey(ZERO_GRADIENT_RUN, v), "check_runs", None, 0.0)
              for v in [None, *ctx.variants]]
  previous = TaskKey("clean")
  for spec in s.cascade:
    key = TaskKey(spec.name, cascade=STANDARD)
    tasks.append(Task(key, "cascade", spec, s.epsilon, after=previous))
    previous = key
  return tasks


def common_settings(ctx: Context, variant: Optional[str] = None) -> dict:
  """What identifies a result besides the attack: the model, the examples, the seed, and the
  gradient the attack follows (an estimator variant adds its estimator)."""
  gradient = ctx.gradient_model(variant).gradient
  common = {"checkpoint": ctx.settings.checkpoint, "checkpoint_step": int(ctx.meta["step"]),
            "dataset": ctx.run_config.data.name, "num_examples": len(ctx.labels),
            "seed": ctx.settings.seed, "surrogate": gradient.surrogate,
            "surrogate_width": gradient.surrogate_width}
  if variant == TRANSFER:
    common.update(surrogate=ctx.transfer.record["surrogate"],
                  surrogate_width=ctx.transfer.record["surrogate_width"],
                  transfer_from=ctx.transfer.record)
  elif variant:
    common["gradient_estimator"] = gradient.estimator
    common["estimator"] = variant
  if models.is_stochastic(ctx.model):
    common["eot_draws"] = ctx.eot_draws
  return common


def attack_record(spec: attacks.AttackSpec, epsilon: float, ctx: Context,
                  variant: Optional[str] = None) -> dict:
  """What identifies one attack's result at ``epsilon`` (its fingerprint is the resume key)."""
  common = common_settings(ctx, variant)
  # Settings that cannot change this attack's result are left out, so changing them reuses it.
  if not spec.needs_key:
    common["seed"] = None
  if not spec.uses_gradients:
    common["surrogate"] = common["surrogate_width"] = None
  record = {"attack": spec.name, "epsilon": epsilon, "step_size": spec.step_size_at(epsilon),
            **spec.record(), **common}
  bounds = ctx.gradient_model(variant).assg_bounds
  if bounds and spec.uses_gradients:
    record["assg_bounds"] = list(bounds)
  return record


def task_record(task: Task, ctx: Context) -> dict:
  """:func:`attack_record` of the task (a cascade stage adds its cascade; the store adds the
  record of the task it follows)."""
  if task.spec is None:
    return {"attack": "zero-gradient", "loss": "ce", **common_settings(ctx, task.key.variant),
            "seed": None, "near_zero_max_abs": NEAR_ZERO_GRADIENT}
  record = attack_record(task.spec, task.epsilon, ctx, task.key.variant)
  if task.key.cascade:
    record["cascade"] = task.key.cascade
  return record
