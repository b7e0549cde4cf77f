"""How often jit traced a function: the public way to see a recompilation (no private JAX API)."""

from __future__ import annotations

import functools
from typing import Callable


def counting_traces(fn: Callable) -> Callable:
  """Wraps ``fn`` so that ``wrapped.count`` says how often it ran in Python.

  Under ``jax.jit`` the Python body runs once per trace, so the count is the number of
  compilations of the jitted function (a cached call does not reach Python).
  """

  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    wrapped.count += 1
    return fn(*args, **kwargs)

  wrapped.count = 0
  return wrapped
