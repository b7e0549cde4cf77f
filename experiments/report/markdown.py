"""What every section of the report is written with: the document, number formats, links."""

from __future__ import annotations

import math
import os
from typing import Optional

# The paper's attack columns, in its order, as its tables head them.
DISPLAY = {"clean": "Clean", "fgsm": "FGSM", "pgd7": "PGD7", "pgd10": "PGD10", "pgd20": "PGD20",
           "pgd40": "PGD40", "apgd-ce": "APGD-CE", "apgd-dlr": "APGD-DLR"}


class Report:
  """Accumulates Markdown lines, the figures written beside them and the summary's rows."""

  def __init__(self, out_dir: str):
    self.out_dir = out_dir
    self.fig_dir = os.path.join(out_dir, "figures")
    self.lines: list[str] = []
    self.summary: list[tuple] = []   # (item, what, scale, seeds, wall, where)

  def add(self, *lines: str):
    self.lines.extend(lines)

  def figure(self, name: str) -> tuple[str, str]:
    """``(path to write, link relative to the report)`` of a figure called ``name``."""
    os.makedirs(self.fig_dir, exist_ok=True)
    return os.path.join(self.fig_dir, name), f"figures/{name}"

  def rel(self, path: str) -> str:
    """``path`` relative to the report's directory, as a link from the report reads it."""
    return os.path.relpath(path, self.out_dir)


def fmt(x: Optional[float], digits: int = 2) -> str:
  return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def fmt_signed(x: Optional[float], digits: int = 2) -> str:
  return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.{digits}f}"


def fmt_seconds(s: Optional[float]) -> str:
  if s is None:
    return "—"
  if s < 120:
    return f"{s:.0f} s"
  if s < 7200:
    return f"{s / 60:.1f} min"
  return f"{s / 3600:.2f} h"


def fmt_stat(stat) -> str:
  """A :class:`analysis.Stat`: ``mean ± std``, the mean alone for one value, ``—`` for none."""
  if stat is None or not stat.n:
    return "—"
  return fmt(stat.mean) if stat.n == 1 else f"{fmt(stat.mean)} ± {fmt(stat.std)}"


def cell(ours, paper: Optional[float]) -> str:
  """``ours / paper / ours − paper`` for a :class:`analysis.Stat`; missing parts are ``—``."""
  diff = ours.mean - paper if ours is not None and ours.n and paper is not None else None
  return f"{fmt_stat(ours)} / {fmt(paper)} / {fmt_signed(diff)}"


def attack_name(name: str) -> str:
  """An attack's name as a heading writes it: the paper's as its tables do (:data:`DISPLAY`),
  others like ``apgd-ce100`` → ``APGD-CE-100``, ``sa-pgd100`` → ``SA-PGD-100``, ``square1000``
  → ``Square-1000``."""
  if name in DISPLAY:
    return DISPLAY[name]
  head = name.rstrip("0123456789")
  count = name[len(head):]
  head = "Square" if head == "square" else head.upper()
  return f"{head}-{count}" if count else head


def model_text(model: dict) -> str:
  """``vgg5 at width ×0.125, T = 4``, from a results file's ``model`` section."""
  return (f"{model.get('name', '—')} at width ×{model.get('width', '—')}, "
          f"T = {model.get('time_steps', '—')}")


def anchor(title: str) -> str:
  """The link target GitHub gives a heading ``title``."""
  keep = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -")
  return "#" + keep.strip().replace(" ", "-")
