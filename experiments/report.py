r"""Writes docs/REPRODUCTION.md and its figures from the results files; nothing is typed by hand.

    python -m experiments.report --results results --out docs/

``--results`` (repeatable) names directories to scan, two levels deep, for

* ``results.json`` — a sweep root of :mod:`experiments.sweep` (Tables 1 and 2, and the row
  directories' ``eps_sweep.json``, ``dlif_factors.json`` and ``metrics.jsonl`` behind Figures 3–5);
* ``figure1.json`` — :mod:`experiments.figure1`;
* ``theorem31_*.json`` — :mod:`experiments.theorem31`;
* ``suites.json`` — :mod:`experiments.suites` (the paper's attack suite against ``standard`` and
  ``full``, beyond the paper).

The paper's numbers come from ``experiments/paper_numbers.json``. Each table is laid out like the
paper's (its rows and columns), each cell ``ours / paper / ours − paper`` with ours the mean ± std
over seeds; each section states what was run (command, protocol, model, data, seeds, wall time)
and ends with an "honest reading" generated from the numbers. Rerunning the command after more
runs finish updates everything. Only JSON and matplotlib are needed (no JAX). The figures are
drawn into a temporary directory and moved into place only when the whole report has been
built, so a results file that cannot be read leaves the previous report and figures as they were.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import shutil
import tempfile
from typing import Collection, Optional, Sequence

from experiments import common, report_mid
from jsnn import cli

PAPER_NUMBERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paper_numbers.json")
DISPLAY = {"clean": "Clean", "fgsm": "FGSM", "pgd7": "PGD7", "pgd10": "PGD10", "pgd20": "PGD20",
           "pgd40": "PGD40", "apgd-ce": "APGD-CE", "apgd-dlr": "APGD-DLR"}
# Which rows each figure compares, per table (the paper's Figures 3–5 use VGG11 AT/AT+Reg at
# ρ ∈ {0, 1}; the reduced protocol only has Table 2's VGG5).
FIGURE_SETTINGS = {
    "table2": {"figure3": ["dlif-rho0", "dlif-rho1"], "figure4": ["dlif-rho0", "dlif-rho1"],
               "figure5": ["dlif-rho0", "dlif-rho0.5", "dlif-rho1", "dlif-rho2"]},
    "table1": {"figure3": ["at-rho0", "at-rho1", "at_reg-rho0", "at_reg-rho1"],
               "figure4": ["at-rho0", "at-rho1"],
               "figure5": ["at-rho0", "at-rho1", "at_reg-rho0", "at_reg-rho1"]},
    "mid": {"figure3": ["at-rho0", "at-rho1"], "figure4": ["at-rho0", "at-rho1"],
            "figure5": ["at-rho0", "at-rho1"]},
}
MID_TITLE = "Mid scale: full CIFAR-10, DLIF AT ρ = 0 against ρ = 1"
# Pairs the honest reading compares: (label, baseline setting, other setting).
COMPARISONS = {
    "table2": [
        ("DLIF ρ = 0.5 vs ρ = 0", "dlif-rho0", "dlif-rho0.5"),
        ("DLIF ρ = 1 vs ρ = 0", "dlif-rho0", "dlif-rho1"),
        ("DLIF ρ = 2 vs ρ = 0", "dlif-rho0", "dlif-rho2"),
        ("LIF ρ = 1 vs ρ = 0", "lif-rho0", "lif-rho1"),
        ("LIF ρ = 2 vs ρ = 0", "lif-rho0", "lif-rho2"),
        ("DLIF vs LIF at ρ = 0", "lif-rho0", "dlif-rho0"),
        ("DLIF vs LIF at ρ = 1", "lif-rho1", "dlif-rho1"),
        ("TASAD vs MS-MPPD (DLIF ρ = 1)", "dlif-rho1", "dlif-rho1-tasad"),
        ("STD vs MS-MPPD (DLIF ρ = 1)", "dlif-rho1", "dlif-rho1-std"),
        ("factor on the leak vs on the input, ρ = 0", "dlif-rho0", "dlif-leak-rho0"),
        ("factor on the leak vs on the input, ρ = 1", "dlif-rho1", "dlif-leak-rho1"),
        ("leak placement: ρ = 1 vs ρ = 0", "dlif-leak-rho0", "dlif-leak-rho1"),
    ],
    "table1": [
        ("DLIF vs LIF, natural", "lif-natural", "dlif-natural"),
        ("Gaussian ρ = 1 vs ρ = 0", "gaussian-rho0", "gaussian-rho1"),
        ("AT ρ = 1 vs ρ = 0", "at-rho0", "at-rho1"),
        ("AT+Reg ρ = 1 vs ρ = 0", "at_reg-rho0", "at_reg-rho1"),
        ("AT ρ = 0 vs natural", "dlif-natural", "at-rho0"),
    ],
}


FIGURE1_TITLE = "Figure 1: the membrane-potential perturbation of one LIF neuron"
THEOREM_TITLE = "Theorem 3.1: the L2 gain of the perturbation dynamics"
NOT_RUN_TITLE = "Paper tables without runs here"


def _family(table: str) -> str:
  return table if table in FIGURE_SETTINGS else "table1"


# -------------------------------------------------------------------------------------------------
# Numbers
# -------------------------------------------------------------------------------------------------


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


class Stat:
  """Mean ± std (sample, n − 1) of one setting's accuracy (%) over seeds."""

  def __init__(self, values: Sequence[float]):
    self.values = [float(v) for v in values]
    self.mean, self.std, self.n = common.mean_std(self.values)

  def __str__(self):
    if not self.n:
      return "—"
    return fmt(self.mean) if self.n == 1 else f"{fmt(self.mean)} ± {fmt(self.std)}"


