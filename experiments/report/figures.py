"""Figures 3–5 for a table's runs: the ε sweep, the trained DLIF factors, the training curves.

Which settings each figure draws is :attr:`experiments.rows.Table.figures`. The statistics come
from the figure modules' JSON readers (:func:`experiments.figure3.group_stats`, ...), the plots
from their matplotlib functions; neither needs JAX.
"""

from __future__ import annotations

import os

import numpy as np

from experiments import figure3, figure4, figure5
from experiments import rows as rows_lib
from experiments.report import reading
from experiments.report.markdown import Report, anchor, fmt, fmt_seconds
from jsnn import _io


class _Runs:
  """A table's runs by setting, and where each run's files are."""

  def __init__(self, rows: list[dict], roots: list[str]):
    self.root_of = {}
    for root in roots:
      for r in rows:
        if os.path.isdir(os.path.join(root, r["id"])):
          self.root_of[r["id"]] = root
    self.by_setting = {}
    for r in rows:
      self.by_setting.setdefault(r["setting"], []).append(r)
    self.label = {r["setting"]: r.get("label", r["setting"]) for r in rows}

  def paths(self, setting: str, key: str) -> list[str]:
    """The ``key`` file (``eps_sweep``, ``dlif_factors``, ``metrics``) of each run of a setting."""
    return [os.path.join(self.root_of[r["id"]], r["files"][key])
            for r in self.by_setting.get(setting, [])
            if r.get("files", {}).get(key) and r["id"] in self.root_of]


def section_figures(rep: Report, table: str, rows: list[dict], roots: list[str]) -> None:
  """Figures 3–5 for a table's runs (the settings of ``rows.TABLES[table].figures``)."""
  settings = rows_lib.TABLES[table].figures
  runs = _Runs(rows, roots)
  protocol = rows[0].get("protocol") if rows else None
  # The mid table has only the mid protocol: "mid", not "mid_mid".
  tag = f"{table}_{protocol}" if protocol and protocol != table else table
  _figure3(rep, settings.figure3, runs, tag, protocol)
  _figure4(rep, settings.figure4, runs, tag, protocol)
  _figure5(rep, settings.figure5, runs, tag, protocol)


def _figure3(rep: Report, settings, runs: _Runs, tag: str, protocol) -> None:
  groups = [{"label": runs.label[s], "sweeps": [figure3.load_sweep(os.path.dirname(p))
                                                for p in runs.paths(s, "eps_sweep")]}
            for s in settings if runs.paths(s, "eps_sweep")]
  title = f"Figure 3 ({tag}): PGD-10 accuracy and MS-MPPD against ε"
  rep.add(f"### {title}", "")
  if not groups:
    rep.add("Not run yet for this table (the sweep driver runs it for "
            f"{', '.join(settings)}).", "")
    return
  target, link = rep.figure(f"figure3_{tag}.png")
  figure3.plot(groups, target)
  rep.add(f"![Figure 3, {tag}]({link})", "")
  rep.add("| ε (/255) | " + " | ".join(f"{g['label']}: accuracy % / MS-MPPD" for g in groups)
          + " |", "|---:|" + "---:|" * len(groups))
  stats = [(figure3.group_stats(g["sweeps"], "accuracy"),
            figure3.group_stats(g["sweeps"], "ms_mppd")) for g in groups]
  for eps in stats[0][0]["epsilon_255"]:
    cells = []
    for acc, mppd in stats:
      j = acc["epsilon_255"].index(eps) if eps in acc["epsilon_255"] else None
      cells.append("—" if j is None else f"{fmt(100 * acc['mean'][j])} / {mppd['mean'][j]:.3g}")
    rep.add(f"| {eps:g} | " + " | ".join(cells) + " |")
  rep.add("")
  rep.add("**Honest reading.** " + reading.figure3_reading(groups, stats), "")
  sweeps = [r for s in settings for r in runs.by_setting.get(s, [])
            if r.get("files", {}).get("eps_sweep")]
  rep.summary.append((f"Figure 3 ({tag})", f"ε sweep of {len(sweeps)} runs", protocol or "—",
                      ", ".join(str(x) for x in sorted({r["seed"] for r in sweeps})),
                      fmt_seconds(sum(r.get("sweep_wall_s") or 0 for r in sweeps) or None),
                      anchor(title)))


def _figure4(rep: Report, settings, runs: _Runs, tag: str, protocol) -> None:
  summaries, names = [], []
  for s in settings:
    found = [_io.read_json(p) for p in runs.paths(s, "dlif_factors")]
    if found:
      mean = np.mean([f["factors"] for f in found], axis=0).tolist()
      summaries.append(figure4.summarise(mean))
      names.append(f"{runs.label[s]} (mean of {len(found)})")
  title = f"Figure 4 ({tag}): trained DLIF factors"
  rep.add(f"### {title}", "")
  if not summaries:
    rep.add("No DLIF factors yet.", "")
    return
  rep.summary.append((f"Figure 4 ({tag})", "DLIF factors of " + ", ".join(names),
                      protocol or "—", "as the table", "from the table's runs", anchor(title)))
  target, link = rep.figure(f"figure4_{tag}.png")
  figure4.plot(summaries, names, target)
  rep.add(f"![Figure 4, {tag}]({link})", "")
  rep.add("| run | mean factor | min | max | mean over layers, per t |",
          "|---|---:|---:|---:|---|")
  for run, name in zip(summaries, names):
    rep.add(f"| {name} | {run['mean']:.4f} | {run['min']:.4f} | {run['max']:.4f} | "
            + ", ".join(f"{x:.3f}" for x in run["mean_over_layers"]) + " |")
  if len(summaries) >= 2:
    rep.add("", reading.figure4_reading(summaries, names))
  rep.add("")


def _figure5(rep: Report, settings, runs: _Runs, tag: str, protocol) -> None:
  groups = []
  for s in settings:
    curves = [figure5.load_curves(os.path.dirname(p)) for p in runs.paths(s, "metrics")]
    if curves:
      groups.append({"label": runs.label[s], "curves": curves})
  title = f"Figure 5 ({tag}): CE and MS-MPPD over training"
  rep.add(f"### {title}", "")
  if not groups:
    rep.add("No training curves yet.", "")
    return
  rep.summary.append((f"Figure 5 ({tag})", "training curves of " + ", ".join(
      g["label"] for g in groups), protocol or "—", "as the table", "from the table's runs",
      anchor(title)))
  target, link = rep.figure(f"figure5_{tag}.png")
  figure5.plot(groups, target)
  rep.add(f"![Figure 5, {tag}]({link})", "")
  rep.add("| run | final CE | final MS-MPPD |", "|---|---:|---:|")
  finals = []
  for g in groups:
    ce = figure5.group_stats(g["curves"], "ce")
    mppd = (figure5.group_stats(g["curves"], "ms_mppd")
            if all("ms_mppd" in c for c in g["curves"]) else None)
    finals.append((g["label"], ce["mean"][-1] if ce["mean"] else None,
                   mppd["mean"][-1] if mppd and mppd["mean"] else None))
    rep.add(f"| {g['label']} (n={len(g['curves'])}) | {fmt(finals[-1][1], 4)} | "
            f"{'—' if finals[-1][2] is None else f'{finals[-1][2]:.4g}'} |")
  if len(finals) >= 2 and finals[0][2] and finals[-1][2]:
    rep.add("", reading.figure5_reading(finals))
  rep.add("")
