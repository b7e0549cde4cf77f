"""The sections of the paper's tables: what was run, the table beside the paper's, each run.

One section per (table, protocol). The numbers come from :mod:`experiments.report.analysis`, the
sentences from :mod:`experiments.report.reading`; this module lays them out.
"""

from __future__ import annotations

import importlib
import os
from typing import Sequence

from experiments import rows as rows_lib
from experiments.report import analysis, figures, reading
from experiments.report.markdown import (DISPLAY, Report, anchor, cell, fmt, fmt_seconds,
                                         fmt_stat)

NOT_RUN_TITLE = "Paper tables without runs here"


def _root_runs(results: dict) -> list[dict]:
  return [r for r in results.get("runs", []) if r.get("command")]


def _what_we_ran(rep: Report, title: str, rows: list[dict], roots: list[str],
                 results_list: list[dict], done: list[dict]) -> list[str]:
  """The list of commands, files, protocol, model, data, seeds and wall times; the attacks."""
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
  status = analysis.count_by(rows, lambda r: r.get("status", "pending"))
  rep.add("What we ran:", "")
  for c in commands:
    rep.add(f"- command: `{c}`")
  files = ", ".join(f"`{rep.rel(os.path.join(r, 'results.json'))}`" for r in roots)
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
          f"(per run: training {fmt_seconds(analysis.mean(train_walls))}, evaluation "
          f"{fmt_seconds(analysis.mean(eval_walls))} on average)", "")
  rep.summary.append((title, f"{len(done)} runs",
                      ", ".join(protocols) or "—", ", ".join(map(str, seeds)) or "—",
                      fmt_seconds(sum(walls) if walls else None), anchor(title)))
  return attacks


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
  signatures = {s for r in rows if (s := analysis.scale_signature(r)) is not None}
  if len(signatures) > 1:
    rep.add(f"**Note: these rows were trained with {len(signatures)} different model/training "
            "configs (see the per-run table); their means mix them.**", "")
  runs = analysis.table_runs(rows, 100 if spec.get("dataset") == "cifar100" else 10)
  done, at_chance, learned, stats = runs.done, runs.at_chance, runs.learned, runs.stats
  attacks = _what_we_ran(rep, title, rows, roots, results_list, done)
  paper_rows = spec["rows"]
  # The paper's rows in its order, then ours that it does not have (the DLIF placement rows).
  settings = list(paper_rows) + [s for s in dict.fromkeys(r["setting"] for r in rows)
                                 if s not in paper_rows]
  labels = {r["setting"]: r.get("label") for r in rows}
  n_seeds = analysis.count_by(learned, lambda r: r["setting"])
  n_chance = analysis.count_by(at_chance, lambda r: r["setting"])
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
    mark = " †" if s in runs.masked_settings else ""
    rep.add(f"| {label}{mark} | {n_seeds.get(s, 0)}{extra} | "
            + " | ".join(cell(ours.get(a), paper_vals.get(a)) for a in columns)
            + f" | {fmt_stat(ours['worst-case']) if 'worst-case' in ours else '—'} |")
  _per_run_table(rep, rows, settings, columns, runs)
  failed = [r for r in rows if r.get("status") == "failed"]
  if failed:
    rep.add("", "Failed rows: " + "; ".join(f"`{r['id']}`: {r.get('error', '')}" for r in failed))
  rep.add("")
  rep.add("**Honest reading.**", "")
  if at_chance:
    rep.add("- " + reading.at_chance_reading(at_chance, done))
  for line in reading.honest_reading(table, stats, paper_rows, columns, learned,
                                     at_chance={r["setting"] for r in at_chance}):
    rep.add(f"- {line}")
  if checks := reading.checks_reading(done):
    rep.add(f"- {checks}")
  rep.add("")
  if any(r.get("protocol") == "reduced" for r in rows):
    rep.add("**Scope of the reduced protocol** (from configs/cifar10_reduced.py). "
            + reduced_scope(), "")
  # The figures average runs too: the ones that never left chance would only dilute them.
  figures.section_figures(rep, table, [r for r in rows if r not in at_chance], roots)


def _per_run_table(rep: Report, rows, settings, columns, runs: analysis.TableRuns) -> None:
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
            + (", stayed at chance" if r in runs.at_chance else "")
            + (f", masking check failed: {', '.join(runs.masked[r['id']])}"
               if r["id"] in runs.masked else "") + " |")
  rep.add("", "</details>", "")
  if runs.masked:
    rep.add("† The mean includes runs that learned but failed a gradient-masking check ("
            + "; ".join(f"`{i}`: {', '.join(names)}" for i, names in runs.masked.items())
            + "): their robust accuracies are what the attacks found, and may overstate "
              "robustness.", "")


def reduced_scope() -> str:
  """What configs/cifar10_reduced.py says its scale can and cannot show (its ``SCOPE``)."""
  return " ".join(importlib.import_module("configs.cifar10_reduced").SCOPE.split())


def section_not_run(rep: Report, paper: dict, tables_run: set) -> None:
  """The paper's tables without runs, and the command that would run each."""
  missing = [k for k in paper["tables"] if k not in tables_run]
  if not missing:
    return
  rep.add(f"## {NOT_RUN_TITLE}", "")
  for k in missing:
    t = paper["tables"][k]
    why = ("CIFAR-100 is not available offline on this machine (../shared/data/README.md); "
           f"where TFDS can prepare it: `python -m experiments.sweep --rows "
           f"{rows_lib.row_set_of(k)} --protocol full`"
           if t["dataset"] == "cifar100" else
           f"not run yet: `python -m experiments.sweep --rows {rows_lib.row_set_of(k)} "
           "--protocol reduced` (or `--protocol full` on a GPU)")
    rep.add(f"- {t['title']}: {why}.")
    rep.summary.append((t["title"], "not run", "—", "—", "—", anchor(NOT_RUN_TITLE)))
  rep.add("")