def cell(ours: Optional[Stat], paper: Optional[float]) -> str:
  """``ours / paper / ours − paper``; missing parts are ``—``."""
  ours_text = str(ours) if ours is not None and ours.n else "—"
  diff = ours.mean - paper if ours is not None and ours.n and paper is not None else None
  return f"{ours_text} / {fmt(paper)} / {fmt_signed(diff)}"


def stayed_at_chance(row: dict, num_classes: int = 10) -> bool:
  """Whether a run never left chance: clean test accuracy within 3 binomial standard errors of
  1/classes on its ``num_examples`` images (such a model does no better than guessing, so its
  "robust" accuracies say nothing about robustness)."""
  acc = (row.get("accuracies") or {}).get("clean")
  n = row.get("num_examples") or 0
  if acc is None or not n:
    return False
  chance = 1.0 / num_classes
  return acc <= chance + 3 * math.sqrt(chance * (1 - chance) / n)


def setting_stats(rows: Sequence[dict]) -> dict:
  """``{setting: {attack: Stat}}`` in %, over the rows (seeds) that have accuracies."""
  out = {}
  for row in rows:
    for attack, acc in (row.get("accuracies") or {}).items():
      out.setdefault(row["setting"], {}).setdefault(attack, []).append(100 * acc)
    if row.get("worst_case") is not None:
      out.setdefault(row["setting"], {}).setdefault("worst-case", []).append(
          100 * row["worst_case"])
  return {s: {a: Stat(v) for a, v in d.items()} for s, d in out.items()}


# -------------------------------------------------------------------------------------------------
# Discovery
# -------------------------------------------------------------------------------------------------


def discover(paths: Sequence[str]) -> dict:
  """Sweep roots, Figure 1 and Theorem 3.1 results under ``paths`` (two levels deep)."""
  found = {"sweeps": [], "figure1": [], "theorem31": [], "suites": []}
  for base in paths:
    candidates = [base] + sorted(glob.glob(os.path.join(base, "*"))) + sorted(
        glob.glob(os.path.join(base, "*", "*")))
    for d in candidates:
      if not os.path.isdir(d):
        continue
      if os.path.exists(os.path.join(d, "results.json")):
        found["sweeps"].append(os.path.abspath(d))
      if os.path.exists(os.path.join(d, "suites.json")):
        found["suites"].append(os.path.abspath(os.path.join(d, "suites.json")))
      if os.path.exists(os.path.join(d, "figure1.json")):
        found["figure1"].append(os.path.abspath(os.path.join(d, "figure1.json")))
      found["theorem31"] += [os.path.abspath(p) for p in
                             sorted(glob.glob(os.path.join(d, "theorem31_*.json")))]
  return {k: list(dict.fromkeys(v)) for k, v in found.items()}


# -------------------------------------------------------------------------------------------------
# Sections
# -------------------------------------------------------------------------------------------------


class Report:
  """Accumulates Markdown lines and the figures written beside them."""

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


def _rel(path: str, out_dir: str) -> str:
  return os.path.relpath(path, out_dir)


