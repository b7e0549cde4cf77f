"""The report's readings: sentences generated from the numbers, never typed by hand.

Each function takes what :mod:`experiments.report.analysis` (or a figure's statistics) computed
and returns text; the section modules place it.
"""

from __future__ import annotations

from typing import Collection, Sequence

from experiments import rows as rows_lib
from experiments.report import analysis
from experiments.report.markdown import DISPLAY, fmt, fmt_signed


def honest_reading(table: str, stats: dict, paper_rows: dict, columns: Sequence[str],
                   rows: Sequence[dict], at_chance: Collection[str] = ()) -> list[str]:
  """Sentences generated from the numbers: the scale gap, then each comparison of the table's.

  Args:
    table: the table's key (``rows.TABLES``).
    stats: ``{setting: {attack: Stat}}`` of the runs that learned.
    paper_rows: the table's rows in paper_numbers.json.
    columns: the attacks shown.
    rows: the runs behind ``stats``.
    at_chance: settings with runs left out because they stayed at chance; a comparison that
      loses a side to them says so instead of disappearing.
  """
  del rows   # the comparisons read the statistics only
  spec = rows_lib.TABLES[table]
  lines = []
  if not stats:
    return ["No results yet."]
  clean = [st["clean"].mean for st in stats.values() if "clean" in st]
  paper_clean = [r["values"]["clean"] for k, r in paper_rows.items() if k in stats]
  if clean and paper_clean:
    gap = analysis.mean(paper_clean) - analysis.mean(clean)
    lines.append(
        f"Scale: our clean accuracy is {fmt(min(clean), 1)}–{fmt(max(clean), 1)}% against the "
        f"paper's {fmt(min(paper_clean), 1)}–{fmt(max(paper_clean), 1)}% for the same rows "
        f"({fmt(gap, 1)} points lower on average)"
        + (", so absolute numbers are not comparable with the paper's; compare rows within "
           "this table." if gap > 5 else "; absolute numbers are comparable with the paper's."))
  robust = [a for a in columns if a != "clean"]
  ns = sorted({st[a].n for st in stats.values() for a in st})
  if ns and max(ns) < 2:
    lines.append("One seed per row: no standard deviations, so no difference below can be told "
                 "apart from seed noise.")
  for comparison in spec.comparisons:
    label, a, b = comparison.label, comparison.baseline, comparison.other
    parts, beyond, resolved = [], 0, 0
    for attack in ["clean"] + robust:
      c = analysis.compare(stats, a, b, attack)
      if c is None:
        continue
      delta, spread, na, nb = c
      resolved += 1
      is_beyond = na > 1 and nb > 1 and abs(delta) > spread
      beyond += is_beyond and attack != "clean"
      pa, pb = (paper_rows.get(a, {}).get("values", {}).get(attack),
                paper_rows.get(b, {}).get("values", {}).get(attack))
      paper_delta = f", paper {fmt_signed(pb - pa)}" if pa is not None and pb is not None else ""
      parts.append(f"{DISPLAY[attack]} {fmt_signed(delta)}{' *' if is_beyond else ''}"
                   f"{paper_delta}")
    if not resolved:
      lost = [s for s in (a, b) if s in at_chance and s not in stats]
      if lost:
        lines.append(f"{label}: not compared — every run of {' and '.join(lost)} stayed at "
                     "chance.")
      continue
    robust_deltas = [analysis.compare(stats, a, b, x) for x in robust]
    robust_deltas = [d[0] for d in robust_deltas if d is not None]
    direction = ("higher" if robust_deltas and min(robust_deltas) > 0 else
                 "lower" if robust_deltas and max(robust_deltas) < 0 else "mixed")
    verdict = (f"robust accuracy {direction} under every attack" if direction != "mixed" else
               "robust accuracy higher under some attacks and lower under others")
    verdict += (f"; {beyond} of {len(robust_deltas)} robust differences beyond one std (*)"
                if beyond else "; no robust difference beyond one std")
    lines.append(f"{label}: {verdict} ({'; '.join(parts)} percentage points).")
  lines.append("A difference counts as beyond one std (*) when both rows have ≥ 2 seeds and "
               "|Δ| exceeds the larger of the two rows' standard deviations; that is a weak "
               "criterion, not a significance test.")
  if spec.claims:
    lines.append(spec.claims)
  return lines


