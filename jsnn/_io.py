"""File writes that a reader, or a killed writer, never sees half done."""

import os
from typing import Any, Callable


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