def section_figure1(rep: Report, path: str) -> None:
  from experiments import figure1

  data = common.read_json(path)
  rep.add(f"## {FIGURE1_TITLE}", "")
  rep.add(f"What we ran: `{data.get('command', 'python -m experiments.figure1')}` "
          f"(results: `{_rel(path, rep.out_dir)}`, {data.get('generated', '')}); one neuron, "
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
                      fmt_seconds(data.get("wall_s")), "#" + _anchor(FIGURE1_TITLE)))


def section_theorem31(rep: Report, paths: Sequence[str]) -> None:
  from experiments import theorem31

  rep.add(f"## {THEOREM_TITLE}", "")
  if not paths:
    rep.add("Not run yet: `python -m experiments.theorem31 --workdir <a VGG run> --out "
            "results/theorem31`.", "")
    rep.summary.append(("Theorem 3.1", "not run", "—", "—", "—", "#" + _anchor(THEOREM_TITLE)))
    return
  for path in paths:
    data = common.read_json(path)
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
                      ", ".join(sorted({f"{common.read_json(p)['model'].get('name')} T = "
                                        f"{common.read_json(p)['time_steps']}" for p in paths})),
                      "—", fmt_seconds(sum(common.read_json(p).get("wall_s") or 0 for p in paths)
                                       or None), "#" + _anchor(THEOREM_TITLE)))


def _root_runs(results: dict) -> list[dict]:
  return [r for r in results.get("runs", []) if r.get("command")]


