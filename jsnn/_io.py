"""File writes that a reader, or a killed writer, never sees half done; checks before writing.

Also the names of the files a workdir holds, defined once for the library and the experiments
(this module imports no JAX, so the report can read them on a machine without one).
"""

import json
import os
import tempfile
from typing import Any, Callable, Optional, Sequence

from jsnn import errors

# The files of a workdir, by what writes them.
METRICS_FILE = "metrics.jsonl"          # the training loop: one line per epoch
ROBUSTNESS_FILE = "robustness.json"     # jsnn.evaluation.evaluate_checkpoint
FLAGS_FILE = "robustness_flags.npz"     # its per-example flags
SWEEP_FILE = "eps_sweep.json"           # jsnn.evaluation.sweep_epsilon (Figure 3)
FACTORS_FILE = "dlif_factors.json"      # experiments.figure4 (the trained DLIF factors)


class NotWritable(errors.Error, OSError):
  """A directory (or file) that a run must write into cannot be written."""


def atomic_write(path: str, write: Callable[[Any], None], mode: str = "w") -> None:
  """Writes to a temporary file in the same directory, then renames it over ``path``."""
  tmp = f"{path}.tmp{os.getpid()}"
  try:
    with open(tmp, mode) as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def check_writable(directories: Sequence[str], files: Sequence[str] = (), *,
                   todo: str = "") -> None:
  """Raises :class:`NotWritable` unless files can be created in ``directories`` and appended to.

  A directory that does not exist yet is checked where it would be created, at its nearest
  existing parent; ``files`` that do not exist are skipped. Nothing is changed: the probe file is
  removed again and nothing is appended.

  Args:
    directories: directories the caller will write into.
    files: existing files it will append to.
    todo: what the user can do about it, appended to the message.
  """
  for directory in directories:
    probe = os.path.abspath(directory)
    while not os.path.lexists(probe):
      probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
      raise NotWritable(f"{probe} is a file, not a directory{todo}")
    try:
      fd, tmp = tempfile.mkstemp(dir=probe, prefix=".jsnn-write-probe-")
      os.close(fd)
      os.remove(tmp)
    except OSError as e:
      what = (f"cannot write into {probe}" if probe == os.path.abspath(directory) else
              f"cannot create {directory}: cannot write into {probe}")
      raise NotWritable(f"{what} ({e.strerror or e}){todo}") from e
  for path in files:
    if os.path.exists(path):
      try:
        open(path, "a").close()
      except OSError as e:
        raise NotWritable(f"cannot write to {path} ({e.strerror or e}){todo}") from e


def write_json(path: str, obj) -> None:
  """Writes ``obj`` as indented JSON atomically, creating the directory first.

  NumPy and JAX scalars and arrays are written as numbers and lists.
  """
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, default=_json_default) + "\n"))


def read_json(path: str) -> Optional[Any]:
  """The JSON at ``path``, or None when there is no such file; a damaged one raises, naming it."""
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except ValueError as e:   # JSONDecodeError, UnicodeDecodeError
    raise ValueError(f"cannot read {path}: not valid JSON ({e}); it is left untouched: restore "
                     f"it, or move it away and rerun the command that wrote it") from e


def _json_default(obj):
  # NumPy and JAX scalars and arrays, without importing either here.
  if hasattr(obj, "tolist"):
    return obj.tolist()
  raise TypeError(f"cannot write {type(obj).__name__} as JSON")
