"""The report as a whole: find the results, write every section in order, publish atomically.

The figures are drawn into a temporary directory and moved into place only when the whole report
has been built, so a results file that cannot be read leaves the previous report and figures as
they were.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import tempfile
from typing import Sequence

from experiments import common, results, rows
from experiments.report import certified, frontier, mid, scripts, tables
from experiments.report.markdown import Report, anchor, fmt_seconds
from jsnn import _io, cli

PAPER_NUMBERS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "paper_numbers.json")


def discover(paths: Sequence[str]) -> dict:
  """Sweep roots, Figure 1, Theorem 3.1, suites, frontier and certification results under
  ``paths`` (two levels deep); the last two as ``(path, label relative to its root)``."""
  found = {"sweeps": [], "figure1": [], "theorem31": [], "suites": [], "frontier": [],
           "certification": []}
  for base in paths:
    candidates = [base] + sorted(glob.glob(os.path.join(base, "*"))) + sorted(
        glob.glob(os.path.join(base, "*", "*")))
    for d in candidates:
      if not os.path.isdir(d):
        continue
      if os.path.exists(os.path.join(d, results.RESULTS_FILE)):
        found["sweeps"].append(os.path.abspath(d))
      if os.path.exists(os.path.join(d, "suites.json")):
        found["suites"].append(os.path.abspath(os.path.join(d, "suites.json")))
      if os.path.exists(os.path.join(d, "figure1.json")):
        found["figure1"].append(os.path.abspath(os.path.join(d, "figure1.json")))
      found["theorem31"] += [os.path.abspath(p) for p in
                             sorted(glob.glob(os.path.join(d, "theorem31_*.json")))]
      label = os.path.relpath(d, base) if d != base else os.path.basename(os.path.abspath(d))
      if frontier.is_candidate(d):
        found["frontier"].append((os.path.abspath(d), label))
      if os.path.exists(os.path.join(d, certified.CERTIFY_FILE)):
        found["certification"].append((os.path.abspath(os.path.join(d, certified.CERTIFY_FILE)),
                                       label))
  out = {k: list(dict.fromkeys(v)) for k, v in found.items()}
  for k in ("frontier", "certification"):
    # A directory under two roots is one model: the first label found is kept.
    labels = {}
    for path, label in found[k]:
      labels.setdefault(path, label)
    out[k] = list(labels.items())
  return out


def build(paths: Sequence[str], out_dir: str) -> str:
  """Writes ``<out_dir>/REPRODUCTION.md`` (and figures) from the results under ``paths``.

  Raises:
    ValueError: ``out_dir`` is a file, there are no results under ``paths``, or a results file
      cannot be read; nothing is written then.
  """
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise ValueError(f"--out {out_dir!r} is a file, not a directory; name the directory the "
                     f"report and its figures go to (it is created if missing)")
  # Before any figure is written: the figures themselves would make the tree look changed.
  commit = common.git_commit() or "unknown"
  paper = _io.read_json(PAPER_NUMBERS)
  found = discover(paths)
  if not any(found.values()):
    raise ValueError(f"no results found in {', '.join(map(repr, paths))} (no results.json, "
                     f"suites.json, figure1.json, theorem31_*.json, certification.json or "
                     f"frontier robustness.json up to two levels deep); run "
                     f"the experiments first (python -m experiments.sweep ...) or point --results "
                     f"at their output")
  staging = tempfile.mkdtemp(prefix="jsnn-report-")
  try:
    return _build(paths, out_dir, commit, paper, found, staging)
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def _build(paths, out_dir, commit, paper, found, staging) -> str:
  rep = Report(out_dir)
  body = Report(out_dir)
  rep.fig_dir = body.fig_dir = staging

  for path in found["figure1"][:1]:
    scripts.section_figure1(body, path)
  scripts.section_theorem31(body, found["theorem31"])

  # One section per (table, protocol): reduced and full runs are never averaged together.
  groups, seen = {}, set()
  mid_rows = {"rows": [], "roots": []}
  for root in found["sweeps"]:
    results = _io.read_json(os.path.join(root, "results.json"))
    for row in results.get("rows", []):
      if row.get("table") == mid.TABLE:
        mid_rows["rows"].append(row)
        if root not in mid_rows["roots"]:
          mid_rows["roots"].append(root)
        continue
      if row.get("table") not in paper["tables"]:
        continue
      key = (row["table"], row.get("protocol") or "")
      g = groups.setdefault(key, {"rows": [], "roots": [], "results": [], "duplicates": []})
      if (key, row["id"]) in seen:
        g["duplicates"].append(f"{row['id']} ({root})")
        continue
      seen.add((key, row["id"]))
      g["rows"].append(row)
      if root not in g["roots"]:
        g["roots"].append(root)
        g["results"].append(results)
  protocol_order = {"full": 0, "reduced": 1}
  for table in paper["tables"]:
    for key in sorted((k for k in groups if k[0] == table),
                      key=lambda k: protocol_order.get(k[1], 2)):
      g = groups[key]
      tables.section_table(body, paper, table, g["rows"], g["roots"], g["results"],
                           protocol=key[1], duplicates=g["duplicates"])
  table_keys = {k[0] for k in groups}
  if mid_rows["rows"]:
    mid.section(body, mid_rows["rows"], mid_rows["roots"], paper)
    finished = [r for r in mid_rows["rows"] if r.get("accuracies")]
    body.summary.append((
        "Mid scale", f"{len(finished)} of {len(mid_rows['rows'])} runs finished", "mid",
        ", ".join(str(x) for x in sorted({r["seed"] for r in finished})) or "—",
        fmt_seconds(sum(r.get("wall_s") or 0 for r in finished) or None),
        anchor(rows.MID_TITLE)))
  for path in found["suites"]:
    scripts.section_suites(body, path)
  frontier.section(body, found["frontier"])
  certified.section(body, found["certification"])
  tables.section_not_run(body, paper, set(table_keys))
  for n in (3, 4, 5):
    if not any(item.startswith(f"Figure {n} ") for item, *_ in body.summary):
      body.summary.append((f"Figure {n}", "not run (needs the table runs)", "—", "—", "—",
                           anchor(tables.NOT_RUN_TITLE)))
  rep.summary = body.summary

  rep.add("# Reproducing “Robust Stable Spiking Neural Networks” (Ding et al., ICML 2024)", "")
  rep.add(f"Generated by `{common.command_line()}` on {common.now()} (git {commit}) from "
          + ", ".join(f"`{rep.rel(p)}`" for p in paths)
          + "; the paper's numbers are `experiments/paper_numbers.json`. Do not edit by hand: "
            "rerun the command after more runs finish.", "")
  rep.add("| item | what we ran | scale | seeds | wall time |", "|---|---|---|---|---|")
  for item, what, scale, seeds, wall, where in rep.summary:
    rep.add(f"| [{item}]({where}) | {what} | {scale} | {seeds} | {wall} |")
  rep.add("| Figure 2 | the training diagram; nothing to measure | — | — | — |", "")
  rep.lines += body.lines
  # Every input has been read: publish the figures, then the report that links them.
  fig_dir = os.path.join(out_dir, "figures")
  os.makedirs(out_dir, exist_ok=True)
  if os.listdir(staging):
    os.makedirs(fig_dir, exist_ok=True)
  for name in sorted(os.listdir(staging)):
    with open(os.path.join(staging, name), "rb") as f:
      png = f.read()
    _io.atomic_write(os.path.join(fig_dir, name), lambda f: f.write(png), mode="wb")
  path = os.path.join(out_dir, "REPRODUCTION.md")
  _io.atomic_write(path, lambda f: f.write("\n".join(rep.lines).rstrip() + "\n"))
  return path


@cli.main_guard
def main(argv=None):
  parser = argparse.ArgumentParser(description="Writes docs/REPRODUCTION.md and its figures from "
                                   "the results files; nothing is typed by hand.")
  parser.add_argument("--results", action="append", default=[],
                      help="directory to scan for results (repeatable; default: results)")
  parser.add_argument("--out", default="docs", help="output directory of REPRODUCTION.md")
  args = parser.parse_args(argv)
  path = build(args.results or ["results"], args.out)
  print(f"wrote {path}")