def section_table(rep: Report, paper: dict, table: str, rows: list[dict], roots: list[str],
                  results_list: list[dict], *, protocol: str = "",
                  duplicates: Sequence[str] = ()) -> None:
  """One paper table at one protocol: what was run, the table, the honest reading, figures."""
  spec = paper["tables"][table]
  title = spec["title"] + (f" — {protocol} protocol" if protocol else "")
  rep.add(f"## {title}", "")
  if duplicates:
    rep.add(f"Rows found in more than one results root, first one kept: {', '.join(duplicates)}.",
            "")
  # What must agree between the rows of one table: the scale, not the row's own setting.
  signatures = {json.dumps([{k: r["model"][k] for k in ("name", "width", "head_width",
                                                         "time_steps", "leak")},
                            {k: r["training_config"][k] for k in ("epochs", "batch_size",
                                                                   "train_size")},
                            r.get("num_examples")], sort_keys=True)
                for r in rows if r.get("model") and r.get("training_config")}
  if len(signatures) > 1:
    rep.add(f"**Note: these rows were trained with {len(signatures)} different model/training "
            "configs (see the per-run table); their means mix them.**", "")
  done = [r for r in rows if r.get("accuracies")]
  # What was run.
  seeds = sorted({r["seed"] for r in done})
  protocols = sorted({r.get("protocol") for r in rows if r.get("protocol")})
  commands = sorted({run["command"] for res in results_list for run in _root_runs(res)})
  models = {(r["model"]["name"], r["model"]["width"], r["model"]["head_width"],
             r["model"]["time_steps"]) for r in rows if r.get("model")}
  tc = [r["training_config"] for r in rows if r.get("training_config")]
  num_examples = sorted({r.get("num_examples") for r in done if r.get("num_examples")})
  walls = [r["wall_s"] for r in rows if r.get("wall_s")]
  train_walls = [r["training"]["wall_s"] for r in done
                 if r.get("training", {}).get("wall_s") is not None]
  eval_walls = [r["evaluation"]["wall_s"] for r in done
                if (r.get("evaluation") or {}).get("wall_s") is not None]
  status = {}
  for r in rows:
    status[r.get("status", "pending")] = status.get(r.get("status", "pending"), 0) + 1
  rep.add("What we ran:", "")
  for c in commands:
    rep.add(f"- command: `{c}`")
  files = ", ".join(f"`{_rel(os.path.join(r, 'results.json'), rep.out_dir)}`" for r in roots)
  rep.add(f"- results: {files}")
  rep.add(f"- protocol: {', '.join(protocols) or '—'}; config: "
          f"{', '.join(sorted({r['config'] for r in rows if r.get('config')})) or '—'}")
  for name, width, head, t in sorted(models):
    rep.add(f"- model: {name} at width ×{width}, head {head}, T = {t}")
  if tc:
    epochs = sorted({c["epochs"] for c in tc})
    sizes = sorted({c["train_size"] or "all" for c in tc}, key=str)
    dirs = sorted({os.path.basename(os.path.normpath(c["data_dir"])) or "TFDS" for c in tc})
    rep.add(f"- training: {', '.join(map(str, epochs))} epochs, batch "
            f"{', '.join(str(b) for b in sorted({c['batch_size'] for c in tc}))}, training set "
            f"{', '.join(map(str, sizes))} images of {', '.join(dirs)}")
  attacks = [a for a in DISPLAY if any(a in (r.get("accuracies") or {}) for r in done)]
  rep.add(f"- evaluation: {', '.join(DISPLAY[a] for a in attacks) or '—'} at ε = 8/255 on "
          f"{', '.join(map(str, num_examples)) or '—'} test images")
  rep.add(f"- seeds: {', '.join(map(str, seeds)) or '—'}; rows: "
          + ", ".join(f"{n} {s}" for s, n in sorted(status.items())))
  rep.add(f"- wall time: {fmt_seconds(sum(walls) if walls else None)} in all "
          f"(per run: training {fmt_seconds(_mean(train_walls))}, evaluation "
          f"{fmt_seconds(_mean(eval_walls))} on average)", "")
  rep.summary.append((title, f"{len(done)} runs",
                      ", ".join(protocols) or "—", ", ".join(map(str, seeds)) or "—",
                      fmt_seconds(sum(walls) if walls else None),
                      "#" + _anchor(title)))

  num_classes = 100 if spec.get("dataset") == "cifar100" else 10
  at_chance = [r for r in done if stayed_at_chance(r, num_classes)]
  learned = [r for r in done if r not in at_chance]
  stats = setting_stats(learned)
  # A run that learned but failed a gradient-masking check stays in the mean (its attacks did run),
  # yet its robust accuracies may be inflated: its setting is marked so no reader takes it at face
  # value.
  masked = {r["id"]: names for r in learned if (names := failed_checks(r))}
  masked_settings = {r["setting"] for r in learned if r["id"] in masked}
  paper_rows = spec["rows"]
  # The paper's rows in its order, then ours that it does not have (the DLIF placement rows).
  settings = list(paper_rows) + [s for s in dict.fromkeys(r["setting"] for r in rows)
                                 if s not in paper_rows]
  labels = {r["setting"]: r.get("label") for r in rows}
  n_seeds, n_chance = {}, {}
  for r in learned:
    n_seeds[r["setting"]] = n_seeds.get(r["setting"], 0) + 1
  for r in at_chance:
    n_chance[r["setting"]] = n_chance.get(r["setting"], 0) + 1
  columns = attacks or list(DISPLAY)
  rep.add("Each cell: ours (mean ± std over seeds, %) / paper / ours − paper."
          + (f" {len(at_chance)} of {len(done)} runs stayed at chance (clean accuracy within 3 "
             "binomial standard errors of 1/classes: no better than guessing) and are left out "
             "of the means; n counts the others, `+k` those left out, and the per-run table "
             "lists them all." if at_chance else ""), "")
  rep.add("| setting | n | " + " | ".join(DISPLAY[a] for a in columns) + " | worst case (ours) |",
          "|---|---:|" + "---:|" * (len(columns) + 1))
  for s in settings:
    paper_vals = paper_rows.get(s, {}).get("values", {})
    label = paper_rows[s]["label"] if s in paper_rows else labels.get(s, s)
    ours = stats.get(s, {})
    if not ours:
      note = "not run" if s not in labels else next(
          (r.get("status") for r in rows if r["setting"] == s), "pending")
      if n_chance.get(s):
        note = f"+{n_chance[s]} at chance"
      rep.add(f"| {label} | 0 ({note}) | " + " | ".join(cell(None, paper_vals.get(a))
                                                       for a in columns) + " | — |")
      continue
    extra = f" (+{n_chance[s]})" if n_chance.get(s) else ""
    mark = " †" if s in masked_settings else ""
    rep.add(f"| {label}{mark} | {n_seeds.get(s, 0)}{extra} | "
            + " | ".join(cell(ours.get(a), paper_vals.get(a)) for a in columns)
            + f" | {ours['worst-case'] if 'worst-case' in ours else '—'} |")
  rep.add("", "<details><summary>Per run</summary>", "",
          "| run | seed | " + " | ".join(DISPLAY[a] for a in columns)
          + " | worst case | best clean test acc. (training) | training | evaluation | status |",
          "|---|---:|" + "---:|" * (len(columns) + 4) + "---|")
  for r in sorted(rows, key=lambda r: (settings.index(r["setting"])
                                       if r["setting"] in settings else 0, r["seed"])):
    acc = r.get("accuracies") or {}
    tr = r.get("training") or {}
    best = tr.get("best_test_accuracy")
    rep.add(f"| {r['id']} | {r['seed']} | "
            + " | ".join(fmt(100 * acc[a]) if a in acc else "—" for a in columns)
            + f" | {fmt(100 * r['worst_case']) if r.get('worst_case') is not None else '—'} | "
            f"{fmt(100 * best) if best is not None else '—'} | "
            f"{fmt_seconds(tr.get('wall_s'))} | "
            f"{fmt_seconds((r.get('evaluation') or {}).get('wall_s'))} | {r.get('status', '')}"
            + (", stayed at chance" if r in at_chance else "")
            + (f", masking check failed: {', '.join(masked[r['id']])}" if r["id"] in masked
               else "") + " |")
  rep.add("", "</details>", "")
  if masked:
    rep.add("† The mean includes runs that learned but failed a gradient-masking check ("
            + "; ".join(f"`{i}`: {', '.join(names)}" for i, names in masked.items())
            + "): their robust accuracies are what the attacks found, and may overstate "
              "robustness.", "")
  failed = [r for r in rows if r.get("status") == "failed"]
  if failed:
    rep.add("", "Failed rows: " + "; ".join(f"`{r['id']}`: {r.get('error', '')}" for r in failed))
  rep.add("")
  warnings = [(r["id"], c) for r in done for c in r.get("checks", []) if not c.get("passed")]
  checks_run = sum(len(r.get("checks", [])) for r in done)
  rep.add("**Honest reading.**", "")
  if at_chance:
    rep.add(f"- {len(at_chance)} of {len(done)} runs never left chance ("
            + ", ".join(f"`{r['id']}` {fmt(100 * r['accuracies']['clean'])}%" for r in at_chance)
            + "): at this scale a run can stay on the initial CE ≈ ln 10 plateau for its whole "
              "budget, and which runs do varies with the seed and the setting (see each run's "
              "metrics.jsonl). They are left out of the means.")
  for line in honest_reading(_family(table), stats, paper_rows, columns, learned,
                             at_chance={r["setting"] for r in at_chance}):
    rep.add(f"- {line}")
  if checks_run:
    rep.add(f"- Gradient-masking sanity checks (jsnn.evaluation): {checks_run - len(warnings)} of "
            f"{checks_run} passed" + (": " + "; ".join(f"{i} [{c['name']}] {c['message']}"
                                                         for i, c in warnings[:8])
                                      + (" …" if len(warnings) > 8 else "") if warnings else "."))
  rep.add("")
  if "reduced" in protocols:
    rep.add("**Scope of the reduced protocol** (from configs/cifar10_reduced.py). "
            + reduced_scope(), "")
  # The figures average runs too: the ones that never left chance would only dilute them.
  section_figures(rep, table, [r for r in rows if r not in at_chance], roots)


