"""The mid-scale protocol's section of docs/REPRODUCTION.md (configs/cifar10_mid.py).

Analysis (:func:`analyse`: plain numbers from the sweep's results.json rows) is kept apart from
rendering (:func:`section`: Markdown, and the figures through :mod:`experiments.report.figures`).
The question and its pairs are :data:`experiments.rows.MID_PAIR` and its neighbours. The
one question: does training with ρ·MS-MPPD make the adversarially trained DLIF VGG5 more robust?
Answered by the paired difference ρ = 1 − ρ = 0 per attack (same seeds), its 95 % interval, and
the paper's Table 1 (VGG11) and Table 2 (VGG5) differences beside it; and, per row, how far the
paper's attack suite overstates robust accuracy against the standard cascade.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

from experiments import rows as rows_lib
from experiments import stats
from experiments.report import figures
from experiments.report.markdown import DISPLAY, attack_name, fmt_seconds

TABLE = "mid"
ATTACKS = tuple(DISPLAY)
# What the per-row tables add to the paper's columns: the cascade and the suites' worst cases.
SUITE_COLUMNS = (("paper", "paper suite"), ("standard", "standard cascade"),
                 ("full", "worst case"))


def _percent(x: Optional[float]) -> Optional[float]:
  return None if x is None else 100.0 * x


def run_values(row: dict) -> dict:
  """One run's accuracies in %: the paper's attacks, the cascade's stages and the suites."""
  out = {k: _percent(v) for k, v in (row.get("accuracies") or {}).items()}
  out.update({k: _percent(v) for k, v in (row.get("cascade") or {}).items()})
  for key, _ in SUITE_COLUMNS:
    value = (row.get("suites") or {}).get(key)
    if key == "full" and value is None:
      value = row.get("worst_case")
    if value is not None:
      out[key] = _percent(value)
  return out


def analyse(rows: Sequence[dict], paper: dict) -> dict:
  """Means, paired differences, overstatement and targets of the mid rows, in % (JSON-ready)."""
  finished = [r for r in rows if r.get("accuracies")]
  values = {r["id"]: run_values(r) for r in finished}
  by_setting: dict[str, list[dict]] = {}
  for r in finished:
    by_setting.setdefault(r["setting"], []).append(r)
  columns = list(ATTACKS) + sorted({k for v in values.values() for k in v
                                    if k not in ATTACKS and k not in dict(SUITE_COLUMNS)})
  columns += [k for k, _ in SUITE_COLUMNS if any(k in v for v in values.values())]

  means = {}
  for setting, runs in by_setting.items():
    means[setting] = {}
    for col in columns:
      xs = [values[r["id"]][col] for r in runs if values[r["id"]].get(col) is not None]
      if xs:
        mean = sum(xs) / len(xs)
        std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
        means[setting][col] = {"mean": mean, "std": std, "n": len(xs)}

  def per_seed(setting, col):
    return {r["seed"]: values[r["id"]][col] for r in by_setting.get(setting, [])
            if values[r["id"]].get(col) is not None}

  paired = {}
  for col in columns:
    d = stats.paired_difference(per_seed(rows_lib.MID_PAIR.baseline, col),
                                per_seed(rows_lib.MID_PAIR.other, col))
    if d is not None:
      paired[col] = {"mean": d.mean, "std": d.std, "low": d.low, "high": d.high,
                     "seeds": list(d.seeds), "verdict": d.verdict}
  paper_diffs = {}
  for pair in rows_lib.MID_PAPER_PAIRS:
    rows_ = paper["tables"][pair.table]["rows"]
    a, b = pair.comparison.baseline, pair.comparison.other
    paper_diffs[pair.label] = {k: rows_[b]["values"][k] - rows_[a]["values"][k]
                               for k in rows_[a]["values"] if k in rows_[b]["values"]}
  overstatement = {}
  for r in finished:
    v = values[r["id"]]
    if v.get("paper") is not None and v.get("standard") is not None:
      overstatement[r["id"]] = {"setting": r["setting"], "seed": r["seed"],
                                "paper": v["paper"], "standard": v["standard"],
                                "full": v.get("full"), "overstates_by": v["paper"] - v.get(
                                    "full", v["standard"])}
  targets = []
  for t in rows_lib.MID_TARGETS:
    m = means.get(t.setting, {}).get(t.attack)
    targets.append({"setting": t.setting, "attack": t.attack, "target": t.percent,
                    "reached": None if m is None else m["mean"],
                    "met": None if m is None else m["mean"] >= t.percent})
  return {"columns": columns, "values": values, "means": means, "paired": paired,
          "paper_differences": paper_diffs, "overstatement": overstatement, "targets": targets}


def _pm(stat: Optional[dict]) -> str:
  if not stat:
    return "—"
  if stat["std"] is None:
    return f"{stat['mean']:.2f}"
  return f"{stat['mean']:.2f} ± {stat['std']:.2f}"


def _f(x: Optional[float], signed: bool = False) -> str:
  if x is None:
    return "—"
  return f"{x:+.2f}" if signed else f"{x:.2f}"


