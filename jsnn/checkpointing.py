"""Orbax checkpoints in the workdir: the latest state (to resume) and the best (to evaluate).

Layout::

    workdir/checkpoints/latest/<step>/{variables, optimizer, meta}
    workdir/checkpoints/best/<step>/{variables, optimizer, meta}

``variables`` holds the model's ``{params, batch_stats}``, so that evaluation restores a model
without rebuilding its optimiser; ``optimizer`` holds the rest of the train state (step,
optimiser state, PRNG key) for resuming. Checkpoints of jsnn before this layout hold one ``state``
item with everything; both restore. ``meta`` is JSON: the resolved config, step, epoch and the
selection metric, so a checkpoint describes itself (``evaluate.py`` rebuilds the model from it).
Orbax writes each step into a temporary directory and renames it when complete, so a kill during
a save leaves the previous checkpoint readable and the partial one ignored. A checkpoint that
cannot be read back, or written, raises :class:`CheckpointUnreadable` or
:class:`CheckpointWriteError`, naming it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any, Optional

import orbax.checkpoint as ocp

from jsnn import errors
from jsnn.train_state import TrainState

WHICH = ("latest", "best")
VARIABLES, OPTIMIZER, LEGACY_STATE = "variables", "optimizer", "state"
# The JSON files orbax writes into a step's directory (meta/metadata holds jsnn's meta).
_JSON_FILES = (os.path.join("meta", "metadata"), "_CHECKPOINT_METADATA",
               os.path.join(VARIABLES, "_METADATA"), os.path.join(OPTIMIZER, "_METADATA"),
               os.path.join(LEGACY_STATE, "_METADATA"))


def _split(state: TrainState) -> tuple[dict, dict]:
  """``({params, batch_stats}, {step, opt_state, rng})``: the items a train state is saved as."""
  return ({"params": state.params, "batch_stats": state.batch_stats},
          {"step": state.step, "opt_state": state.opt_state, "rng": state.rng})


class CheckpointUnreadable(errors.Error, ValueError):
  """A checkpoint on disk that cannot be read back: a damaged, empty or foreign file."""


class MetaUnreadable(CheckpointUnreadable):
  """A checkpoint whose meta (the JSON describing it) cannot be read back."""


class CheckpointWriteError(errors.Error, OSError):
  """A checkpoint could not be written (a full disk, lost write access)."""


class _QuietReadOnly(logging.Filter):
  """Drops orbax's warning that a manager is read-only: evaluation opens runs so on purpose."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Given directory is read only")


logging.getLogger("absl").addFilter(_QuietReadOnly())


