"""Worst case and gradient-masking sanity checks: pure functions of an evaluation's results."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import numpy as np

from jsnn.attacks import APGDSpec, APGDTSpec, PGDSpec, parse_attack
from jsnn.evaluation.plan import LARGE_EPSILON_RUN, ZERO_GRADIENT_RUN, TaskKey
from jsnn.evaluation.records import eps255
from jsnn.evaluation.settings import NEAR_ZERO_GRADIENT, WORST_CASE

# Sanity checks (see `sanity_checks`). A stronger attack may beat a weaker one's accuracy by at
# most this much (a fraction, i.e. 0.5 percentage points) or one example, whichever is larger:
# random starts make PGD's accuracy noisy by about that much, gradient masking by far more.
TOLERANCE = 0.005
# PGD-10 (α = ε/4) at LARGE_EPSILON should leave (almost) nothing correct; more than this
# accuracy there means the attack does not follow the loss (masked or obfuscated gradients).
LARGE_EPSILON_MAX_ACCURACY = 0.05


def worst_case(flags: Mapping[str, np.ndarray]) -> np.ndarray:
  """Per example, correct under every attack (AutoAttack's robust accuracy): the flags' AND."""
  if not flags:
    raise ValueError("the worst case needs at least one attack")
  return np.logical_and.reduce([np.asarray(f, bool) for f in flags.values()])


class Check(NamedTuple):
  """One sanity check: its name, whether it passed, and what it found."""
  name: str
  passed: bool
  message: str


def sanity_checks(results: Mapping[str, Any]) -> list[Check]:
  """Checks for signs of gradient masking in an accuracy table; a failed check is a warning.

  Surrogate gradients can mask gradients, and a masked model looks robust. The checks run where
  the attacks they compare are present (each entry needs ``accuracy`` and ``total``):

  * ``pgd-vs-fgsm``: every PGD-k is at most FGSM's accuracy;
  * ``pgd-steps``: PGD accuracy does not rise as the steps grow (7 → 10 → 20 → 40);
  * ``apgd-vs-pgd``: APGD-CE-k is at most PGD-k's accuracy (the same budget);
  * ``large-epsilon``: PGD-10 at ε = 64/255 (``results["check_runs"]["large_epsilon"]``) leaves at
    most 5 % correct;
  * ``zero-gradient``: no correctly classified clean example has an all-zero (or, where counted,
    near-zero) input gradient (``results["check_runs"]["zero_gradient"]["count"]`` and
    ``["near_zero_count"]``); ``zero-gradient@<estimator>`` the same under each estimator variant;
  * ``square-vs-white-box``: Square fools no image that every white-box attack left correct
    (``results["masking"]["square_vs_white_box"]["count"]``);
  * ``transfer-vs-white-box``: no attack crafted on another model (``eval.transfer_from``) fools
    an image that every white-box attack left correct
    (``results["masking"]["transfer_vs_white_box"]["count"]``).

  The comparisons allow a slack of ``TOLERANCE`` (0.5 percentage points) or one example, whichever
  is larger.

  Args:
    results: ``{"attacks": {name: {"accuracy", "total", ...}}, "check_runs": {...}}``; names as in
      :func:`parse_attack`.

  Returns:
    The checks that could run, passed or not, in the order above.
  """
  entries = results.get("attacks", {})
  runs = results.get("check_runs", {})
  # The attacks under the evaluation's own gradient.
  specs = {name: parse_attack(name) for name in entries
           if name != WORST_CASE and not TaskKey.parse(name).variant}
  acc = {name: float(entries[name]["accuracy"]) for name in specs}

  def slack(*names):
    total = min(int(entries[n]["total"]) for n in names)
    return max(TOLERANCE, 1 / max(total, 1))

  def pct(x):
    return f"{100 * x:.2f}%"

  checks = []
  pgds = sorted((s.num_steps, n) for n, s in specs.items() if isinstance(s, PGDSpec))
  if "fgsm" in acc and pgds:
    bad = [n for _, n in pgds if acc[n] > acc["fgsm"] + slack(n, "fgsm")]
    checks.append(Check(
        "pgd-vs-fgsm", not bad,
        f"{', '.join(f'{n} {pct(acc[n])}' for n in bad)} above FGSM {pct(acc['fgsm'])}: an "
        "iterative attack that does worse than one step suggests masked gradients" if bad else
        f"every PGD ≤ FGSM ({pct(acc['fgsm'])})"))
  if len(pgds) > 1:
    bad = [(a, b) for (_, a), (_, b) in zip(pgds, pgds[1:]) if acc[b] > acc[a] + slack(a, b)]
    checks.append(Check(
        "pgd-steps", not bad,
        "; ".join(f"{b} {pct(acc[b])} above {a} {pct(acc[a])}" for a, b in bad)
        + ": more PGD steps should not help the model" if bad else
        "PGD accuracy does not rise with the steps (" + " → ".join(n for _, n in pgds) + ")"))
  pairs = [(n, f"pgd{s.num_steps}") for n, s in specs.items()
           if isinstance(s, APGDSpec) and not isinstance(s, APGDTSpec) and s.loss == "ce"
           and f"pgd{s.num_steps}" in acc]
  if pairs:
    bad = [(a, p) for a, p in pairs if acc[a] > acc[p] + slack(a, p)]
    checks.append(Check(
        "apgd-vs-pgd", not bad,
        "; ".join(f"{a} {pct(acc[a])} above {p} {pct(acc[p])}" for a, p in bad)
        + ": APGD-CE should be at least as strong as PGD with the same steps" if bad else
        ", ".join(f"{a} ≤ {p}" for a, p in pairs)))
  if LARGE_EPSILON_RUN in runs:
    r = runs[LARGE_EPSILON_RUN]
    ok = r["accuracy"] <= LARGE_EPSILON_MAX_ACCURACY
    checks.append(Check(
        "large-epsilon", ok,
        f"PGD-10 at ε = {eps255(r['epsilon'])} leaves {pct(r['accuracy'])} correct "
        f"({'≤' if ok else '>'} {pct(LARGE_EPSILON_MAX_ACCURACY)})"
        + ("" if ok else ": the attack does not follow the loss (masked or obfuscated gradients)")))
  zero = [n for n in runs if TaskKey.parse(n).attack == ZERO_GRADIENT_RUN]
  for name in sorted(zero, key=lambda n: (n != ZERO_GRADIENT_RUN, n)):
    r = runs[name]
    count, near = int(r["count"]), r.get("near_zero_count")
    variant = TaskKey.parse(name).variant
    under = f" under {variant}" if variant else ""
    bad = count > 0 or bool(near)
    text = f"{count} of {r['total']} test images are classified correctly with an all-zero input "
    text += f"gradient{under}"
    if near is not None:
      correct = max(int(r.get("correct_clean", r["total"])), 1)
      text += (f", {near} with a zero or near-zero one (max |∇| < {NEAR_ZERO_GRADIENT:g}; "
               f"{pct(near / correct)} of the {correct} correct)")
    checks.append(Check(
        name.replace("_", "-"), not bad,
        text + (": gradient attacks cannot move them, so their robustness is overstated"
                if bad else "")))
  masking = results.get("masking", {})

  def beats_white_box(name: str, entry: dict, subject: str, meaning: str) -> None:
    count = int(entry["count"])
    checks.append(Check(
        name, count == 0,
        f"{subject} {count} of {entry['total']} images that every white-box attack "
        f"({len(entry['white_box'])} runs) left correct" + (f": {meaning}" if count else "")))

  if masking.get("square_vs_white_box"):
    square = masking["square_vs_white_box"]
    beats_white_box("square-vs-white-box", square, f"Square ({', '.join(square['square'])}) fools",
                    "a gradient-free attack beating the gradient attacks means masked gradients")
  if masking.get("transfer_vs_white_box"):
    transfer = masking["transfer_vs_white_box"]
    beats_white_box("transfer-vs-white-box", transfer,
                    f"attacks crafted on {transfer['source']} fool",
                    "a black-box transfer beating white-box attacks means the white-box "
                    "gradients are masked")
  return checks