def failed_checks(row: dict) -> list:
  """Names of the gradient-masking checks (jsnn.evaluation.checks) that `row` failed."""
  return [c["name"] for c in row.get("checks", []) if not c.get("passed")]


def reduced_scope() -> str:
  """What configs/cifar10_reduced.py says its scale can and cannot show."""
  import importlib
  return " ".join(importlib.import_module("configs.cifar10_reduced").SCOPE.split())


def _anchor(title: str) -> str:
  keep = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -")
  return keep.strip().replace(" ", "-")


def _mean(values):
  return sum(values) / len(values) if values else None


def compare(stats: dict, a: str, b: str, attack: str):
  """``(Δ = b − a, larger of the two stds, n_a, n_b)`` in percentage points, or None."""
  if attack not in stats.get(a, {}) or attack not in stats.get(b, {}):
    return None
  sa, sb = stats[a][attack], stats[b][attack]
  return sb.mean - sa.mean, max(sa.std, sb.std), sa.n, sb.n


def honest_reading(family: str, stats: dict, paper_rows: dict, columns: Sequence[str],
                   rows: Sequence[dict], at_chance: Collection[str] = ()) -> list[str]:
  """Sentences generated from the numbers: the scale gap, then each comparison of COMPARISONS.

  ``at_chance``: settings with runs left out because they stayed at chance; a comparison that
  loses a side to them says so instead of disappearing.
  """
  lines = []
  if not stats:
    return ["No results yet."]
  clean = [st["clean"].mean for st in stats.values() if "clean" in st]
  paper_clean = [r["values"]["clean"] for k, r in paper_rows.items() if k in stats]
  if clean and paper_clean:
    gap = _mean(paper_clean) - _mean(clean)
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
  for label, a, b in COMPARISONS[family]:
    parts, beyond, resolved = [], 0, 0
    for attack in ["clean"] + robust:
      c = compare(stats, a, b, attack)
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
    robust_deltas = [compare(stats, a, b, x) for x in robust]
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
  if family == "table2":
    lines.append("The paper's claims for Table 2: every ρ > 0 beats ρ = 0 in robustness, ρ = 1 "
                 "is best, LIF loses clean accuracy as ρ grows while DLIF does not, and TASAD/STD "
                 "training is less effective than MS-MPPD; the comparisons above test each at "
                 "this scale. The paper's own differences between ρ values are ≈ 1 point.")
  return lines