class Checkpoints:
  """The ``latest`` and ``best`` checkpoint managers of one workdir."""

  def __init__(self, workdir: str, *, keep_latest: int = 2, read_only: bool = False):
    self.root = os.path.join(os.path.abspath(workdir), "checkpoints")
    self._managers = {}
    self._failed = set()   # managers whose save failed (reported once, by wait)
    for which, keep in (("latest", keep_latest), ("best", 1)):
      if read_only:
        options = ocp.CheckpointManagerOptions(read_only=True, create=False, max_to_keep=None,
                                               save_interval_steps=0)
      else:
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
      self._managers[which] = ocp.CheckpointManager(os.path.join(self.root, which),
                                                    options=options)

  def latest_step(self, which: str = "latest") -> Optional[int]:
    return self._manager(which).latest_step()

  def step_dir(self, which: str, step: int) -> str:
    return os.path.join(self.root, which, str(step))

  def save(self, which: str, step: int, state, meta: dict) -> None:
    """Starts saving asynchronously; an earlier save's failure surfaces here or in :meth:`wait`."""
    try:
      variables, rest = _split(state)
      self._manager(which).save(step, args=ocp.args.Composite(**{
          VARIABLES: ocp.args.StandardSave(variables), OPTIMIZER: ocp.args.StandardSave(rest),
          "meta": ocp.args.JsonSave(meta)}))
    except ocp.checkpoint_manager.StepAlreadyExistsError:
      raise
    except Exception as e:  # noqa: BLE001 - orbax and TensorStore raise ValueError, OSError, ...
      raise CheckpointWriteError(self._write_failed(which, e)) from e

  def restore(self, which: str, abstract_state, step: Optional[int] = None) -> tuple[Any, dict]:
    """Restores ``(state, meta)``; ``abstract_state`` gives the structure, shapes and shardings."""
    manager, step = self._step(which, step)
    if not self._legacy(which, step):
      variables, rest = _split(abstract_state)
      restored = manager.restore(step, args=ocp.args.Composite(**{
          VARIABLES: ocp.args.StandardRestore(variables),
          OPTIMIZER: ocp.args.StandardRestore(rest), "meta": ocp.args.JsonRestore()}))
      v, r = restored[VARIABLES], restored[OPTIMIZER]
      return TrainState(step=r["step"], params=v["params"], batch_stats=v["batch_stats"],
                        opt_state=r["opt_state"], rng=r["rng"]), restored.meta
    restored = manager.restore(step, args=ocp.args.Composite(**{
        LEGACY_STATE: ocp.args.StandardRestore(abstract_state), "meta": ocp.args.JsonRestore()}))
    return restored[LEGACY_STATE], restored.meta

  def restore_variables(self, which: str, abstract_variables,
                        step: Optional[int] = None) -> tuple[dict, dict]:
    """Restores ``({params, batch_stats}, meta)`` alone: no optimiser state is read or needed.

    Args:
      which: ``"latest"`` or ``"best"``.
      abstract_variables: ``{params, batch_stats}`` of ``jax.ShapeDtypeStruct`` (with shardings).
      step: the checkpoint's step (default: the newest).
    """
    manager, step = self._step(which, step)
    if not self._legacy(which, step):
      restored = manager.restore(step, args=ocp.args.Composite(**{
          VARIABLES: ocp.args.StandardRestore(abstract_variables),
          "meta": ocp.args.JsonRestore()}))
      return restored[VARIABLES], restored.meta
    # An older checkpoint keeps the variables inside its train state: read only those leaves.
    restored = manager.restore(step, args=ocp.args.Composite(**{
        LEGACY_STATE: ocp.args.PyTreeRestore(
            item=abstract_variables, partial_restore=True,
            restore_args=ocp.checkpoint_utils.construct_restore_args(abstract_variables)),
        "meta": ocp.args.JsonRestore()}))
    state = restored[LEGACY_STATE]
    return {"params": state["params"], "batch_stats": state["batch_stats"]}, restored.meta

  def _step(self, which: str, step: Optional[int]):
    manager = self._manager(which)
    step = manager.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no {which!r} checkpoint in {os.path.join(self.root, which)}")
    return manager, step

  def _legacy(self, which: str, step: int) -> bool:
    """Whether the checkpoint has the older single-``state`` layout."""
    step_dir = self.step_dir(which, step)
    return (not os.path.isdir(os.path.join(step_dir, VARIABLES))
            and os.path.isdir(os.path.join(step_dir, LEGACY_STATE)))

  def read_meta(self, which: str = "latest", step: Optional[int] = None) -> Optional[dict]:
    """The meta of a checkpoint (None if there is none); an unreadable one raises, naming it."""
    manager = self._manager(which)
    step = manager.latest_step() if step is None else step
    if step is None:
      return None
    try:
      meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    except Exception as e:  # noqa: BLE001 - orbax raises JSONDecodeError, ValueError, OSError, ...
      raise self.unreadable(which, step, e, MetaUnreadable) from e
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
      raise self.unreadable(which, step, ValueError(
          f"{os.path.join(self.step_dir(which, step), _JSON_FILES[0])} is not the meta of a jsnn "
          f"checkpoint (no config)"), MetaUnreadable)
    return meta

  def unreadable(self, which: str, step: int, error: BaseException,
                 kind: type = CheckpointUnreadable) -> CheckpointUnreadable:
    """The error (of type ``kind``) for checkpoint ``which``/``step`` failing with ``error``."""
    step_dir = self.step_dir(which, step)
    bad = _bad_json_files(step_dir)
    what = (", ".join(f"{path} is {problem}" for path, problem in bad) if bad
            else reason(error))
    if which == "latest":
      earlier = [s for s in self._manager(which).all_steps() if s < step]
      todo = (f"if it is damaged, move {step_dir} away to resume from step {max(earlier)}, the "
              f"one before" if earlier else f"if it is damaged, move {step_dir} away to start "
              f"afresh")
    else:
      todo = ("if it is damaged, evaluate --config.eval.checkpoint=latest instead, or move "
              f"{step_dir} away and retrain")
    return kind(f"cannot read the {which!r} checkpoint of step {step} in {step_dir}: {what}. It "
                f"is left untouched; {todo}")

  def wait(self) -> None:
    """Waits for every save in flight; the first failed one raises :class:`CheckpointWriteError`."""
    failures = []
    for which, manager in self._managers.items():
      try:
        manager.wait_until_finished()
      except Exception as e:  # noqa: BLE001 - see save()
        failures.append((which, e))
        self._failed.add(which)
    if failures:
      which, e = failures[0]
      raise CheckpointWriteError(self._write_failed(which, e)) from e

  def close(self) -> None:
    for which, manager in self._managers.items():
      try:
        manager.close()
      except Exception:  # noqa: BLE001
        # A manager whose save failed raises it again on close; wait() has reported it.
        if which not in self._failed:
          raise

  def _write_failed(self, which: str, error: BaseException) -> str:
    return (f"cannot write a checkpoint into {os.path.join(self.root, which)}: {reason(error)}. "
            f"The checkpoints written before are intact: free some disk space (or restore write "
            f"access) and rerun the same command to resume from the last one")

  def _manager(self, which: str):
    if which not in WHICH:
      raise ValueError(f"unknown checkpoint {which!r}; expected one of {WHICH}")
    return self._managers[which]


def _bad_json_files(step_dir: str) -> list[tuple[str, str]]:
  """The JSON files of a step directory that are empty or do not parse, with what is wrong."""
  bad = []
  for name in _JSON_FILES:
    path = os.path.join(step_dir, name)
    if not os.path.isfile(path):
      continue
    try:
      if os.path.getsize(path) == 0:
        bad.append((path, "empty"))
        continue
      with open(path) as f:
        json.load(f)
    except (OSError, ValueError) as e:
      bad.append((path, f"not valid JSON ({e})"))
  return bad


def reason(error: BaseException) -> str:
  """What went wrong, in a few words: the OS error TensorStore reports, or the first line."""
  while error.__cause__ is not None:
    error = error.__cause__
  text = str(error).strip()
  os_error = re.search(r"([A-Za-z][^:\"\[\]]*?) \[os_error_code='?(\d+)'?\]", text)
  if os_error:
    return f"{os_error.group(1).strip()} (errno {os_error.group(2)})"
  line = text.splitlines()[0] if text else type(error).__name__
  return line if len(line) <= 300 else line[:300] + " …"
