"""Robustness of a trained checkpoint: the paper's attack table, the ε sweep and sanity checks.

``evaluate_checkpoint(config, workdir)`` restores ``workdir``'s checkpoint, runs an attack suite
(by default Table 1's: clean, FGSM, PGD-7/10/20/40, APGD-CE, APGD-DLR at ε = 8/255, reference
spec §5) over every test image exactly once, and writes

* ``robustness.json``: per attack its settings, accuracy, counts, wall time (compilation
  included) and the forward and backward passes it spends per image; the worst case over all
  attacks per example (AutoAttack's robust accuracy); and the sanity checks;
* ``robustness_flags.npz``: per attack the per-example "still correct" flags the worst case needs;
* ``robustness.csv``: the table as rows.

The JSON and the flags are rewritten (atomically) after each attack, and a rerun reuses every
attack whose settings are unchanged, so an interrupted evaluation resumes where it stopped. Nothing
is written before all inputs are validated, the checkpoint restored and the test set loaded.

``sweep_epsilon(config, workdir)`` is Figure 3: PGD-10 with α = ε/4 at each ε of the sweep, its
accuracy and the MS-MPPD of the last spiking layer between clean and adversarial inputs, written
to ``eps_sweep.json``, ``eps_sweep.png`` and ``eps_sweep_mppd.png``.

Every attack runs as one jitted function ``(variables, images, labels, mask, key, epsilon) ->
per-example flags`` on fixed-size batches sharded over the mesh's data axis; the last batch is
zero-padded and masked (``data.eval_batches``). ε is a traced array, so one compilation per attack
serves every batch and every ε. BatchNorm runs in eval mode throughout (running statistics), so
examples do not interact and padding cannot change a result.

Attack names: those of Table 1 (``clean``, ``fgsm``, ``pgd7``, ``pgd10``, ``pgd20``, ``pgd40``,
``apgd-ce``, ``apgd-dlr``) and, for other step counts, ``pgd<k>``, ``apgd-ce<k>``,
``apgd-dlr<k>`` (k ≥ 1). PGD step sizes are the reference's table at ε = 8/255 (2.55, 2, 1,
0.5 /255 for 7, 10, 20, 40 steps) scaled by ε/(8/255) at other radii, and ``2.5·ε/k`` for other k.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import functools
import hashlib
import io
import json
import logging
import os
import re
import sys
import time
import zlib
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jsnn import attacks, data, losses, models, parallel, perturbation, spiking, trainer
from jsnn.attacks.registry import PAPER_EPSILON

log = logging.getLogger("jsnn")

RESULTS_FILE = "robustness.json"
FLAGS_FILE = "robustness_flags.npz"
CSV_FILE = "robustness.csv"
SWEEP_FILE = "eps_sweep.json"
SWEEP_PLOT = "eps_sweep.png"
SWEEP_MPPD_PLOT = "eps_sweep_mppd.png"

WORST_CASE = "worst-case"
# Table 1's column headers.
DISPLAY_NAMES = {"clean": "Clean", "fgsm": "FGSM", "apgd-ce": "APGD-CE", "apgd-dlr": "APGD-DLR"}

# Sanity checks (see `sanity_checks`). A stronger attack may beat a weaker one's accuracy by at
# most this much (a fraction, i.e. 0.5 percentage points) or one example, whichever is larger:
# random starts make PGD's accuracy noisy by about that much, gradient masking by far more.
TOLERANCE = 0.005
# PGD-10 (α = ε/4) at this radius should leave (almost) nothing correct: 64/255 is a quarter of
# the pixel range, far beyond any robust CIFAR model; more than this accuracy there means the
# attack does not follow the loss (masked or obfuscated gradients).
LARGE_EPSILON = 64 / 255
LARGE_EPSILON_MAX_ACCURACY = 0.05

# Step counts without leading zeros, so that each attack has one name.
_PGD_RE = re.compile(r"^pgd(0|[1-9]\d*)$")
_APGD_RE = re.compile(r"^apgd-(ce|dlr)(0|[1-9]\d*)$")


class CheckpointMismatch(ValueError):
  """The checkpoint cannot be restored into the model its saved config describes."""


# -------------------------------------------------------------------------------------------------
# Settings: parsed and validated before any work
# -------------------------------------------------------------------------------------------------


def parse_attack(name: str, epsilon: float = PAPER_EPSILON) -> attacks.AttackSpec:
  """The attack called ``name`` at radius ``epsilon`` (see the module docstring for names).

  Args:
    name: a Table 1 name, or ``pgd<k>``, ``apgd-ce<k>``, ``apgd-dlr<k>``.
    epsilon: L∞ radius in [0, 1].

  Returns:
    A validated AttackSpec with ``epsilon`` set and PGD's step size resolved.

  Raises:
    ValueError: an unknown name (the message lists the known ones), k < 1, or ε outside [0, 1].
  """
  _check_epsilon(epsilon, "epsilon")
  known = attacks.attack_names()
  if name in known:
    spec = attacks.get_attack_spec(name, epsilon=epsilon)
    if spec.kind == "pgd" and spec.step_size is not None:
      # The reference's step sizes are written for ε = 8/255; keep their ratio to ε elsewhere.
      spec = dataclasses.replace(
          spec, step_size=spec.step_size * (epsilon / PAPER_EPSILON))
    return spec
  pgd_match, apgd_match = _PGD_RE.match(name), _APGD_RE.match(name)
  if pgd_match or apgd_match:
    steps = int((pgd_match or apgd_match).groups()[-1])
    if steps < 1:
      raise ValueError(f"attack {name!r}: the number of steps must be >= 1, got {steps}")
    if pgd_match:
      # Not in the reference's table (Table 1's PGD names are matched above): α = 2.5·ε/k.
      return attacks.AttackSpec(name=name, kind="pgd", epsilon=epsilon, num_steps=steps,
                                step_size=None, random_start=True)
    return attacks.AttackSpec(name=name, kind="apgd", epsilon=epsilon, num_steps=steps,
                              loss=apgd_match.group(1), random_start=True)
  raise ValueError(f"unknown attack {name!r}; known attacks: {', '.join(known)}, or pgd<k>, "
                   f"apgd-ce<k>, apgd-dlr<k> for k >= 1 steps")


def _check_epsilon(value, what: str) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
    raise ValueError(f"{what} must be a number in [0, 1] (images live in [0, 1]), got {value!r}")
  return float(value)


@dataclasses.dataclass(frozen=True)
class EvalSettings:
  """``config.eval``, validated (see configs/default.py for each key)."""
  checkpoint: str
  specs: tuple[attacks.AttackSpec, ...]
  epsilon: float
  batch_size: int
  num_examples: int
  seed: int
  surrogate: str
  surrogate_width: float
  sweep_epsilons: tuple[float, ...]
  sanity_checks: bool
  progress_bar: bool
  data_dir: str
  tfds_data_dir: str


def settings_from_config(config) -> EvalSettings:
  """Validates ``config.eval`` (or an eval section itself); raises ValueError naming a bad value."""
  e = config.eval if "eval" in config else config
  checkpoint = e.checkpoint
  if checkpoint not in ("best", "latest"):
    raise ValueError(f"eval.checkpoint must be 'best' or 'latest', got {checkpoint!r}")
  epsilon = _check_epsilon(e.epsilon, "eval.epsilon")
  names = [n.strip() for n in str(e.attacks).split(",") if n.strip()]
  if not names:
    raise ValueError(f"eval.attacks names no attack: {e.attacks!r}")
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise ValueError(f"eval.attacks lists {duplicates} more than once: {e.attacks!r}")
  specs = tuple(parse_attack(n, epsilon) for n in names)
  for key in ("batch_size", "num_examples", "seed"):
    value = e[key]
    if isinstance(value, bool) or not isinstance(value, int):
      raise ValueError(f"eval.{key} must be an integer, got {value!r}")
  if e.batch_size < 1:
    raise ValueError(f"eval.batch_size must be >= 1, got {e.batch_size}")
  if e.num_examples < 0:
    raise ValueError(f"eval.num_examples must be >= 0 (0 = the whole test split), got "
                     f"{e.num_examples}")
  if e.surrogate and e.surrogate not in spiking.SURROGATES:
    raise ValueError(f"unknown eval.surrogate {e.surrogate!r}; expected '' (the model's) or one "
                     f"of {sorted(spiking.SURROGATES)}")
  if not e.surrogate_width >= 0:
    raise ValueError(f"eval.surrogate_width must be >= 0 (0 = the surrogate's default), got "
                     f"{e.surrogate_width!r}")
  sweep = []
  for item in str(e.sweep_epsilons).split(","):
    if not item.strip():
      continue
    try:
      value = float(item) / 255
    except ValueError:
      raise ValueError(f"eval.sweep_epsilons must be numbers in /255 units, got {item!r} in "
                       f"{e.sweep_epsilons!r}") from None
    sweep.append(_check_epsilon(value, f"eval.sweep_epsilons entry {item.strip()}/255"))
  return EvalSettings(
      checkpoint=checkpoint, specs=specs, epsilon=epsilon, batch_size=e.batch_size,
      num_examples=e.num_examples, seed=e.seed, surrogate=e.surrogate,
      surrogate_width=float(e.surrogate_width), sweep_epsilons=tuple(sweep),
      sanity_checks=bool(e.get("sanity_checks", True)),
      progress_bar=bool(e.get("progress_bar", True)), data_dir=e.get("data_dir", ""),
      tfds_data_dir=e.get("tfds_data_dir", ""))


def passes_per_image(spec: attacks.AttackSpec) -> tuple[int, int]:
  """``(forward, backward)`` passes an evaluation with ``spec`` spends per image.

  Counted from the attacks' structure, including the final forward that scores the adversarial
  image: clean 1 + 0; FGSM one gradient + 1 forward; PGD-k k gradients + 1; APGD-k with R restarts
  1 forward (which examples start out correct) + R·(k + 1) gradients + 1. Every example of a batch
  runs every iteration (no early exit), so these are exact.
  """
  if spec.kind == "clean":
    return 1, 0
  if spec.kind == "fgsm":
    return 2, 1
  if spec.kind == "pgd":
    return spec.num_steps + 1, spec.num_steps
  grads = spec.num_restarts * (spec.num_steps + 1)
  return grads + 2, grads


def _step_size(spec: attacks.AttackSpec, epsilon: float) -> Optional[float]:
  """The step size the attack uses at ``epsilon`` (APGD: its initial 2ε, then adaptive)."""
  if spec.kind == "fgsm":
    return epsilon
  if spec.kind == "pgd":
    return spec.step_size if spec.step_size is not None else 2.5 * epsilon / spec.num_steps
  if spec.kind == "apgd":
    return 2 * epsilon
  return None


# -------------------------------------------------------------------------------------------------
# Pure, jittable steps: (variables, images, labels, mask, key, epsilon) -> per-example outputs
# -------------------------------------------------------------------------------------------------


def _logits(model, variables, x):
  return models.apply_model(model, variables, x, train=False)[0]


def make_attack_step(spec: attacks.AttackSpec, model, attack_model=None) -> Callable:
  """``step(variables, images, labels, mask, key, epsilon) -> correct [B] bool`` for one attack.

  Args:
    spec: the attack.
    model: scores the adversarial images (eval-mode BatchNorm).
    attack_model: gives the attack its gradients; the same forward pass as ``model`` with another
      surrogate. Defaults to ``model``.

  Returns:
    A pure function to jit: ``images`` uint8 [B, 32, 32, 3], ``labels`` int32 [B], ``mask`` bool
    [B] (False on padding rows), ``key`` a PRNG key, ``epsilon`` a float32 scalar. The output is
    True where the example is real and still classified correctly after the attack.
  """
  attack = attacks.make_attack(spec)
  attack_model = model if attack_model is None else attack_model

  def step(variables, images, labels, mask, key, epsilon):
    x = data.to_float(images)
    logits_fn = functools.partial(_logits, attack_model, variables)
    x_adv = attack(logits_fn, x, labels, key=key, epsilon=epsilon)
    return losses.correct(_logits(model, variables, x_adv), labels) & mask

  return step


def make_zero_gradient_step(model, attack_model=None) -> Callable:
  """Same signature; True where a correctly classified clean example has an all-zero gradient.

  The gradient is that of the cross-entropy with respect to the input, through ``attack_model``'s
  surrogate. An exactly zero gradient gives a gradient attack no direction at all (the surrogate's
  support missed every neuron, or the softmax saturated), so such examples look robust for free.
  """
  attack_model = model if attack_model is None else attack_model

  def step(variables, images, labels, mask, key, epsilon):
    del key, epsilon  # Deterministic, at the clean point.
    logits_fn = functools.partial(_logits, attack_model, variables)
    grad, _, logits = attacks.input_gradient(losses.cross_entropy, logits_fn,
                                             data.to_float(images), labels)
    zero = jnp.all(grad == 0, axis=tuple(range(1, grad.ndim)))
    return zero & losses.correct(logits, labels) & mask

  return step


def make_sweep_step(spec: attacks.AttackSpec, model, attack_model=None, *,
                    leak: float = 0.99) -> Callable:
  """Same signature; returns ``{"correct": [B] bool, "ms_mppd": [B] float32}`` (Figure 3).

  ``ms_mppd`` is :func:`jsnn.perturbation.ms_mppd` of the clean minus adversarial input currents
  of the last spiking layer, per example (the mean over T and neurons), 0 on padding rows. Both
  forwards run in eval mode, and the adversarial one also scores the attack.
  """
  attack = attacks.make_attack(spec)
  attack_model = model if attack_model is None else attack_model
  capture = [models.LAST_SPIKING_LAYER]

  def step(variables, images, labels, mask, key, epsilon):
    x = data.to_float(images)
    x_adv = attack(functools.partial(_logits, attack_model, variables), x, labels, key=key,
                   epsilon=epsilon)
    _, _, clean = models.apply_model(model, variables, x, train=False, capture=capture)
    logits, _, adv = models.apply_model(model, variables, x_adv, train=False, capture=capture)
    delta = (clean[models.LAST_SPIKING_LAYER]["currents"]
             - adv[models.LAST_SPIKING_LAYER]["currents"])    # [T, B, ...]
    per_example = jax.vmap(lambda d: perturbation.ms_mppd(d[:, None], leak), in_axes=1)(delta)
    return {"correct": losses.correct(logits, labels) & mask,
            "ms_mppd": jnp.where(mask, per_example, 0.0)}

  return step


def jit_step(step: Callable, mesh) -> Callable:
  """Jits a step for ``mesh``; its outputs are replicated, so that every process can read them.

  The inputs carry their own shardings: batches split over the data axis (``parallel.put_batch``),
  variables replicated (as ``trainer.restore_checkpoint`` returns them).
  """
  return jax.jit(step, out_shardings=parallel.replicated(mesh))


def attack_key(seed: int, name: str) -> jax.Array:
  """The key of one attack: ``fold_in(key(seed), crc32(name))``.

  Folding in the name, not the attack's position in the suite, keeps an attack's random starts
  the same whatever else runs, so resumed and partial runs agree with a full one.
  """
  return jax.random.fold_in(jax.random.key(seed), zlib.crc32(name.encode()) & 0x7FFFFFFF)


def run_batches(step: Callable, variables, images: np.ndarray, labels: np.ndarray, *,
                batch_size: int, mesh, key: jax.Array, epsilon: float, desc: str = "",
                progress: bool = False):
  """Runs a jitted step over a split in padded, masked batches; each example counted once.

  Batch ``i`` gets the key ``fold_in(key, i)``. The host reads a batch's outputs while the next
  batch runs, so the device stays busy and the progress bar counts finished images.

  Args:
    step: a jitted ``(variables, images, labels, mask, key, epsilon) -> pytree of [B] arrays``.
    variables: model variables, replicated over the mesh.
    images: uint8 [N, 32, 32, 3] (host).
    labels: int32 [N] (host).
    batch_size: global batch size, divisible by the number of devices.
    mesh: the device mesh.
    key: PRNG key of this run.
    epsilon: the attack radius.
    desc: progress bar label.
    progress: show a tqdm bar.

  Returns:
    The step's outputs for the N real examples, as NumPy arrays [N] in the step's pytree.
  """
  from tqdm import tqdm

  parallel.check_batch_size(batch_size, mesh)
  epsilon = np.asarray(epsilon, np.float32)   # A strongly typed scalar: no retrace per value.
  outputs = []
  bar = tqdm(total=len(labels), desc=desc, unit="img", disable=not progress, leave=False,
             file=sys.stderr, dynamic_ncols=True, mininterval=1.0)

  def collect(pending):
    out, real = pending
    # Host sync: one batch's flags, while the next batch is already queued.
    outputs.append(jax.tree_util.tree_map(lambda a: np.asarray(a)[:real], jax.device_get(out)))
    bar.update(real)

  pending = None
  try:
    for i, (x, y, mask) in enumerate(data.eval_batches(images, labels, batch_size)):
      out = step(variables, parallel.put_batch(x, mesh), parallel.put_batch(y, mesh),
                 parallel.put_batch(mask, mesh), jax.random.fold_in(key, i), epsilon)
      if pending is not None:
        collect(pending)
      pending = (out, int(mask.sum()))
    if pending is not None:
      collect(pending)
  finally:
    bar.close()
  return jax.tree_util.tree_map(lambda *parts: np.concatenate(parts), *outputs)


# -------------------------------------------------------------------------------------------------
# Worst case and sanity checks (pure functions of the results)
# -------------------------------------------------------------------------------------------------


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
  * ``zero-gradient``: no correctly classified clean example has an all-zero input gradient
    (``results["check_runs"]["zero_gradient"]["count"]`` counts them).

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
  specs = {name: parse_attack(name) for name in entries if name != WORST_CASE}
  acc = {name: float(entries[name]["accuracy"]) for name in specs}

  def slack(*names):
    total = min(int(entries[n]["total"]) for n in names)
    return max(TOLERANCE, 1 / max(total, 1))

  def pct(x):
    return f"{100 * x:.2f}%"

  checks = []
  pgds = sorted((s.num_steps, n) for n, s in specs.items() if s.kind == "pgd")
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
           if s.kind == "apgd" and s.loss == "ce" and f"pgd{s.num_steps}" in acc]
  if pairs:
    bad = [(a, p) for a, p in pairs if acc[a] > acc[p] + slack(a, p)]
    checks.append(Check(
        "apgd-vs-pgd", not bad,
        "; ".join(f"{a} {pct(acc[a])} above {p} {pct(acc[p])}" for a, p in bad)
        + ": APGD-CE should be at least as strong as PGD with the same steps" if bad else
        ", ".join(f"{a} ≤ {p}" for a, p in pairs)))
  if "large_epsilon" in runs:
    r = runs["large_epsilon"]
    ok = r["accuracy"] <= LARGE_EPSILON_MAX_ACCURACY
    checks.append(Check(
        "large-epsilon", ok,
        f"PGD-10 at ε = {_eps255(r['epsilon'])} leaves {pct(r['accuracy'])} correct "
        f"({'≤' if ok else '>'} {pct(LARGE_EPSILON_MAX_ACCURACY)})"
        + ("" if ok else ": the attack does not follow the loss (masked or obfuscated gradients)")))
  if "zero_gradient" in runs:
    r = runs["zero_gradient"]
    count = int(r["count"])
    checks.append(Check(
        "zero-gradient", count == 0,
        f"{count} of {r['total']} test images are classified correctly with an all-zero input "
        "gradient" + (": gradient attacks cannot move them, so their robustness is overstated"
                      if count else "")))
  return checks


# -------------------------------------------------------------------------------------------------
# Output: table, CSV, atomic files
# -------------------------------------------------------------------------------------------------


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


def _eps255(epsilon: float) -> str:
  return f"{epsilon * 255:.4g}/255"


def _atomic_write(path: str, write: Callable[[Any], None], mode: str = "w") -> None:
  """Writes to a temporary file in the same directory, then renames it over ``path``."""
  tmp = f"{path}.tmp{os.getpid()}"
  try:
    with open(tmp, mode) as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def _write_json(path: str, obj) -> None:
  _atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2) + "\n"))


def _read_json(path: str, what: str) -> Optional[dict]:
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


def _read_flags(path: str) -> dict[str, np.ndarray]:
  if not os.path.exists(path):
    return {}
  try:
    with np.load(path, allow_pickle=False) as archive:
      return {k: archive[k] for k in archive.files}
  except (OSError, ValueError, zlib.error) as e:
    raise ValueError(f"cannot read the existing per-example flags {path} ({e}); move it away to "
                     "start afresh (it is left untouched)") from e


def _write_flags(path: str, flags: Mapping[str, np.ndarray]) -> None:
  _atomic_write(path, lambda f: np.savez_compressed(f, **flags), mode="wb")


def _fingerprint(settings: Mapping[str, Any]) -> str:
  return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


# -------------------------------------------------------------------------------------------------
# Restoring the model and the test set
# -------------------------------------------------------------------------------------------------


class _Context(NamedTuple):
  settings: EvalSettings
  workdir: str
  mesh: Any
  run_config: Any
  model: Any
  attack_model: Any
  variables: Any
  meta: dict
  surrogate: dict
  images: np.ndarray
  labels: np.ndarray
  data_source: str
  is_main: bool


def _restore(settings: EvalSettings, workdir: str):
  """``(config, model, attack_model, variables, meta, surrogate)``; explains any failure."""
  try:
    run_config, model, variables, meta = trainer.restore_checkpoint(workdir, settings.checkpoint)
  except trainer.CheckpointNotFound:
    raise
  except Exception as e:
    raise CheckpointMismatch(
        f"cannot restore the {settings.checkpoint!r} checkpoint of {workdir}: the model its saved "
        f"config describes does not match the stored arrays (was the checkpoint written by another "
        f"jsnn version, or its meta edited?). {type(e).__name__}: {e}") from e
  # The saved config builds the model; the arrays must have exactly its shapes.
  expected = jax.eval_shape(lambda: models.init_model(model, jax.random.key(0)))
  got = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), variables)
  if (jax.tree_util.tree_structure(expected) != jax.tree_util.tree_structure(got)
      or jax.tree_util.tree_leaves(expected) != jax.tree_util.tree_leaves(got)):
    raise CheckpointMismatch(
        f"the {settings.checkpoint!r} checkpoint of {workdir} holds variables that do not match "
        f"the model {run_config.model.name} of its saved config")
  m = run_config.model
  if settings.surrogate:
    width = settings.surrogate_width or None
    # Width 0 means the surrogate's own default, which create_model reaches through an object.
    override = (dict(surrogate=settings.surrogate, surrogate_width=width) if width
                else dict(surrogate=spiking.get_surrogate(settings.surrogate)))
    attack_model = trainer.model_from_config(run_config, meta["num_classes"], **override)
    surrogate = {"name": settings.surrogate, "width": width, "source": "eval.surrogate"}
  else:
    attack_model = model
    surrogate = {"name": m.surrogate, "width": m.surrogate_width, "source": "model"}
  return run_config, model, attack_model, variables, meta, surrogate


def load_test_set(run_config, *, data_dir: str = "", tfds_data_dir: str = ""):
  """The test split the run was evaluated on during training: ``(images, labels, source)``.

  Synthetic runs regenerate the synthetic test set from the run's seed, exactly as
  ``data.load_dataset`` does; CIFAR runs read the saved ``data.dir`` (or TFDS), unless
  ``data_dir``/``tfds_data_dir`` point elsewhere (the data moved to another machine).
  """
  d = run_config.data
  if d.name == "synthetic":
    images, labels = data.make_synthetic(data.SYNTHETIC_TEST_SIZE, data.NUM_CLASSES["synthetic"],
                                         seed=run_config.seed, split="test")
    return images, labels, f"synthetic(seed={run_config.seed}) test"
  data_dir = data_dir or d.dir or None
  tfds_data_dir = tfds_data_dir or d.tfds_data_dir or None
  images, labels = data.load_split(d.name, "test", data_dir=data_dir, tfds_data_dir=tfds_data_dir,
                                   download=d.download)
  where = f"npz:{os.path.abspath(data_dir)}" if data_dir else f"tfds:{d.name}"
  return images, labels, f"{d.name} test ({where})"


def _prepare(config, workdir: str) -> _Context:
  """Everything that can fail on bad input, before any attack runs or any file is written."""
  settings = settings_from_config(config)
  mesh = parallel.make_mesh()
  if settings.batch_size % mesh.devices.size:
    n = mesh.devices.size
    raise ValueError(f"eval.batch_size {settings.batch_size} is not divisible by the {n} devices; "
                     f"use a multiple of {n} (e.g. --config.eval.batch_size="
                     f"{max(n, settings.batch_size // n * n)})")
  workdir = os.path.abspath(workdir)
  run_config, model, attack_model, variables, meta, surrogate = _restore(settings, workdir)
  images, labels, source = load_test_set(run_config, data_dir=settings.data_dir,
                                         tfds_data_dir=settings.tfds_data_dir)
  if settings.num_examples > len(labels):
    raise ValueError(f"eval.num_examples {settings.num_examples} is more than the "
                     f"{len(labels)} test examples of {source}")
  if settings.num_examples:
    images, labels = images[:settings.num_examples], labels[:settings.num_examples]
  return _Context(settings, workdir, mesh, run_config, model, attack_model, variables, meta,
                  surrogate, images, labels.astype(np.int32), source, jax.process_index() == 0)


def _common_settings(ctx: _Context) -> dict:
  """What identifies a result besides the attack: the model, the examples, the seed."""
  return {"checkpoint": ctx.settings.checkpoint, "checkpoint_step": int(ctx.meta["step"]),
          "dataset": ctx.run_config.data.name, "num_examples": len(ctx.labels),
          "seed": ctx.settings.seed, "surrogate": ctx.surrogate["name"],
          "surrogate_width": ctx.surrogate["width"]}


def _attack_settings(spec: attacks.AttackSpec, epsilon: float, ctx: _Context) -> dict:
  fwd, bwd = passes_per_image(spec)
  common = _common_settings(ctx)
  # Settings that cannot change this attack's result are left out, so changing them reuses it.
  if not spec.needs_key:
    common["seed"] = None
  if spec.kind == "clean":
    common["surrogate"] = common["surrogate_width"] = None
  return {"attack": spec.name, "kind": spec.kind,
          "epsilon": 0.0 if spec.kind == "clean" else epsilon,
          "steps": spec.num_steps if spec.kind in ("pgd", "apgd") else
          (1 if spec.kind == "fgsm" else 0),
          "step_size": _step_size(spec, epsilon),
          "loss": None if spec.kind == "clean" else spec.loss,
          "norm": None if spec.kind == "clean" else spec.norm,
          "random_start": spec.needs_key,
          "restarts": spec.num_restarts if spec.kind == "apgd" else None,
          "rho": spec.rho if spec.kind == "apgd" else None,
          "forward_passes_per_image": fwd, "backward_passes_per_image": bwd, **common}


def _measure(step, ctx: _Context, *, key, epsilon: float, desc: str):
  start = time.time()
  out = run_batches(step, ctx.variables, ctx.images, ctx.labels,
                    batch_size=ctx.settings.batch_size, mesh=ctx.mesh, key=key, epsilon=epsilon,
                    desc=desc, progress=ctx.settings.progress_bar and ctx.is_main)
  wall = time.time() - start
  return out, {"wall_time_s": round(wall, 3),
               "images_per_second": round(len(ctx.labels) / max(wall, 1e-9), 3),
               "batch_size": ctx.settings.batch_size, "num_devices": ctx.mesh.devices.size,
               "device_kind": jax.devices()[0].device_kind,
               "finished": datetime.datetime.now().isoformat(timespec="seconds")}


def _counting_traces(step: Callable) -> Callable:
  """Wraps a step so that ``wrapped.count`` says how often jit traced (compiled) it."""

  @functools.wraps(step)
  def wrapped(*args):
    wrapped.count += 1
    return step(*args)

  wrapped.count = 0
  return wrapped


# -------------------------------------------------------------------------------------------------
# The attack table
# -------------------------------------------------------------------------------------------------


def evaluate_checkpoint(config, workdir: str) -> dict[str, Any]:
  """Robust accuracy of ``workdir``'s checkpoint under ``config.eval``'s attack suite.

  Resumable: an attack whose entry in ``robustness.json`` has the same settings (attack, ε, steps,
  step size, seed, number of examples, checkpoint and its step, surrogate) and whose per-example
  flags are stored is not run again. The batch size is recorded but does not count as a setting.

  Args:
    config: a config with an ``eval`` section like ``configs/default.py``'s (or the section).
    workdir: a training workdir with a checkpoint.

  Returns:
    A summary: ``accuracies`` (table order, worst case last), ``computed`` and ``reused`` attack
    names, ``traces`` (compilations per computed attack), ``checks``, ``warnings``, ``table``,
    ``results`` (the JSON) and ``paths``.

  Raises:
    ValueError: a bad setting, batch size or example count; ``CheckpointMismatch``; or an
      unreadable existing results file. Nothing is written in those cases.
    trainer.CheckpointNotFound: no checkpoint of that kind in ``workdir``.
  """
  ctx = _prepare(config, workdir)
  s = ctx.settings
  paths = {k: os.path.join(ctx.workdir, f) for k, f in
           (("json", RESULTS_FILE), ("flags", FLAGS_FILE), ("csv", CSV_FILE))}
  results = _read_json(paths["json"], "robustness results") or {}
  stored_flags = _read_flags(paths["flags"])
  results.setdefault("attacks", {})
  results.setdefault("check_runs", {})
  for section in ("attacks", "check_runs"):
    if not isinstance(results[section], dict):
      raise ValueError(f"{paths['json']} has a malformed {section!r} section; move it away to "
                       "start afresh (it is left untouched)")
  results.update(workdir=ctx.workdir, data=ctx.data_source,
                 model=ctx.run_config.model.to_dict(), **_common_settings(ctx))

  # One task per attack, then the measurements behind the sanity checks.
  specs = {spec.name: spec for spec in s.specs}
  order = table_order(list(specs))
  tasks = [("attacks", name, specs[name], s.epsilon) for name in order]
  if s.sanity_checks:
    large = dataclasses.replace(attacks.get_attack_spec("pgd10"), name="pgd10-large-epsilon",
                                step_size=None, epsilon=LARGE_EPSILON)
    tasks += [("check_runs", "large_epsilon", large, LARGE_EPSILON),
              ("check_runs", "zero_gradient", None, 0.0)]

  computed, reused, traces = [], [], {}
  flags = {}   # This run's per-example flags, keyed like the .npz: "<name>-<fingerprint>".
  for section, name, spec, epsilon in tasks:
    if spec is None:
      task_settings = {"attack": "zero-gradient", "loss": "ce", **_common_settings(ctx),
                       "seed": None}
    else:
      task_settings = _attack_settings(spec, epsilon, ctx)
    fingerprint = _fingerprint(task_settings)
    flag_key = f"{name}-{fingerprint}"
    entry = results[section].get(name)
    if (isinstance(entry, dict) and entry.get("fingerprint") == fingerprint
        and flag_key in stored_flags and stored_flags[flag_key].shape == ctx.labels.shape):
      flags[flag_key] = stored_flags[flag_key]
      reused.append(name)
      continue

    if spec is None:
      step = _counting_traces(make_zero_gradient_step(ctx.model, ctx.attack_model))
    else:
      step = _counting_traces(make_attack_step(spec, ctx.model, ctx.attack_model))
    out, timing = _measure(jit_step(step, ctx.mesh), ctx, key=attack_key(s.seed, name),
                           epsilon=epsilon, desc=f"{name} ε={_eps255(epsilon)}")
    traces[name] = step.count
    flags[flag_key] = out.astype(bool)
    count, total = int(out.sum()), len(ctx.labels)
    # The zero-gradient run counts examples; the others count correct (robust) examples.
    counts = ({"count": count, "fraction": count / total} if spec is None
              else {"accuracy": count / total, "correct": count})
    results[section][name] = {**task_settings, **counts, "total": total, **timing,
                              "fingerprint": fingerprint}
    computed.append(name)
    log.info("%s: %d/%d (%.2f%%) in %.1f s", name, count, total, 100 * count / total,
             timing["wall_time_s"])
    if ctx.is_main:
      # Flags first: a JSON entry is only trusted when its flags are stored too.
      stored_flags[flag_key] = flags[flag_key]
      stored_flags = _live_flags(results, stored_flags)
      _write_flags(paths["flags"], stored_flags)
      _write_json(paths["json"], results)

  # Worst case over the suite, per example.
  suite_flags = {n: flags[f"{n}-{results['attacks'][n]['fingerprint']}"] for n in order}
  robust = worst_case(suite_flags)
  results["worst_case"] = {
      "attacks": order, "epsilon": s.epsilon, "accuracy": int(robust.sum()) / len(robust),
      "correct": int(robust.sum()), "total": len(robust), **_common_settings(ctx)}
  accuracies = {n: results["attacks"][n]["accuracy"] for n in order}
  accuracies[WORST_CASE] = results["worst_case"]["accuracy"]

  suite_results = {"attacks": {n: results["attacks"][n] for n in order},
                   "check_runs": results["check_runs"] if s.sanity_checks else {}}
  checks = sanity_checks(suite_results)
  results["checks"] = [c._asdict() for c in checks]
  warnings = [c for c in checks if not c.passed]

  step_text = f"step {results['checkpoint_step']}"
  lines = [f"Robust accuracy (%) of {ctx.workdir} ({s.checkpoint} checkpoint, {step_text}) on "
           f"{len(ctx.labels)} images of {ctx.data_source}, L∞ ε = {_eps255(s.epsilon)}",
           "", format_table(accuracies), ""]
  if checks:
    lines.append(f"sanity checks: {len(checks) - len(warnings)}/{len(checks)} passed")
    lines += [f"WARNING [{c.name}]: {c.message}" for c in warnings]
  table = "\n".join(lines)
  if ctx.is_main:
    _write_json(paths["json"], results)
    _atomic_write(paths["csv"], lambda f: f.write(_csv(results, order)))
    print(table, flush=True)
  return {"accuracies": accuracies, "computed": computed, "reused": reused, "traces": traces,
          "checks": checks, "warnings": warnings, "table": table, "results": results,
          "paths": paths}


def _live_flags(results, stored_flags):
  """The stored flags some JSON entry still refers to (older settings' flags are dropped)."""
  live = {f"{name}-{entry.get('fingerprint')}" for section in ("attacks", "check_runs")
          for name, entry in results.get(section, {}).items() if isinstance(entry, dict)}
  return {k: v for k, v in stored_flags.items() if k in live}


CSV_COLUMNS = ("attack", "accuracy", "correct", "total", "epsilon", "steps", "step_size", "loss",
               "norm", "seed", "wall_time_s", "forward_passes_per_image",
               "backward_passes_per_image", "checkpoint", "checkpoint_step", "surrogate")


def _csv(results, order) -> str:
  buf = io.StringIO()
  writer = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
  writer.writeheader()
  for name in order:
    writer.writerow(results["attacks"][name])
  writer.writerow({"attack": WORST_CASE, **{k: v for k, v in results["worst_case"].items()
                                            if k != "attacks"}})
  return buf.getvalue()


# -------------------------------------------------------------------------------------------------
# The ε sweep (Figure 3)
# -------------------------------------------------------------------------------------------------


def sweep_epsilon(config, workdir: str) -> dict[str, Any]:
  """PGD-10 (α = ε/4) accuracy and clean-vs-adversarial MS-MPPD at each ε of the sweep (Fig. 3).

  One compiled step serves every ε. ``eps_sweep.json`` is rewritten after each ε and a rerun
  reuses the points whose settings are unchanged; the plots are drawn at the end. The reference
  uses α = 15/255 at ε = 100/255 (apparently a typo, spec §5); here α = ε/4 throughout.

  Args:
    config: a config with an ``eval`` section (or the section).
    workdir: a training workdir with a checkpoint.

  Returns:
    ``{"points": [...], "computed": [ε...], "traces": int, "paths": {...}}``.
  """
  ctx = _prepare(config, workdir)
  s = ctx.settings
  if not s.sweep_epsilons:
    raise ValueError("eval.sweep_epsilons is empty")
  paths = {k: os.path.join(ctx.workdir, f) for k, f in
           (("json", SWEEP_FILE), ("plot", SWEEP_PLOT), ("mppd_plot", SWEEP_MPPD_PLOT))}
  previous = _read_json(paths["json"], "ε sweep") or {}
  old_points = {p.get("fingerprint"): p for p in previous.get("points", [])
                if isinstance(p, dict)}
  spec = attacks.get_attack_spec("pgd10", step_size=None)
  leak = float(ctx.run_config.model.leak)
  step = _counting_traces(make_sweep_step(spec, ctx.model, ctx.attack_model, leak=leak))
  jitted = jit_step(step, ctx.mesh)
  sweep = {"workdir": ctx.workdir, "data": ctx.data_source, "attack": "pgd10",
           "step_size_rule": "epsilon/4", "ms_mppd_leak": leak,
           "ms_mppd": "mean over the test set of ms_mppd(clean - adversarial input currents of "
                      "the last spiking layer), eval mode", **_common_settings(ctx), "points": []}
  computed = []
  for epsilon in s.sweep_epsilons:
    point_settings = {**_attack_settings(spec, epsilon, ctx), "ms_mppd_leak": leak,
                      "sweep": True}
    point_settings["forward_passes_per_image"] += 1   # The clean forward for MS-MPPD.
    fingerprint = _fingerprint(point_settings)
    if fingerprint in old_points:
      sweep["points"].append(old_points[fingerprint])
      continue
    out, timing = _measure(jitted, ctx, key=attack_key(s.seed, "sweep-pgd10"), epsilon=epsilon,
                           desc=f"pgd10 ε={_eps255(epsilon)}")
    correct = int(out["correct"].sum())
    point = {"epsilon": epsilon, "epsilon_255": epsilon * 255,
             "step_size": _step_size(spec, epsilon), "accuracy": correct / len(ctx.labels),
             "correct": correct, "total": len(ctx.labels),
             "ms_mppd": float(out["ms_mppd"].astype(np.float64).mean()), **timing,
             "fingerprint": fingerprint}
    sweep["points"].append(point)
    computed.append(epsilon)
    log.info("sweep ε=%s: %.2f%% correct, MS-MPPD %.4g", _eps255(epsilon),
             100 * point["accuracy"], point["ms_mppd"])
    if ctx.is_main:
      _write_json(paths["json"], sweep)
  if ctx.is_main:
    _write_json(paths["json"], sweep)
    _plot_sweep(sweep["points"], paths)
    lines = ["| ε (/255) | PGD-10 accuracy (%) | MS-MPPD |", "|---:|---:|---:|"]
    lines += [f"| {p['epsilon_255']:.4g} | {100 * p['accuracy']:.2f} | {p['ms_mppd']:.4g} |"
              for p in sweep["points"]]
    print("\n".join(lines), flush=True)
  return {"points": sweep["points"], "computed": computed, "traces": step.count, "paths": paths}


def _plot_sweep(points, paths) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  x = [p["epsilon_255"] for p in points]
  for key, path, label in (("accuracy", paths["plot"], "PGD-10 accuracy (%)"),
                           ("ms_mppd", paths["mppd_plot"], "MS-MPPD (last spiking layer)")):
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    y = [100 * p[key] if key == "accuracy" else p[key] for p in points]
    ax.plot(x, y, marker="o")
    ax.set_xlabel("ε (/255)")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120), mode="wb")
    plt.close(fig)