def section(rep, rows: Sequence[dict], roots: Sequence[str], paper: dict, *,
            title: str = rows_lib.MID_TITLE) -> dict:
  """Writes the mid section into ``rep``; returns the analysis."""
  a = analyse(rows, paper)
  cols = a["columns"]
  name = lambda c: DISPLAY.get(c) or dict(SUITE_COLUMNS).get(c) or attack_name(c)
  rep.add(f"## {title}", "")
  finished = [r for r in rows if r.get("accuracies")]
  pending = [r["id"] for r in rows if not r.get("accuracies")]
  first = finished[0] if finished else {}
  model, training = first.get("model") or {}, first.get("training_config") or {}
  n_images = first.get("num_examples")
  rep.add(f"configs/cifar10_mid.py: VGG5 at width {model.get('width', '—')}, head "
          f"{model.get('head_width', '—')}, T = {model.get('time_steps', '—')}, "
          f"{training.get('epochs', '—')} epochs at batch {training.get('batch_size', '—')} on the "
          f"50,000 CIFAR-10 training images; the final checkpoint evaluated on the first "
          f"{n_images or '—'} test images at ε = 8/255. Finished runs: {len(finished)}"
          + (f"; not finished yet: {', '.join(pending)}" if pending else "") + ".", "")
  if not finished:
    rep.add("No mid-scale run has finished yet.", "")
    return a

  # Targets.
  rep.add("**Targets** (mean over seeds): " + "; ".join(
      f"{t['setting']} {name(t['attack'])} ≥ {t['target']:.0f} %: "
      + ("not run" if t["reached"] is None else
         f"{t['reached']:.2f} % ({'met' if t['met'] else 'not met'})") for t in a["targets"])
      + ".", "")

  # Per-run table.
  rep.add("Per run (accuracy %):", "")
  rep.add("| run | " + " | ".join(name(c) for c in cols) + " | train | eval |",
          "|---|" + "---:|" * (len(cols) + 2))
  for r in finished:
    v = a["values"][r["id"]]
    wall = (r.get("training") or {}).get("wall_s"), (r.get("evaluation") or {}).get("wall_s")
    rep.add(f"| {r['id']} | " + " | ".join(_f(v.get(c)) for c in cols)
            + f" | {fmt_seconds(wall[0])} | {fmt_seconds(wall[1])} |")
  rep.add("")

  # Means.
  rep.add("Mean ± std over seeds (sample std):", "")
  rep.add("| setting | seeds | " + " | ".join(name(c) for c in cols) + " |",
          "|---|---:|" + "---:|" * len(cols))
  label = {r["setting"]: r.get("label", r["setting"]) for r in finished}
  for setting, m in a["means"].items():
    n = max(s["n"] for s in m.values())
    rep.add(f"| {label[setting]} | {n} | " + " | ".join(_pm(m.get(c)) for c in cols) + " |")
  rep.add("")

  # Paired difference.
  if a["paired"]:
    rep.add("**ρ = 1 − ρ = 0, paired by seed** (DLIF AT; percentage points; 95 % t interval "
            "over the seeds both have) beside the paper's differences:", "")
    rep.add("| attack | seeds | ours: mean [95 % CI] | verdict | "
            + " | ".join(f"paper {lab}" for lab in a["paper_differences"]) + " |",
            "|---|---:|---|---|" + "---:|" * len(a["paper_differences"]))
    for col, d in a["paired"].items():
      ci = "" if d["low"] is None else f" [{d['low']:+.2f}, {d['high']:+.2f}]"
      rep.add(f"| {name(col)} | {len(d['seeds'])} | {d['mean']:+.2f}{ci} | {d['verdict']} | "
              + " | ".join(_f(p.get(col), signed=True) for p in a["paper_differences"].values())
              + " |")
    exceeding = [name(c) for c, d in a["paired"].items() if d["verdict"] == stats.EXCEEDS]
    robust_cols = [c for c in a["paired"] if c != "clean"]
    no_interval = all(d["low"] is None for d in a["paired"].values())
    rep.add("", "**Reading.** " + (
        "With one seed per setting there is no interval: the seed noise is not measured yet; "
        if no_interval else
        f"The difference exceeds the seed noise for {', '.join(exceeding)}; "
        if exceeding else "No difference exceeds the seed noise; ")
        + f"{sum(1 for c in robust_cols if a['paired'][c]['mean'] > 0)} of "
        f"{len(robust_cols)} robust-accuracy columns have ρ = 1 above ρ = 0 on average.", "")

  # Overstatement.
  if a["overstatement"]:
    rep.add("**How far the paper's suite overstates robust accuracy**: the per-example worst "
            "case over the paper's attacks against the standard cascade and against everything "
            "run (points):", "")
    rep.add("| run | paper suite % | standard cascade % | worst case % | paper − worst case |",
            "|---|---:|---:|---:|---:|")
    for run_id, o in a["overstatement"].items():
      rep.add(f"| {run_id} | {_f(o['paper'])} | {_f(o['standard'])} | {_f(o['full'])} | "
              f"{_f(o['overstates_by'], signed=True)} |")
    rep.add("")
  figures.section_figures(rep, TABLE, list(finished), list(roots))
  return a
