"""What an evaluation writes: the Markdown table, the CSV, atomic JSON and per-example flags."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
import zlib
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from jsnn import attacks
from jsnn._io import FLAGS_FILE, atomic_write  # noqa: F401  (FLAGS_FILE re-exported)
from jsnn._io import ROBUSTNESS_FILE as RESULTS_FILE  # noqa: F401  (re-exported)
from jsnn.evaluation.settings import STANDARD, WORST_CASE

CSV_FILE = "robustness.csv"
# Table 1's column headers.
DISPLAY_NAMES = {"clean": "Clean", "fgsm": "FGSM", "apgd-ce": "APGD-CE", "apgd-dlr": "APGD-DLR",
                 "standard": "Standard"}


def display_name(name: str) -> str:
  return DISPLAY_NAMES.get(name, name if name == WORST_CASE else name.upper())


def table_order(names: Sequence[str]) -> list[str]:
  """Table 1's columns first, in its order; other attacks after, as given."""
  paper = attacks.attack_names()
  return ([n for n in paper if n in names] + [n for n in names if n not in paper])


def format_table(accuracies: Mapping[str, float]) -> str:
  """A Markdown table: one column per attack (in the given order), accuracies in % to 2 decimals."""
  names = list(accuracies)
  cells = [f"{100 * accuracies[n]:.2f}" for n in names]
  widths = [max(len(display_name(n)), len(c)) for n, c in zip(names, cells)]
  header = "| " + " | ".join(display_name(n).rjust(w) for n, w in zip(names, widths)) + " |"
  rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
  row = "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"
  return "\n".join([header, rule, row])


def eps255(epsilon: float) -> str:
  return f"{epsilon * 255:.4g}/255"


def write_json(path: str, obj) -> None:
  """Writes ``obj`` atomically: a reader, or a killed run, never sees half a file."""
  atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2) + "\n"))


def read_json(path: str, what: str) -> Optional[dict]:
  """The JSON object at ``path`` (None if absent); an unreadable one is an error, left untouched."""
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      obj = json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f"cannot read the existing {what} {path} ({e}); move it away to start "
                     "afresh (it is left untouched)") from e
  if not isinstance(obj, dict):
    raise ValueError(f"{path} is not a {what} written by jsnn (a JSON object); move it away to "
                     "start afresh (it is left untouched)")
  return obj


def read_flags(path: str) -> dict[str, np.ndarray]:
  """The stored per-example flags (``{}`` if absent); an unreadable file is an error."""
  if not os.path.exists(path):
    return {}
  try:
    with np.load(path, allow_pickle=False) as archive:
      return {k: archive[k] for k in archive.files}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
    raise ValueError(f"cannot read the existing per-example flags {path} ({e}: truncated or "
                     "damaged?); move it away to start afresh (it is left untouched)") from e


def write_flags(path: str, flags: Mapping[str, np.ndarray]) -> None:
  atomic_write(path, lambda f: np.savez_compressed(f, **flags), mode="wb")


def settings_fingerprint(settings: Mapping[str, Any]) -> str:
  """A short hash of a result's settings: a stored result is reused only under the same one."""
  return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


CSV_COLUMNS = ("attack", "accuracy", "correct", "total", "epsilon", "steps", "step_size", "loss",
               "norm", "seed", "wall_time_s", "forward_passes_per_image",
               "backward_passes_per_image", "checkpoint", "checkpoint_step", "surrogate",
               "queries_per_image", "gradient_estimator", "attacked")


def csv_table(results, order) -> str:
  """``robustness.csv``: one row per attack in ``order``, the cascade's stages, the worst case."""
  buf = io.StringIO()
  writer = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
  writer.writeheader()
  for name in order:
    writer.writerow({**results["attacks"][name], "attack": name})
  cascade = results.get("cascades", {}).get(STANDARD)
  if cascade:
    for name in cascade["order"]:
      writer.writerow({**cascade["stages"][name], "attack": f"{STANDARD}/{name}"})
    writer.writerow({**{k: v for k, v in cascade.items() if k not in ("stages", "order")},
                     "attack": STANDARD})
  writer.writerow({"attack": WORST_CASE, **{k: v for k, v in results["worst_case"].items()
                                            if k != "attacks"}})
  return buf.getvalue()