def section_figures(rep: Report, table: str, rows: list[dict], roots: list[str]) -> None:
  """Figures 3–5 for a table's runs (the settings of FIGURE_SETTINGS)."""
  from experiments import figure3, figure4, figure5

  fam = FIGURE_SETTINGS[_family(table)]
  root_of = {}
  for root in roots:
    for r in rows:
      if os.path.isdir(os.path.join(root, r["id"])):
        root_of[r["id"]] = root
  by_setting = {}
  for r in rows:
    by_setting.setdefault(r["setting"], []).append(r)
  label = {r["setting"]: r.get("label", r["setting"]) for r in rows}
  tag = f"{table}_{rows[0].get('protocol')}" if rows and rows[0].get("protocol") else table

  def paths(setting, key):
    return [os.path.join(root_of[r["id"]], r["files"][key]) for r in by_setting.get(setting, [])
            if r.get("files", {}).get(key) and r["id"] in root_of]

  # Figure 3.
  groups = [{"label": label[s], "sweeps": [figure3.load_sweep(os.path.dirname(p))
                                           for p in paths(s, "eps_sweep")]}
            for s in fam["figure3"] if paths(s, "eps_sweep")]
  rep.add(f"### Figure 3 ({tag}): PGD-10 accuracy and MS-MPPD against ε", "")
  if groups:
    target, link = rep.figure(f"figure3_{tag}.png")
    figure3.plot(groups, target)
    rep.add(f"![Figure 3, {tag}]({link})", "")
    rep.add("| ε (/255) | " + " | ".join(f"{g['label']}: accuracy % / MS-MPPD" for g in groups)
            + " |", "|---:|" + "---:|" * len(groups))
    stats = [(figure3.group_stats(g["sweeps"], "accuracy"), figure3.group_stats(g["sweeps"],
                                                                                 "ms_mppd"))
             for g in groups]
    for i, eps in enumerate(stats[0][0]["epsilon_255"]):
      cells = []
      for acc, mppd in stats:
        j = acc["epsilon_255"].index(eps) if eps in acc["epsilon_255"] else None
        cells.append("—" if j is None else
                     f"{fmt(100 * acc['mean'][j])} / {mppd['mean'][j]:.3g}")
      rep.add(f"| {eps:g} | " + " | ".join(cells) + " |")
    rep.add("")
    rep.add("**Honest reading.** " + _figure3_reading(groups, stats), "")
    sweeps = [r for s in fam["figure3"] for r in by_setting.get(s, [])
              if r.get("files", {}).get("eps_sweep")]
    rep.summary.append((f"Figure 3 ({tag})", f"ε sweep of {len(sweeps)} runs",
                        rows[0].get("protocol") or "—",
                        ", ".join(str(x) for x in sorted({r["seed"] for r in sweeps})),
                        fmt_seconds(sum(r.get("sweep_wall_s") or 0 for r in sweeps) or None),
                        "#" + _anchor(f"Figure 3 ({tag}): PGD-10 accuracy and MS-MPPD against ε")))
  else:
    rep.add("Not run yet for this table (the sweep driver runs it for "
            f"{', '.join(fam['figure3'])}).", "")
  # Figure 4.
  runs, names = [], []
  for s in fam["figure4"]:
    found = [common.read_json(p) for p in paths(s, "dlif_factors")]
    if found:
      import numpy as np
      mean = np.mean([f["factors"] for f in found], axis=0).tolist()
      runs.append(figure4.summarise(mean))
      names.append(f"{label[s]} (mean of {len(found)})")
  rep.add(f"### Figure 4 ({tag}): trained DLIF factors", "")
  if runs:
    rep.summary.append((f"Figure 4 ({tag})", "DLIF factors of " + ", ".join(names),
                        rows[0].get("protocol") or "—", "as the table", "from the table's runs",
                        "#" + _anchor(f"Figure 4 ({tag}): trained DLIF factors")))
    target, link = rep.figure(f"figure4_{tag}.png")
    figure4.plot(runs, names, target)
    rep.add(f"![Figure 4, {tag}]({link})", "")
    rep.add("| run | mean factor | min | max | mean over layers, per t |",
            "|---|---:|---:|---:|---|")
    for run, name in zip(runs, names):
      rep.add(f"| {name} | {run['mean']:.4f} | {run['min']:.4f} | {run['max']:.4f} | "
              + ", ".join(f"{x:.3f}" for x in run["mean_over_layers"]) + " |")
    if len(runs) >= 2:
      a, b = runs[0], runs[-1]
      rep.add("", f"**Honest reading.** Mean factor {b['mean']:.4f} ({names[-1]}) against "
                  f"{a['mean']:.4f} ({names[0]}): "
                  f"{'larger' if b['mean'] > a['mean'] else 'not larger'}"
                  " with the larger ρ (the paper reports larger factors for ρ = 1, Appendix B); "
                  f"all factors lie in [{min(r['min'] for r in runs):.3f}, "
                  f"{max(r['max'] for r in runs):.3f}], near their initial 1.0 as in the paper.")
    rep.add("")
  else:
    rep.add("No DLIF factors yet.", "")
  # Figure 5.
  groups = []
  for s in fam["figure5"]:
    curves = [figure5.load_curves(os.path.dirname(p)) for p in paths(s, "metrics")]
    if curves:
      groups.append({"label": label[s], "curves": curves})
  rep.add(f"### Figure 5 ({tag}): CE and MS-MPPD over training", "")
  if groups:
    rep.summary.append((f"Figure 5 ({tag})", "training curves of " + ", ".join(
        g["label"] for g in groups), rows[0].get("protocol") or "—", "as the table",
                        "from the table's runs",
                        "#" + _anchor(f"Figure 5 ({tag}): CE and MS-MPPD over training")))
    target, link = rep.figure(f"figure5_{tag}.png")
    figure5.plot(groups, target)
    rep.add(f"![Figure 5, {tag}]({link})", "")
    rep.add("| run | final CE | final MS-MPPD |", "|---|---:|---:|")
    finals = []
    for g in groups:
      ce, mppd = (figure5.group_stats(g["curves"], "ce"),
                  figure5.group_stats(g["curves"], "ms_mppd")
                  if all("ms_mppd" in c for c in g["curves"]) else None)
      finals.append((g["label"], ce["mean"][-1] if ce["mean"] else None,
                     mppd["mean"][-1] if mppd and mppd["mean"] else None))
      rep.add(f"| {g['label']} (n={len(g['curves'])}) | {fmt(finals[-1][1], 4)} | "
              f"{'—' if finals[-1][2] is None else f'{finals[-1][2]:.4g}'} |")
    if len(finals) >= 2 and finals[0][2] and finals[-1][2]:
      (la, ca, ma), (lb, cb, mb) = finals[0], finals[-1]
      rep.add("", f"**Honest reading.** From {la} to {lb}: final CE "
                  f"{'higher' if cb > ca else 'lower'} ({fmt(ca, 4)} → {fmt(cb, 4)}), "
                  f"final MS-MPPD "
                  f"{'lower' if mb < ma else 'higher'} ({ma:.4g} → {mb:.4g}); the paper's "
                  "Figure 5 (CIFAR-100 WRN16) shows CE up and MS-MPPD down with ρ = 1.")
    rep.add("")
  else:
    rep.add("No training curves yet.", "")


