"""File writes that a reader, or a killed writer, never sees half done; checks before writing."""

import os
import tempfile
from typing import Any, Callable, Sequence

from jsnn import errors


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
