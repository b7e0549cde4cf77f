"""The sections of the single-purpose scripts' results: Figure 1, Theorem 3.1 and the attack suites.

Each reads one JSON file that :mod:`experiments.figure1`, :mod:`experiments.theorem31` or
:mod:`experiments.suites` wrote, and lays out its numbers, its plot and its reading.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

from experiments import figure1, theorem31
from experiments.report.markdown import Report, anchor, fmt, fmt_seconds
from jsnn import _io

FIGURE1_TITLE = "Figure 1: the membrane-potential perturbation of one LIF neuron"
THEOREM_TITLE = "Theorem 3.1: the L2 gain of the perturbation dynamics"


def section_figure1(rep: Report, path: str) -> None:
  data = _io.read_json(path)
  rep.add(f"## {FIGURE1_TITLE}", "")
  rep.add(f"What we ran: `{data.get('command', 'python -m experiments.figure1')}` "
          f"(results: `{rep.rel(path)}`, {data.get('generated', '')}); one neuron, "
          f"{data['steps']} steps, clean input {data['clean_input']}·u_th, constant perturbation "
          f"+{data['constant_perturbation']}·u_th and Gaussian perturbation (seed {data['seed']}).",
          "")
  rep.add("| setting | λ | fires at | Gaussian std | source |", "|---|---:|---|---:|---|")
  for name, s in data["settings"].items():
    rep.add(f"| {name} | {s['leak']} | {'v > u_th' if s['strict_threshold'] else 'v ≥ u_th'} | "
            f"{s['gaussian_std']} | {s['source']} |")
  rep.add("", f"Plotted: solid — {data['plotted']['solid']}; dashed — "
              f"{data['plotted']['dashed']}. Differences are {data['difference_sign']}.", "")
  for name in data["settings"]:
    target, link = rep.figure(f"figure1_{name}.png")
    figure1.plot(data, name, target)
    rep.add(f"![Figure 1, {name} setting]({link})", "")
  feats = {n: s["features"] for n, s in data["settings"].items()}
  keys = list(next(iter(feats.values())))
  rep.add("| measured | " + " | ".join(feats) + " |", "|---|" + "---:|" * len(feats))
  for k in keys:
    rep.add(f"| {k} | " + " | ".join(fmt(float(f[k]), 3) if isinstance(f[k], float) else str(f[k])
                                     for f in feats.values()) + " |")
  v = data["verdict"]
  rep.add("", "**Honest reading.** The paper describes its Figure 1 as follows:", "")
  rep.add(*[f"> {d}" for d in data["paper_description"]], "")
  criteria = v["criteria"]
  for name, checks in criteria.items():
    met = [c for c, ok in checks.items() if ok]
    missed = [c for c, ok in checks.items() if not ok]
    rep.add(f"- {name} setting: {len(met)}/{len(checks)} criteria met"
            + (f"; not met: {', '.join(missed)}" if missed else "") + ".")
  verdict = v["matches_paper"]
  rep.add("", (f"The **{verdict}** setting matches the paper's description best. " if verdict else
               "Neither setting matches the paper's description better than the other. ")
          + v["note"], "")
  rep.summary.append(("Figure 1", "one LIF neuron, paper caption vs reference script settings",
                      "exact (single neuron)", f"Gaussian draws: seed {data['seed']}",
                      fmt_seconds(data.get("wall_s")), anchor(FIGURE1_TITLE)))


def section_theorem31(rep: Report, paths: Sequence[str]) -> None:
  rep.add(f"## {THEOREM_TITLE}", "")
  if not paths:
    rep.add("Not run yet: `python -m experiments.theorem31 --workdir <a VGG run> --out "
            "results/theorem31`.", "")
    rep.summary.append(("Theorem 3.1", "not run", "—", "—", "—", anchor(THEOREM_TITLE)))
    return
  for path in paths:
    data = _io.read_json(path)
    name = os.path.splitext(os.path.basename(path))[0]
    m = data.get("model", {})
    rep.add(f"### {name}", "",
            f"What we ran: `{data.get('command', '')}` on `{data.get('workdir', '')}` "
            f"({data.get('checkpoint', '')} checkpoint, step {data.get('checkpoint_step')}): "
            f"{m.get('name', '')} width {m.get('width', '')}, {m.get('neuron', '')}, "
            f"λ = {data['leak']}, T = {data['time_steps']}; {data['attack']} at "
            f"ε = {data['epsilon'] * 255:.3g}/255 on {data['num_examples']} test images "
            f"(clean accuracy {100 * data['clean_accuracy']:.1f}%, adversarial "
            f"{100 * data['adversarial_accuracy']:.1f}%). W is {data['w']}.", "")
    rep.add("| layer | input | ‖W‖ | γ (paper) | exact gain | max ratio | mean ratio | "
            "max / γ | BN-folded ‖W‖ | BN-folded γ | BN-folded max ratio |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in data["layers"]:
      p, b = r["pre_bn"], r.get("bn_folded")
      rep.add(f"| {r['layer']} | {r['input']} | {fmt(p['spectral_norm'], 3)} | "
              f"{fmt(p['paper_bound'], 3)} | {fmt(p['exact_gain'], 3)} | "
              f"{fmt(p['ratio_max'], 3)} | "
              f"{fmt(p['ratio_mean'], 3)} | {fmt(p['max_ratio_over_paper_bound'], 3)} | "
              + (f"{fmt(b['spectral_norm'], 3)} | {fmt(b['paper_bound'], 3)} | "
                 f"{fmt(b['ratio_max'], 3)} |" if b else "— | — | — |"))
    target, link = rep.figure(f"{name}.png")
    theorem31.plot(data, target)
    rep.add("", f"![{name}]({link})", "")
    tight = [r["pre_bn"]["max_ratio_over_paper_bound"] for r in data["layers"]
             if r["pre_bn"]["max_ratio_over_paper_bound"] is not None]
    if data["all_within_paper_bound"]:
      rep.add(f"Every measured ratio is within the paper's bound γ (largest ratio/γ "
              f"{fmt(max(tight), 3) if tight else '—'}; the bound is loose by a factor "
              f"{fmt(1 / max(tight), 1) if tight else '—'} at best).", "")
    else:
      rep.add(f"**FLAG: measured ratios exceed the paper's bound in "
              f"{', '.join(data['layers_exceeding_paper_bound'])}.**", "")
    c = data["counterexample"]
    rep.add(f"The exact gain of the MPPD map over T steps is ‖L_T‖·‖W‖ with ‖L_T‖ = "
            f"{fmt(data['time_factor_exact'], 3)} at T = {data['time_steps']}, below the "
            f"paper's factor sqrt(1/(1−λ)) = {fmt(c['paper_factor'], 3)}; but ‖L_T‖ exceeds it "
            f"from "
            f"T = {c['first_T_exceeding_paper_factor']} on (λ = {c['leak']}: "
            + ", ".join(f"T = {t}: {fmt(g, 2)}" for t, g in c["exact_factor_by_T"].items())
            + f"), tending to 1/(1−λ) = {fmt(c['valid_factor_any_T'], 1)}. Theorem 3.1's γ holds "
              "at the paper's T = 8 but is not a bound for every T: the proof's step from Eq. 26 "
              "to Eq. 28 drops a factor, and ‖W‖/(1−λ) is the valid gain for any T.", "")
  rep.summary.append(("Theorem 3.1", f"{len(paths)} model(s): bound vs measured ratio per layer",
                      ", ".join(sorted({f"{_io.read_json(p)['model'].get('name')} T = "
                                        f"{_io.read_json(p)['time_steps']}" for p in paths})),
                      "—", fmt_seconds(sum(_io.read_json(p).get("wall_s") or 0 for p in paths)
                                       or None), anchor(THEOREM_TITLE)))


SUITES_TITLE = "Beyond the paper: the paper's attack suite against standard and full"
SUITE_COLUMNS = (("clean", "Clean"), ("paper", "paper suite"), ("standard", "standard"),
                 ("estimators", "paper × estimators"), ("transfer", "transfer"),
                 ("full", "full"))


def section_suites(rep: Report, path: str) -> None:
  """The robust accuracy each suite measures on the same models, and the drop paper → full."""
  data = _io.read_json(path)
  models = data.get("models", [])
  if not models:
    return
  title = SUITES_TITLE if not any(l == f"## {SUITES_TITLE}" for l in rep.lines) else (
      f"{SUITES_TITLE} ({rep.rel(path)})")
  first = models[0]
  e = first["eval"]
  rep.add(f"## {title}", "")
  rep.add(f"Command: `{data.get('command', 'python -m experiments.suites')}` "
          f"(`{rep.rel(path)}`, git {data.get('git') or 'unknown'}). Each model is "
          f"evaluated once with `eval.suite=full` on the first {e['num_examples'] or 'all'} test "
          f"images of {first['data']}, L∞ ε = {e['epsilon'] * 255:.0f}/255: the paper's attacks "
          f"({e['attacks']}); the standard cascade APGD-CE ({e['cascade_steps']} iterations) → "
          f"APGD-T ({e['apgd_targets']} targets × {e['cascade_steps']}) → Square "
          f"({e['square_queries']} queries); the paper's gradient attacks again under "
          f"{', '.join(first['estimator_names'])}"
          + (f"; and the same attacks crafted on `{first['transfer_from']['workdir']}` "
             f"(surrogate {first['transfer_from']['surrogate']})" if first.get("transfer_from")
             else "")
          + ". Each column is the worst case per example over its attacks; `full` is the worst "
            "case over all of them. Robust accuracy in %.", "")
  header = "| model | " + " | ".join(name for _, name in SUITE_COLUMNS) + " | paper − full |"
  rep.add(header, "|---|" + "---:|" * (len(SUITE_COLUMNS) + 1))
  for m in models:
    a = m["accuracies"]
    pct = lambda k: None if a.get(k) is None else 100 * a[k]
    drop = None if a.get("paper") is None else 100 * (a["paper"] - a["full"])
    rep.add(f"| {m['label']} | " + " | ".join(fmt(pct(k)) for k, _ in SUITE_COLUMNS)
            + f" | {fmt(drop)} |")
  rep.add("")
  rep.add("| model | cascade stages (accuracy after each, %) | worst case per estimator (%) | "
          "Square beats white-box | transfer beats white-box | eval wall time |",
          "|---|---|---|---:|---:|---:|")
  for m in models:
    stages = " → ".join(f"{k} {fmt(100 * v)}" for k, v in m["cascade"].items())
    est = ", ".join(f"{k} {fmt(100 * v)}" for k, v in m["estimators"].items())
    square, transfer = (m.get(k) for k in ("square_beats_white_box", "transfer_beats_white_box"))
    rep.add(f"| {m['label']} | {stages} | {est} | {'—' if square is None else square} | "
            f"{'—' if transfer is None else transfer} | "
            f"{fmt_seconds(m.get('eval_wall_time_s'))} |")
  rep.add("")
  drops = [(m["label"], 100 * (m["accuracies"]["paper"] - m["accuracies"]["full"]))
           for m in models if m["accuracies"].get("paper") is not None]
  total = first["accuracies"]["total"]
  se = 100 * math.sqrt(0.25 / max(total, 1))
  reading = ["**Reading.**"]
  for label, drop in drops:
    reading.append(f"{label}: the paper's suite reports {fmt(drop)} points more robust accuracy "
                   f"than the full evaluation")
  reading = [reading[0] + " " + "; ".join(reading[1:]) + "."]
  reading.append(f"On {total} images one accuracy has a binomial standard error of at most "
                 f"{se:.1f} points, but the suites are evaluated on the same images, so the drop "
                 f"is a per-image count, not a difference of two noisy estimates.")
  for m in models:
    if m["estimators"]:
      best = min(m["estimators"], key=m["estimators"].get)
      reading.append(f"{m['label']}: the strongest single gradient is {best} (worst case "
                     f"{fmt(100 * m['estimators'][best])} %), the weakest "
                     f"{max(m['estimators'], key=m['estimators'].get)}.")
  masked = [m["label"] for m in models if (m.get("square_beats_white_box") or 0)
            or (m.get("transfer_beats_white_box") or 0)]
  reading.append("Square or the transfer attack fooled images every white-box attack left correct "
                 f"on {', '.join(masked)} (counts in the table above): a sign of gradient "
                 "masking there." if masked else
                 "Neither Square nor the transfer attack fooled an image that every white-box "
                 "attack left correct: no sign of gradient masking beyond what the estimators "
                 "found.")
  rep.add(" ".join(reading), "")
  walls = sum(float(m.get("eval_wall_time_s") or 0) for m in models)
  rep.summary.append(("Beyond the paper: attack suites", "paper vs standard vs full, "
                      f"{len(models)} models", f"{total} test images", "—", fmt_seconds(walls),
                      anchor(title)))
