"""The command line's error contract, kept in one place: an expected failure is one line.

Every entry point (``train.py``, ``evaluate.py``, ``python -m experiments.<name>``) runs under
:func:`guard`, through :func:`run` (absl programs) or :func:`main_guard` (argparse ones). jsnn's own
errors (:class:`jsnn.errors.Error`), ``OSError``, ``zipfile.BadZipFile``, ``ValueError`` (a bad
setting) and absl's flag errors print ``error: <message>`` on stderr and exit with status 2;
``--debug`` or ``JSNN_DEBUG=1`` prints the traceback as well, for a bug report. Anything else is a
bug in jsnn and keeps its traceback.

No JAX import: the report and the sweep's completion checks run without one.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import logging
import os
import sys
import traceback
import zipfile
from typing import Callable, Optional, Sequence

from jsnn import errors

DEBUG_ENV = "JSNN_DEBUG"
EXIT_ERROR = 2
_TRACEBACK = "Traceback (most recent call last)"


def debug_requested(argv: Sequence[str]) -> bool:
  """Whether ``--debug`` (absl spellings included) is in ``argv`` or ``JSNN_DEBUG`` is set."""
  if os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes"):
    return True
  debug = False
  for arg in argv:
    if arg in ("--debug", "--debug=true", "--debug=True", "--debug=1"):
      debug = True
    elif arg in ("--nodebug", "--debug=false", "--debug=False", "--debug=0"):
      debug = False
  return debug


def expected_errors() -> tuple[type, ...]:
  """The exception types an entry point reports in one line."""
  from absl import flags   # pylint: disable=import-outside-toplevel
  return (errors.Error, OSError, zipfile.BadZipFile, ValueError, flags.Error)


def message(error: BaseException) -> str:
  """``error``'s message on one line.

  A config file's own exception reaches absl as a message holding its traceback; only the first
  line (which flag) and the last (what went wrong) are kept.
  """
  text = str(error).strip()
  if isinstance(error, KeyError) and len(error.args) == 1:
    text = str(error.args[0]).strip()   # str(KeyError) quotes its message
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  if any(line.startswith(_TRACEBACK) for line in lines):
    head, tail = lines[0], lines[-1]
    exc_name, sep, rest = tail.partition(": ")
    if sep and exc_name.replace(".", "").isidentifier():
      tail = rest
    text = tail if head.startswith(_TRACEBACK) else f"{head} {tail}"
  else:
    text = " ".join(lines)
  return text or type(error).__name__


class _OrbaxLeftoverLogs(logging.Filter):
  """Drops the errors logged, with their tracebacks, around a failed orbax save or restore.

  Orbax logs a failed asynchronous save (a full disk, say) in every thread it touched, asyncio
  logs the write futures that orbax dropped, and the main thread then raises the error again,
  where the entry point reports it once.
  """

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno < logging.ERROR:
      return True
    if f"{os.sep}orbax{os.sep}" in (record.pathname or ""):
      return False
    exc_info = record.exc_info if isinstance(record.exc_info, tuple) else None
    return not (exc_info and exc_info[1] is not None
                and _orbax_leftover(exc_info[1], exc_info[2]))


_QUIET_LOGS = _OrbaxLeftoverLogs()

# Orbax writes a checkpoint into ``<step>.orbax-checkpoint-tmp`` folders and renames them on commit.
_ORBAX_TMP_SUFFIX = ".orbax-checkpoint-tmp"


def _orbax_leftover(exc: BaseException, tb=None, obj=None) -> bool:
  """Whether an error printed outside the main flow is the leftover of a failed orbax operation.

  When a save or restore fails, orbax closes its asyncio loop and drops the coroutines of the
  other reads or writes: TensorStore's callbacks then fail on the closed loop, and the dropped
  coroutines' errors are printed or logged when they are collected, each with a traceback, around
  the one error that the entry point reports.
  """
  if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
    return True
  # A TensorStore write future carries no Python frames of orbax, only the path it wrote into.
  if _ORBAX_TMP_SUFFIX in str(exc):
    return True
  code = getattr(obj, "cr_code", None)
  files = [code.co_filename] if code is not None else []
  tb = tb if tb is not None else getattr(exc, "__traceback__", None)
  while tb is not None:
    files.append(tb.tb_frame.f_code.co_filename)
    tb = tb.tb_next
  return any(f"{os.sep}orbax{os.sep}" in f for f in files)


def _quiet_hooks() -> None:
  """Silences the leftovers of failed orbax operations (:func:`_orbax_leftover`).

  They reach ``sys.unraisablehook`` (a coroutine collected with its error pending, or a TensorStore
  callback) or ``sys.excepthook`` (a TensorStore callback).
  """
  if getattr(sys.excepthook, "jsnn_quiet", False):
    return
  excepthook, unraisablehook = sys.excepthook, sys.unraisablehook

  def quiet_excepthook(exc_type, exc, tb):
    # Only the loop errors: an uncaught error of the main thread keeps its traceback.
    if not (isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"):
      excepthook(exc_type, exc, tb)

  def quiet_unraisablehook(unraisable):
    if not _orbax_leftover(unraisable.exc_value, unraisable.exc_traceback, unraisable.object):
      unraisablehook(unraisable)

  quiet_excepthook.jsnn_quiet = True
  sys.excepthook, sys.unraisablehook = quiet_excepthook, quiet_unraisablehook


@contextlib.contextmanager
def guard(debug: bool = False):
  """Runs the body of an entry point: an expected error exits 2 with ``error: <message>``."""
  if not debug:
    # Left installed on exit: orbax's threads may still log while the interpreter shuts down.
    for name in ("absl", "asyncio"):
      logging.getLogger(name).addFilter(_QUIET_LOGS)
    _quiet_hooks()
  try:
    yield
  except expected_errors() as e:   # evaluated only when something is raised
    if debug:
      traceback.print_exc()
    print(f"error: {message(e)}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_ERROR) from None


def main_guard(main: Callable[[Optional[list]], object]) -> Callable[[Optional[list]], object]:
  """Decorates an argparse ``main(argv=None)``: :func:`guard` around it, ``--debug`` handled."""

  @functools.wraps(main)
  def wrapped(argv: Optional[Sequence[str]] = None):
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    argv = [a for a in argv if a != "--debug"]
    with guard(debug):
      return main(argv)

  return wrapped


# The config flags defined through define_config_file: name -> default spec.
_CONFIG_FLAGS: dict = {}


def define_config_file(name: str, default: Optional[str], help_string: str, **kwargs):
  """``config_flags.DEFINE_config_file`` whose errors :func:`run` reports in one line.

  A default config is loaded, with the ``--<name>.<key>=`` overrides of the command line, as the
  flag is defined: its errors arise at import, before absl parses anything.
  """
  from ml_collections import config_flags   # pylint: disable=import-outside-toplevel
  _CONFIG_FLAGS[name] = default
  with guard(debug_requested(sys.argv[1:])):
    try:
      return config_flags.DEFINE_config_file(name, default, help_string, **kwargs)
    except _LOAD_ERRORS as e:
      raise _config_error(sys.argv, name, e) from e


def run(main: Callable[[list], object]) -> None:
  """``absl.app.run(main)`` with flag errors, config errors and ``main`` under :func:`guard`.

  The program defines its config flags with :func:`define_config_file` and a boolean ``--debug``
  flag (so that absl accepts it).
  """
  from absl import app   # pylint: disable=import-outside-toplevel

  debug = debug_requested(sys.argv[1:])

  def guarded_main(argv):
    with guard(debug):
      return main(argv)

  app.run(guarded_main, flags_parser=functools.partial(_parse_flags, debug=debug))


# What ml_collections lets through from a config file or an override, besides absl's flag errors:
# an unknown key (AttributeError, KeyError) or the config file's own failure.
_LOAD_ERRORS = (AttributeError, KeyError, TypeError, ValueError, ImportError)


def _parse_flags(argv: list, *, debug: bool) -> list:
  """absl's flag parsing, with every error in one line and each config file loaded."""
  from absl import flags   # pylint: disable=import-outside-toplevel
  with guard(debug):
    try:
      rest = flags.FLAGS(argv)
    except flags.Error:
      raise
    except OSError as e:
      # A config file that failed to load, touched by the --<name>.<key> overrides.
      for name in _CONFIG_FLAGS:
        spec = _flag_argument(argv, name) or _CONFIG_FLAGS[name]
        if spec:
          _check_config_file(spec, name, e)
      raise
    except _LOAD_ERRORS as e:
      raise _config_error(argv, None, e) from e
    for name in _CONFIG_FLAGS:
      _check_loaded(flags.FLAGS[name], name)
  return rest