def _figure3_reading(groups, stats) -> str:
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


SUITES_TITLE = "Beyond the paper: the paper's attack suite against standard and full"
SUITE_COLUMNS = (("clean", "Clean"), ("paper", "paper suite"), ("standard", "standard"),
                 ("estimators", "paper × estimators"), ("transfer", "transfer"),
                 ("full", "full"))


def section_suites(rep: Report, path: str) -> None:
  """The robust accuracy each suite measures on the same models, and the drop paper → full."""
  data = common.read_json(path)
  models = data.get("models", [])
  if not models:
    return
  title = SUITES_TITLE if not any(l == f"## {SUITES_TITLE}" for l in rep.lines) else (
      f"{SUITES_TITLE} ({_rel(path, rep.out_dir)})")
  first = models[0]
  e = first["eval"]
  rep.add(f"## {title}", "")
  rep.add(f"Command: `{data.get('command', 'python -m experiments.suites')}` "
          f"(`{_rel(path, rep.out_dir)}`, git {data.get('git') or 'unknown'}). Each model is "
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
                      "#" + _anchor(title)))


def section_not_run(rep: Report, paper: dict, tables_run: set) -> None:
  missing = [k for k in paper["tables"] if k not in tables_run]
  if not missing:
    return
  rep.add(f"## {NOT_RUN_TITLE}", "")
  for k in missing:
    t = paper["tables"][k]
    why = ("CIFAR-100 is not available offline on this machine (../shared/data/README.md); "
           f"where TFDS can prepare it: `python -m experiments.sweep --rows {k} --protocol full`"
           if t["dataset"] == "cifar100" else
           "not run yet: `python -m experiments.sweep --rows "
           + ("table2" if k == "table2" else "table1_" + t["model"]) + " --protocol reduced` "
           "(or `--protocol full` on a GPU)")
    rep.add(f"- {t['title']}: {why}.")
    rep.summary.append((t["title"], "not run", "—", "—", "—", "#" + _anchor(NOT_RUN_TITLE)))
  rep.add("")


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
  paper = common.read_json(PAPER_NUMBERS)
  found = discover(paths)
  if not any(found.values()):
    raise ValueError(f"no results found in {', '.join(map(repr, paths))} (no results.json, "
                     f"suites.json, figure1.json or theorem31_*.json up to two levels deep); run "
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
    section_figure1(body, path)
  section_theorem31(body, found["theorem31"])

  # One section per (table, protocol): reduced and full runs are never averaged together.
  groups, seen = {}, set()
  mid = {"rows": [], "roots": []}
  for root in found["sweeps"]:
    results = common.read_json(os.path.join(root, "results.json"))
    for row in results.get("rows", []):
      if row.get("table") == report_mid.TABLE:
        mid["rows"].append(row)
        if root not in mid["roots"]:
          mid["roots"].append(root)
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
      section_table(body, paper, table, g["rows"], g["roots"], g["results"], protocol=key[1],
                    duplicates=g["duplicates"])
  tables = {k[0] for k in groups}
  if mid["rows"]:
    report_mid.section(body, mid["rows"], mid["roots"], paper, display=DISPLAY, title=MID_TITLE)
    finished = [r for r in mid["rows"] if r.get("accuracies")]
    body.summary.append((
        "Mid scale", f"{len(finished)} of {len(mid['rows'])} runs finished", "mid",
        ", ".join(str(x) for x in sorted({r["seed"] for r in finished})) or "—",
        fmt_seconds(sum(r.get("wall_s") or 0 for r in finished) or None), "#" + _anchor(MID_TITLE)))
  for path in found["suites"]:
    section_suites(body, path)
  section_not_run(body, paper, set(tables))
  for n in (3, 4, 5):
    if not any(item.startswith(f"Figure {n} ") for item, *_ in body.summary):
      body.summary.append((f"Figure {n}", "not run (needs the table runs)", "—", "—", "—",
                           "#" + _anchor(NOT_RUN_TITLE)))
  rep.summary = body.summary

  rep.add("# Reproducing “Robust Stable Spiking Neural Networks” (Ding et al., ICML 2024)", "")
  rep.add(f"Generated by `{common.command_line()}` on {common.now()} (git {commit}) from "
          + ", ".join(f"`{_rel(p, out_dir)}`" for p in paths)
          + "; the paper's numbers are `experiments/paper_numbers.json`. Do not edit by hand: "
            "rerun the command after more runs finish.", "")
  rep.add("| item | what we ran | scale | seeds | wall time |", "|---|---|---|---|---|")
  for item, what, scale, seeds, wall, anchor in rep.summary:
    rep.add(f"| [{item}]({anchor}) | {what} | {scale} | {seeds} | {wall} |")
  rep.add("| Figure 2 | the training diagram; nothing to measure | — | — | — |", "")
  rep.lines += body.lines
  # Every input has been read: publish the figures, then the report that links them.
  fig_dir = os.path.join(out_dir, "figures")
  for name in sorted(os.listdir(staging)):
    with open(os.path.join(staging, name), "rb") as f:
      png = f.read()
    common.atomic_write(os.path.join(fig_dir, name), lambda f: f.write(png), mode="wb")
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, "REPRODUCTION.md")
  common.atomic_write(path, lambda f: f.write("\n".join(rep.lines).rstrip() + "\n"))
  return path


@cli.main_guard
def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--results", action="append", default=[],
                      help="directory to scan for results (repeatable; default: results)")
  parser.add_argument("--out", default="docs", help="output directory of REPRODUCTION.md")
  args = parser.parse_args(argv)
  path = build(args.results or ["results"], args.out)
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
