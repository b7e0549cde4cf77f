"""The base class of jsnn's expected failures: the command line prints them in one line.

No imports: every floor may raise these, and the entry points catch them (:mod:`jsnn.cli`).
"""


class Error(Exception):
  """A failure with a message for the user (a bad setting, a missing or damaged file), not a bug.

  Subclasses also derive from the built-in type that describes them (``ValueError``,
  ``OSError``, ...), so code that catches those keeps working.
  """
