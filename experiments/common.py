"""Helpers shared by the experiment scripts: config loading, provenance, matplotlib, workdir flags.

JSON files are read and written with :mod:`jsnn._io`, statistics are in :mod:`experiments.stats`.
"""

from __future__ import annotations

import datetime
import os
import shlex
import subprocess
import sys
from typing import Any, Callable, Optional, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  # ``configs`` is imported as a package from the repository root.
  sys.path.insert(0, REPO)

from jsnn import _io, cli  # noqa: E402  (no JAX import)


# -------------------------------------------------------------------------------------------------
# Configs
# -------------------------------------------------------------------------------------------------


def load_config(spec: str, overrides: Sequence[str] = ()):
  """The ConfigDict of ``spec`` with ``overrides``, parsed exactly as train.py's command line.

  ``load_config("configs/x.py:at,rho=1", ["training.rho=0.5"])`` is the config of
  ``python train.py --config configs/x.py:at,rho=1 --config.training.rho=0.5``: the same
  ``ml_collections.config_flags`` parser, so values are cast to each field's type the same way
  and an unknown key is an error.

  Args:
    spec: a config file and its optional argument; a relative path that does not exist from the
      working directory is taken from the repository root.
    overrides: ``"section.key=value"`` strings.

  Returns:
    The ConfigDict, unlocked.

  Raises:
    ValueError: naming the bad spec, key or value.
  """
  from absl import flags   # pylint: disable=import-outside-toplevel

  path, sep, arg = spec.partition(":")
  if not os.path.isabs(path) and not os.path.exists(path):
    path = os.path.join(REPO, path)
  if not os.path.exists(path):
    raise ValueError(f"config file {spec.partition(':')[0]!r} does not exist")
  for item in overrides:
    if "=" not in item:
      raise ValueError(f"override {item!r} is not of the form key=value")
  try:
    config = cli.load_config_file(f"{path}{sep}{arg}", "config", overrides)
  except (flags.Error, KeyError, AttributeError, TypeError) as e:
    if overrides:
      base = load_config(spec)
      for item in overrides:
        key = item.partition("=")[0].strip()
        close = cli.closest_key(base, key)
        if close is not None:
          hint = f"; did you mean {close!r}?" if close else ""
          raise ValueError(f"unknown config key {key!r} in override {item!r}{hint}") from e
    # A config file's own error arrives as a traceback in the message: keep its last line.
    reason = str(e).strip().splitlines()[-1]
    raise ValueError(f"cannot load config {spec!r} with overrides {list(overrides)}: "
                     f"{reason}") from e
  config.unlock()
  return config


# -------------------------------------------------------------------------------------------------
# Provenance
# -------------------------------------------------------------------------------------------------


def now() -> str:
  return datetime.datetime.now().isoformat(timespec="seconds")


def git_commit() -> Optional[str]:
  """The repository's HEAD commit (with ``+dirty`` when the tree has changes), for provenance."""
  try:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True, check=True, timeout=10).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                           text=True, check=True, timeout=10).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None
  return head + ("+dirty" if dirty else "")


def command_line() -> str:
  """The command that is running, as a user would type it (``python -m experiments.x ...``)."""
  argv = [shlex.quote(a) for a in sys.argv]
  main = sys.modules.get("__main__")
  spec = getattr(main, "__spec__", None)
  if spec is not None and spec.name:
    return " ".join(["python -m", spec.name.removesuffix(".__main__")] + argv[1:])
  return " ".join(["python"] + argv)


# -------------------------------------------------------------------------------------------------
# Plots
# -------------------------------------------------------------------------------------------------


def pyplot():
  """matplotlib.pyplot on the non-interactive Agg backend (no display needed)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def save_figure(fig, path: str, dpi: int = 120) -> None:
  """Writes ``fig`` as a PNG atomically (creating the directory) and closes it."""
  plt = pyplot()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  _io.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi), mode="wb")
  plt.close(fig)


# -------------------------------------------------------------------------------------------------
# Command lines
# -------------------------------------------------------------------------------------------------


def add_workdir_arguments(parser, *, workdir_help: str, out: str) -> None:
  """``--workdir`` (repeatable), ``--label`` (one per workdir), ``--out``: a figure command's."""
  parser.add_argument("--workdir", action="append", required=True, help=workdir_help)
  parser.add_argument("--label", action="append", default=[],
                      help="label per workdir (same label = averaged); default: the directory")
  parser.add_argument("--out", default=out, help="output directory")


def group_workdirs(workdirs: Sequence[str], labels: Sequence[str],
                   load: Callable[[str], Any]) -> list[tuple[str, list]]:
  """``load(workdir)`` for every workdir, grouped by label in first-seen order; workdirs without a
  label are labelled with their directory name."""
  labels = list(labels) + [os.path.basename(os.path.normpath(w)) for w in workdirs[len(labels):]]
  groups: dict[str, list] = {}
  for workdir, label in zip(workdirs, labels):
    groups.setdefault(label, []).append(load(workdir))
  return list(groups.items())