def _config_error(argv: Sequence[str], name: Optional[str], error: BaseException) -> Exception:
  """The one-line error for ``error``, raised while loading config flag ``name`` (None: any)."""
  for flag_name in [name] if name else list(_CONFIG_FLAGS):
    problem = _unknown_override(argv, flag_name)
    if problem:
      return errors.Error(problem)
  return errors.Error(f"cannot load the config: {message(error)}")


def _check_loaded(flag, name: str) -> None:
  """ml_collections defers a config file's load error to the config's first use: raise it now."""
  from ml_collections import config_flags   # pylint: disable=import-outside-toplevel
  try:
    hasattr(flag.value, "keys")   # a config that failed to load raises OSError on any access
  except OSError as e:
    _check_config_file(config_flags.get_config_filename(flag), name, e)
    raise


def _check_config_file(spec: str, name: str, error: OSError) -> None:
  """Raises the one-line error for config ``spec`` of flag ``name`` that failed with ``error``."""
  path = spec.split(":", 1)[0]
  if not os.path.exists(path):
    raise errors.Error(f"config file {path!r} (--{name}={spec}) does not exist; give the path "
                       f"of a config file, e.g. --{name}=configs/smoke.py") from error
  raise errors.Error(f"cannot load config file {path!r} (--{name}={spec}): "
                     f"{message(error.__cause__ or error)}") from error


