"""The beyond-paper section on the frontier attacks: SA-PGD and the ASSG and PDSG gradients.

A model is a directory the report scans that holds a ``robustness.json`` with a frontier attack
(kind ``sa-pgd``) or a frontier gradient estimator (``assg``, ``pdsg``), a
``robustness_before_frontier.json`` beside it, or an evaluation with the full suite (which runs
SA-PGD: a full-suite evaluation without it says so). :func:`read_model` reads one directory's
numbers into a :class:`FrontierModel`; :func:`section` writes them as Markdown.

Per model the section compares three per-example worst cases, all from the JSON:

* the paper's suite: the paper's attacks under the evaluation's own surrogate gradient (the
  ``estimators`` summary's entry for it, from whichever file has one without a frontier attack);
* before the frontier attacks: ``worst_case`` of ``robustness_before_frontier.json``, or of
  ``robustness.json`` itself when it ran no frontier attack;
* with them: ``worst_case`` of ``robustness.json`` when it ran one.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from experiments import results as sweep_results
from experiments.report import markdown, reading
from experiments.report.markdown import Report, anchor, attack_name, fmt, fmt_seconds, fmt_signed
from jsnn import _io

TITLE = "Beyond the paper: the frontier attacks SA-PGD, ASSG and PDSG"
BEFORE_FILE = "robustness_before_frontier.json"
# What the frontier adds, as robustness.json names it; jsnn.evaluation.settings.SAPGD and
# jsnn.spiking.neurons.ADAPTIVE_ESTIMATORS (imported there with JAX, so repeated here; a test
# keeps them equal).
FRONTIER_KINDS = ("sa-pgd",)
FRONTIER_ESTIMATORS = ("assg", "pdsg")


@dataclasses.dataclass(frozen=True)
class WorstCase:
  """A per-example worst case: how many of the images every attack left correct."""
  correct: int
  total: int

  @property
  def percent(self) -> float:
    return 100.0 * self.correct / self.total


@dataclasses.dataclass(frozen=True)
class FrontierModel:
  """One model's robust accuracies (%) before and with the frontier attacks.

  Attributes:
    label: the directory, relative to the results root it was found under.
    files: the JSON files read.
    model, training: robustness.json's sections of that name.
    paper_suite: the paper's attacks under the own gradient; None when no file has it.
    paper_with_sa_pgd: the same with SA-PGD (a sweep row's kept suite accuracies); None without.
    before, with_frontier: the worst cases; ``with_frontier`` is None when no frontier attack or
      estimator ran (``before`` is then ``robustness.json``'s own).
    accuracy: ``(attack, gradient) -> %`` of every gradient attack the evaluation ran.
    attacks, gradients: their order (the evaluation's own gradient first).
    worst_per_attack, worst_per_gradient: the ``estimators`` summary's worst cases.
    frontier_attacks, frontier_gradients: the names of those that are frontier ones.
    mismatched: attacks in both files whose settings (fingerprints) differ.
  """
  label: str
  files: tuple
  num_images: int
  epsilon_255: float | None
  model: dict
  training: dict
  checkpoint_step: int | None
  data: str
  clean: float | None
  paper_suite: float | None
  paper_with_sa_pgd: float | None
  before: WorstCase | None
  with_frontier: WorstCase | None
  accuracy: dict
  attacks: tuple
  gradients: tuple
  worst_per_attack: dict
  worst_per_gradient: dict
  frontier_attacks: tuple
  frontier_gradients: tuple
  mismatched: tuple
  checks: list
  wall_s: float | None

  @property
  def difference(self) -> float | None:
    """With − before, in percentage points."""
    if self.before is None or self.with_frontier is None:
      return None
    return self.with_frontier.percent - self.before.percent


def _worst_case(results: dict, path: str) -> WorstCase:
  worst = results.get("worst_case")
  if not isinstance(worst, dict) or "correct" not in worst or "total" not in worst:
    raise ValueError(f"cannot read {path}: it has no worst_case with correct and total; rerun "
                     "the evaluation that wrote it")
  return WorstCase(int(worst["correct"]), int(worst["total"]))


def _evaluation_seconds(results: dict) -> float | None:
  """The time of an evaluation's runs, summed as experiments.suites sums it: a resumed
  evaluation's own ``wall_time_s`` is only its last call's."""
  runs = [r for section in ("attacks", "check_runs") for r in results.get(section, {}).values()
          if isinstance(r, dict)] + list(results.get("cascades", {}).values())
  seconds = [float(r["wall_time_s"]) for r in runs if r.get("wall_time_s") is not None]
  return sum(seconds) if seconds else None


def _own_gradient(results: dict) -> tuple[str, dict | None]:
  """The evaluation's own gradient's name and its ``estimators`` summary entry."""
  for name, entry in (results.get("estimators") or {}).get("estimators", {}).items():
    if entry.get("gradient_estimator") == "surrogate":
      return name, entry
  return results.get("surrogate") or "surrogate", None


def _is_frontier(record: dict) -> tuple[bool, bool]:
  """Whether an attack record is a frontier attack, and whether its gradient is a frontier one."""
  return (record.get("kind") in FRONTIER_KINDS,
          record.get("estimator") in FRONTIER_ESTIMATORS)


def _paper_suite(results: dict) -> float | None:
  """The own gradient's worst case, if it covers none of the frontier attacks."""
  _, entry = _own_gradient(results)
  attacks = results.get("attacks", {})
  if entry is None or any(_is_frontier(attacks.get(a, {}))[0] for a in entry["attacks"]):
    return None
  return 100.0 * entry["worst_case_accuracy"]


def is_candidate(directory: str) -> bool:
  """Whether ``directory`` holds a frontier measurement, or an evaluation that should have one."""
  if os.path.exists(os.path.join(directory, BEFORE_FILE)):
    return True
  results = _io.read_json(os.path.join(directory, _io.ROBUSTNESS_FILE))
  if not results:
    return False
  return results.get("suite") == "full" or any(
      any(_is_frontier(r)) for r in results.get("attacks", {}).values())


def read_model(directory: str, label: str) -> FrontierModel:
  """The numbers of one model directory (its robustness.json, and the before file if kept)."""
  path = os.path.join(directory, _io.ROBUSTNESS_FILE)
  results = _io.read_json(path)
  if results is None:
    raise ValueError(f"{directory} holds {BEFORE_FILE} but no {_io.ROBUSTNESS_FILE}: the "
                     "evaluation with the frontier attacks is missing; run it, or move the file")
  before_path = os.path.join(directory, BEFORE_FILE)
  before = _io.read_json(before_path)
  attacks = results.get("attacks", {})
  own, _ = _own_gradient(results)
  accuracy, frontier_attacks, frontier_gradients = {}, [], []
  for name, record in attacks.items():
    # The record says which attack and gradient it is (jsnn.evaluation.plan.attack_record).
    base, variant = record.get("attack", name), sweep_results.record_variant(record)
    if record.get("kind") == "clean" or variant == sweep_results.TRANSFER:
      continue
    is_attack, is_gradient = _is_frontier(record)
    gradient = variant or own
    accuracy[(base, gradient)] = 100.0 * record["accuracy"]
    if is_attack and base not in frontier_attacks:
      frontier_attacks.append(base)
    if is_gradient and gradient not in frontier_gradients:
      frontier_gradients.append(gradient)
  summary = results.get("estimators") or {}
  ran_frontier = bool(frontier_attacks or frontier_gradients)
  worst = _worst_case(results, path)
  mismatched = ()
  if before is not None:
    mismatched = tuple(n for n, r in before.get("attacks", {}).items()
                       if n in attacks and r.get("fingerprint") != attacks[n].get("fingerprint"))
  paper = _paper_suite(results)
  if paper is None and before is not None:
    paper = _paper_suite(before)
  # A sweep row evaluated with the full suite ran SA-PGD beside the paper's attacks; the
  # per-example flags separated them, and the row keeps what they gave.
  kept = sweep_results.stored_suites(directory, results) or {}
  percent = lambda key: None if kept.get(key) is None else 100.0 * kept[key]
  if paper is None:
    paper = percent("paper")
  return FrontierModel(
      label=label,
      files=tuple(p for p in (before_path, path) if os.path.exists(p)),
      num_images=worst.total, epsilon_255=(None if results.get("epsilon") is None
                                           else 255 * results["epsilon"]),
      model=results.get("model") or {}, training=results.get("training") or {},
      checkpoint_step=results.get("checkpoint_step"), data=results.get("data") or "—",
      clean=(100.0 * attacks["clean"]["accuracy"] if "clean" in attacks else None),
      paper_suite=paper, paper_with_sa_pgd=percent("sa_pgd"),
      before=_worst_case(before, before_path) if before is not None else (
          None if ran_frontier else worst),
      with_frontier=worst if ran_frontier else None,
      accuracy=accuracy,
      attacks=tuple(dict.fromkeys(a for a, _ in accuracy)),
      gradients=tuple(dict.fromkeys([own] + [g for _, g in accuracy])),
      worst_per_attack={a: 100.0 * e["worst_case_accuracy"]
                        for a, e in summary.get("per_attack", {}).items()},
      worst_per_gradient={g: 100.0 * e["worst_case_accuracy"]
                          for g, e in summary.get("estimators", {}).items()},
      frontier_attacks=tuple(frontier_attacks), frontier_gradients=tuple(frontier_gradients),
      mismatched=mismatched, checks=list(results.get("checks", [])),
      wall_s=_evaluation_seconds(results))


def _worst(w: WorstCase | None) -> str:
  return "—" if w is None else f"{fmt(w.percent)} ({w.correct})"


def section(rep: Report, directories: Sequence[tuple[str, str]]) -> list[FrontierModel]:
  """Writes the frontier section for ``(directory, label)`` pairs; none: no section."""
  models = [read_model(d, label) for d, label in directories]
  if not models:
    return models
  rep.add(f"## {TITLE}", "")
  rep.add("Robust accuracy in % (images left correct in brackets), per example worst cases: "
          "**paper suite** — the paper's attacks under the evaluation's own surrogate gradient; "
          "**paper suite + SA-PGD** — the same with SA-PGD added (a sweep row's `"
          + sweep_results.SUITES_FILE + "`, from its per-example flags); "
          "**before** — everything evaluated before the frontier attacks (`" + BEFORE_FILE
          + "` where it is kept, else the evaluation itself when it ran none of them); "
          "**with frontier** — the same plus SA-PGD and the ASSG and PDSG gradient variants "
          "(`robustness.json`).", "")
  rep.add("What we ran:", "")
  for m in models:
    eps = "—" if m.epsilon_255 is None else f"{m.epsilon_255:.3g}/255"
    t = m.training
    rep.add(f"- `{m.label}`: {markdown.model_text(m.model)}; training mode "
            f"{t.get('mode', '—')}, ρ = {t.get('rho', '—')}, {t.get('epochs', '—')} epochs; "
            f"checkpoint step "
            f"{m.checkpoint_step}; the first {m.num_images} test images of {m.data}, L∞ ε = "
            f"{eps}; evaluation time {fmt_seconds(m.wall_s)} (its runs summed); files "
            + ", ".join(f"`{rep.rel(p)}`" for p in m.files))
  rep.add("", "| model | images | clean | paper suite | paper suite + SA-PGD | before | "
              "with frontier | with − before (points) |",
          "|---|---:|---:|---:|---:|---:|---:|---:|")
  for m in models:
    rep.add(f"| {m.label} | {m.num_images} | {fmt(m.clean)} | {fmt(m.paper_suite)} | "
            f"{fmt(m.paper_with_sa_pgd)} | {_worst(m.before)} | "
            f"{_worst(m.with_frontier) if m.with_frontier else 'absent'} | "
            f"{fmt_signed(m.difference)} |")
  rep.add("")
  for m in models:
    if m.with_frontier is not None:
      _accuracy_table(rep, m)
  rep.add("**Reading.**", "")
  for m in models:
    rep.add(f"- {frontier_reading(m)}")
    # The models without frontier runs have their checks read in their own sections.
    checks = reading.checks_reading([{"id": m.label, "checks": m.checks}])
    if checks and m.with_frontier is not None:
      rep.add(f"  {checks}")
  rep.add("")
  measured = [m for m in models if m.with_frontier is not None]
  images = sorted({m.num_images for m in models})
  rep.summary.append(("Beyond the paper: frontier attacks",
                      f"SA-PGD, ASSG and PDSG on {len(measured)} of {len(models)} models",
                      ", ".join(map(str, images)) + " test images", "—",
                      fmt_seconds(sum(m.wall_s or 0 for m in measured) or None), anchor(TITLE)))
  return models


def _accuracy_table(rep: Report, m: FrontierModel) -> None:
  """Accuracy per attack (rows) and gradient (columns); the frontier ones marked (new)."""
  new = lambda name, is_new: f"{name} (new)" if is_new else name
  grads = m.gradients
  rep.add(f"`{m.label}`, accuracy (%) per attack and gradient ({grads[0]}: the evaluation's own):",
          "")
  rep.add("| attack | " + " | ".join(new(g, g in m.frontier_gradients) for g in grads)
          + " | worst over gradients |", "|---|" + "---:|" * (len(grads) + 1))
  for a in m.attacks:
    rep.add(f"| {new(attack_name(a), a in m.frontier_attacks)} | "
            + " | ".join(fmt(m.accuracy.get((a, g))) for g in grads)
            + f" | {fmt(m.worst_per_attack.get(a))} |")
  rep.add("| worst over attacks | " + " | ".join(fmt(m.worst_per_gradient.get(g)) for g in grads)
          + " | |", "")


def frontier_reading(m: FrontierModel) -> str:
  """What the frontier attacks changed for one model, from its numbers."""
  if m.with_frontier is None:
    worst = "—" if m.before is None else (
        f"{fmt(m.before.percent)} % ({m.before.correct} of {m.before.total} images)")
    return (f"`{m.label}`: SA-PGD and the ASSG and PDSG gradients are absent from its "
            f"evaluation; its worst case is {worst}.")
  ran = " and ".join(part for part in (
      ", ".join(attack_name(a) for a in m.frontier_attacks),
      (f"the {', '.join(m.frontier_gradients)} gradients" if m.frontier_gradients else "")) if part)
  text = f"`{m.label}`: with {ran} the worst case is {fmt(m.with_frontier.percent)} % " \
         f"({m.with_frontier.correct} of {m.with_frontier.total} images)"
  if m.before is not None:
    fewer = m.before.correct - m.with_frontier.correct
    text += (f", {fmt_signed(m.difference)} points ({fewer} images fewer) against "
             f"{fmt(m.before.percent)} % before them")
  if m.paper_suite is not None:
    text += (f"{', and' if m.before is not None else ','} "
             f"{fmt_signed(m.with_frontier.percent - m.paper_suite)} points against the "
             f"paper's suite ({fmt(m.paper_suite)} %)")
  if m.before is None:
    text += f"; the worst case before them was not kept (no `{BEFORE_FILE}`)"
  text += "."
  if m.paper_suite is not None and m.paper_with_sa_pgd is not None:
    text += (f" SA-PGD alone takes the paper's suite from {fmt(m.paper_suite)} % to "
             f"{fmt(m.paper_with_sa_pgd)} % ({fmt_signed(m.paper_with_sa_pgd - m.paper_suite)} "
             "points).")
  if m.accuracy:
    (a, g), best = min(m.accuracy.items(), key=lambda kv: kv[1])
    text += f" The strongest single attack is {attack_name(a)} under {g} ({fmt(best)} %)."
  if m.mismatched:
    text += (f" **The two files measured {', '.join(m.mismatched)} with different settings "
             "(fingerprints), so the difference mixes settings.**")
  return text