def at_chance_reading(at_chance: Sequence[dict], done: Sequence[dict]) -> str:
  return (f"{len(at_chance)} of {len(done)} runs never left chance ("
          + ", ".join(f"`{r['id']}` {fmt(100 * r['accuracies']['clean'])}%" for r in at_chance)
          + "): at this scale a run can stay on the initial CE ≈ ln 10 plateau for its whole "
            "budget, and which runs do varies with the seed and the setting (see each run's "
            "metrics.jsonl). They are left out of the means.")


def checks_reading(done: Sequence[dict]) -> str:
  """How many gradient-masking checks passed, and the first failures; empty when none ran."""
  warnings = [(r["id"], c) for r in done for c in r.get("checks", []) if not c.get("passed")]
  checks_run = sum(len(r.get("checks", [])) for r in done)
  if not checks_run:
    return ""
  return (f"Gradient-masking sanity checks (jsnn.evaluation): {checks_run - len(warnings)} of "
          f"{checks_run} passed" + (": " + "; ".join(f"{i} [{c['name']}] {c['message']}"
                                                     for i, c in warnings[:8])
                                    + (" …" if len(warnings) > 8 else "") if warnings else "."))


def figure3_reading(groups, stats) -> str:
  """The last of two settings' ε sweeps against the first: where accuracy and MS-MPPD differ."""
  if len(groups) < 2:
    return "Only one setting has a sweep."
  (acc0, mppd0), (acc1, mppd1) = stats[0], stats[1]
  eps = [e for e in acc0["epsilon_255"] if e in acc1["epsilon_255"]]
  higher = sum(acc1["mean"][acc1["epsilon_255"].index(e)] > acc0["mean"][acc0["epsilon_255"]
                                                                          .index(e)] for e in eps)
  lower_mppd = sum(mppd1["mean"][mppd1["epsilon_255"].index(e)]
                   < mppd0["mean"][mppd0["epsilon_255"].index(e)] for e in eps)
  return (f"{groups[1]['label']} against {groups[0]['label']}: accuracy higher at {higher} of "
          f"{len(eps)} radii and MS-MPPD lower at {lower_mppd} of {len(eps)} (the paper's "
          "Figure 3: the ρ = 1 curves fall more slowly and their MS-MPPD stays lower).")


def figure4_reading(runs: Sequence[dict], names: Sequence[str]) -> str:
  a, b = runs[0], runs[-1]
  return (f"**Honest reading.** Mean factor {b['mean']:.4f} ({names[-1]}) against "
          f"{a['mean']:.4f} ({names[0]}): "
          f"{'larger' if b['mean'] > a['mean'] else 'not larger'}"
          " with the larger ρ (the paper reports larger factors for ρ = 1, Appendix B); "
          f"all factors lie in [{min(r['min'] for r in runs):.3f}, "
          f"{max(r['max'] for r in runs):.3f}], near their initial 1.0 as in the paper.")


def figure5_reading(finals: Sequence[tuple]) -> str:
  (la, ca, ma), (lb, cb, mb) = finals[0], finals[-1]
  return (f"**Honest reading.** From {la} to {lb}: final CE "
          f"{'higher' if cb > ca else 'lower'} ({fmt(ca, 4)} → {fmt(cb, 4)}), "
          f"final MS-MPPD "
          f"{'lower' if mb < ma else 'higher'} ({ma:.4g} → {mb:.4g}); the paper's "
          "Figure 5 (CIFAR-100 WRN16) shows CE up and MS-MPPD down with ρ = 1.")