def _unknown_override(argv: Sequence[str], name: str) -> Optional[str]:
  """The message for the first ``--<name>.<key>=...`` of ``argv`` whose key does not exist."""
  spec = _flag_argument(argv, name) or _CONFIG_FLAGS.get(name)
  prefix = f"--{name}."
  overrides = [a for a in argv if a.startswith(prefix)]
  if not spec or not overrides:
    return None
  try:
    base = load_config_file(spec, name)
  except Exception:  # noqa: BLE001 - the file's own error is reported instead
    return None
  for arg in overrides:
    key = arg[len(prefix):].split("=", 1)[0]
    close = closest_key(base, key)
    if close is not None:
      hint = f"; did you mean {close!r}?" if close else ""
      return f"unknown config key {key!r} in {arg}{hint} (configs/default.py lists every key)"
  return None


def load_config_file(spec: str, name: str = "config", overrides: Sequence[str] = ()):
  """The config of ``--<name>=<spec>`` with ``--<name>.<override>`` applied, as absl parses it."""
  from absl import flags   # pylint: disable=import-outside-toplevel
  from ml_collections import config_flags   # pylint: disable=import-outside-toplevel
  argv = ["jsnn", f"--{name}={spec}"] + [f"--{name}.{item.strip()}" for item in overrides]
  flag_values = flags.FlagValues()
  # sys_argv: the config flag looks for its overrides there, not in sys.argv.
  config_flags.DEFINE_config_file(name, None, flag_values=flag_values, lock_config=True,
                                  sys_argv=argv)
  flag_values(argv)
  return flag_values[name].value


def closest_key(config, dotted: str) -> Optional[str]:
  """None if ``config`` has the dotted key; else the closest existing key ("" if none is close)."""
  node, path, parts = config, [], dotted.split(".")
  for i, part in enumerate(parts):
    keys = list(node.keys()) if hasattr(node, "keys") else []
    if part not in keys:
      close = difflib.get_close_matches(part, keys, n=1)
      return ".".join(path + close + parts[i + 1:]) if close else ""
    node, path = node[part], path + [part]
  return None


def _flag_argument(argv: Sequence[str], name: str) -> Optional[str]:
  """The last value given to ``--name`` in ``argv`` (``--name=v`` or ``--name v``), or None."""
  value = None
  for i, arg in enumerate(argv):
    for dashes in ("--", "-"):
      if arg.startswith(f"{dashes}{name}="):
        value = arg.split("=", 1)[1]
      elif arg == f"{dashes}{name}" and i + 1 < len(argv):
        value = argv[i + 1]
  return value
