"""Orbax checkpoints in the workdir: the latest state (to resume) and the best (to evaluate).

Layout::

    workdir/checkpoints/latest/<step>/{state, meta}
    workdir/checkpoints/best/<step>/{state, meta}

``meta`` is JSON: the resolved config, step, epoch and the selection metric, so a checkpoint
describes itself (``evaluate.py`` rebuilds the model from it). Orbax writes each step into a
temporary directory and renames it when complete, so a kill during a save leaves the previous
checkpoint readable and the partial one ignored.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

import orbax.checkpoint as ocp

WHICH = ("latest", "best")


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

  def save(self, which: str, step: int, state, meta: dict) -> None:
    self._manager(which).save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))

  def restore(self, which: str, abstract_state, step: Optional[int] = None) -> tuple[Any, dict]:
    """Restores ``(state, meta)``; ``abstract_state`` gives the structure, shapes and shardings."""
    manager = self._manager(which)
    step = manager.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no {which!r} checkpoint in {os.path.join(self.root, which)}")
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
    return restored.state, restored.meta

  def read_meta(self, which: str = "latest", step: Optional[int] = None) -> Optional[dict]:
    manager = self._manager(which)
    step = manager.latest_step() if step is None else step
    if step is None:
      return None
    return manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta

  def wait(self) -> None:
    for manager in self._managers.values():
      manager.wait_until_finished()

  def close(self) -> None:
    for manager in self._managers.values():
      manager.close()

  def _manager(self, which: str):
    if which not in WHICH:
      raise ValueError(f"unknown checkpoint {which!r}; expected one of {WHICH}")
    return self._managers[which]
