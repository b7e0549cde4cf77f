"""The beyond-paper section on certified L2 robustness by randomized smoothing.

Every ``certification.json`` the report finds (``evaluate.py --mode=certify``, Cohen et al.'s
CERTIFY and PREDICT) is one model. :func:`read_certification` reads its numbers into a
:class:`Certification`; :func:`section` writes them as Markdown and links the file's
``certification.png`` when it is there.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
from collections.abc import Sequence

from experiments.report.markdown import Report, anchor, fmt, fmt_seconds, model_text
from jsnn import _io

TITLE = "Beyond the paper: certified L2 robustness by randomized smoothing"
# jsnn.evaluation.certification.CERTIFY_FILE and CERTIFY_PLOT (imported there with JAX, so
# repeated here; a test keeps them equal).
CERTIFY_FILE = "certification.json"
CERTIFY_PLOT = "certification.png"


@dataclasses.dataclass(frozen=True)
class Certification:
  """One model's certified accuracy (%) per L2 radius, and how it was measured.

  Attributes:
    label: the directory, relative to the results root it was found under.
    certified_accuracy: radius → % of the images whose smoothed prediction is correct and
      certified at that radius.
    certified, num_images: images certified so far, of those asked for.
    abstention: % of the images CERTIFY abstained on.
    predict_accuracy: % correct by PREDICT (abstentions count as wrong).
    model: the file's ``model`` section; training_mode, training_sigma: how it was trained.
    plot: the certification.png beside the file, if there is one.
  """
  label: str
  path: str
  sigma: float
  n0: int
  n: int
  alpha: float
  draws_per_image: int | None
  certified: int
  num_images: int
  complete: bool
  certified_accuracy: dict
  abstention: float | None
  predict_accuracy: float | None
  model: dict
  training_mode: str | None
  training_sigma: float | None
  checkpoint_step: int | None
  data: str
  wall_s: float | None
  plot: str | None

  @property
  def largest_radius(self) -> float:
    """The largest radius N draws can certify at level 1 − α: σ·Φ⁻¹(α^(1/N)), every draw the
    top class (the one-sided Clopper–Pearson bound is then α^(1/N))."""
    return self.sigma * statistics.NormalDist().inv_cdf(self.alpha ** (1.0 / self.n))


def _percent(x) -> float | None:
  return None if x is None else 100.0 * x


def read_certification(path: str, label: str) -> Certification:
  """The numbers of one ``certification.json``."""
  data = _io.read_json(path)
  missing = [k for k in ("sigma", "n0", "n", "alpha", "radii", "certified_accuracy", "total")
             if k not in (data or {})]
  if missing:
    raise ValueError(f"cannot read {path}: no {', '.join(missing)}; rerun the certification "
                     "that wrote it (evaluate.py --mode=certify)")
  # The keys are the radii as %g writes them ("0", "0.25", "1"); the radii list keeps the order.
  by_radius = {float(k): v for k, v in data["certified_accuracy"].items()}
  plot = os.path.join(os.path.dirname(path), CERTIFY_PLOT)
  return Certification(
      label=label, path=path, sigma=data["sigma"], n0=data["n0"], n=data["n"],
      alpha=data["alpha"], draws_per_image=data.get("draws_per_image"),
      certified=data.get("certified", data["total"]), num_images=data["total"],
      complete=bool(data.get("complete", True)),
      certified_accuracy={float(r): _percent(by_radius.get(float(r))) for r in data["radii"]},
      abstention=_percent(data.get("abstention_rate")),
      predict_accuracy=_percent(data.get("predict_accuracy")),
      model=data.get("model") or {}, training_mode=data.get("training_mode"),
      training_sigma=data.get("training_gaussian_std"),
      checkpoint_step=data.get("checkpoint_step"), data=data.get("data") or "—",
      wall_s=data.get("wall_time_s"), plot=plot if os.path.exists(plot) else None)


def section(rep: Report, paths: Sequence[tuple[str, str]]) -> list[Certification]:
  """Writes the certification section for ``(certification.json, label)`` pairs; none: none."""
  certs = [read_certification(p, label) for p, label in paths]
  if not certs:
    return certs
  rep.add(f"## {TITLE}", "")
  rep.add("The smoothed classifier g(x) = argmax_c P(f(x + δ) = c), δ ~ N(0, σ²I) on [0, 1] "
          "pixels, certified by CERTIFY (Cohen et al., ICML 2019): the class from N0 noisy "
          "draws, a one-sided Clopper–Pearson lower bound at level 1 − α on its probability from "
          "N fresh draws, radius σ·Φ⁻¹(bound), abstain when the bound is ≤ ½. Certified accuracy "
          "at radius r: the % of images whose certified class is correct with radius ≥ r.", "")
  rep.add("What we ran:", "")
  for c in certs:
    done = "" if c.complete else f" (certified {c.certified} of them so far)"
    rep.add(f"- `{c.label}`: {model_text(c.model)}; training mode {c.training_mode or '—'}, "
            f"noise σ = {c.training_sigma if c.training_sigma is not None else '—'}; "
            f"checkpoint step {c.checkpoint_step}; the first {c.num_images} test images of {c.data}{done}; "
            f"file `{rep.rel(c.path)}`")
  rep.add("", "| model | images | σ | N0 | N | α | draws per image | wall time |",
          "|---|---:|---:|---:|---:|---:|---:|---:|")
  for c in certs:
    rep.add(f"| {c.label} | {c.num_images} | {c.sigma:g} | {c.n0} | {c.n} | {c.alpha:g} | "
            f"{c.draws_per_image if c.draws_per_image is not None else '—'} | "
            f"{fmt_seconds(c.wall_s)} |")
  radii = sorted({r for c in certs for r in c.certified_accuracy})
  rep.add("", "| model | " + " | ".join(f"r = {r:g}" for r in radii)
          + " | abstention | PREDICT accuracy |", "|---|" + "---:|" * (len(radii) + 2))
  for c in certs:
    rep.add(f"| {c.label} | " + " | ".join(fmt(c.certified_accuracy.get(r), 1) for r in radii)
            + f" | {fmt(c.abstention, 1)} | {fmt(c.predict_accuracy, 1)} |")
  rep.add("", "Certified accuracy, abstention and PREDICT accuracy in %.", "")
  for c in certs:
    if c.plot:
      rep.add(f"![certified accuracy against radius, {c.label}]({rep.rel(c.plot)})", "")
  rep.add("**Reading.**", "")
  for c in certs:
    rep.add(f"- {certification_reading(c)}")
  rep.add("")
  images = sorted({c.num_images for c in certs})
  rep.summary.append(("Beyond the paper: certified robustness",
                      f"randomized smoothing of {len(certs)} model(s), σ = "
                      + ", ".join(sorted({f"{c.sigma:g}" for c in certs})),
                      ", ".join(map(str, images)) + " test images", "—",
                      fmt_seconds(sum(c.wall_s or 0 for c in certs) or None), anchor(TITLE)))
  return certs


def certification_reading(c: Certification) -> str:
  """What one certification found, and the radius its N draws could certify at most."""
  certified = [(r, a) for r, a in c.certified_accuracy.items() if a]
  beyond = [r for r in c.certified_accuracy if r > c.largest_radius]
  text = f"`{c.label}`: "
  if certified:
    (r0, a0), (r, a) = min(certified), max(certified)
    text += (f"certified accuracy {fmt(a0, 1)} % at r = {r0:g}" if r == r0 else
             f"certified accuracy from {fmt(a0, 1)} % at r = {r0:g} to {fmt(a, 1)} % at "
             f"r = {r:g}, the largest radius with any image certified")
  else:
    text += "no image certified at any radius"
  text += f", {fmt(c.abstention, 1)} % abstentions"
  if beyond:
    text += (f". With N = {c.n} and α = {c.alpha:g} no radius above σ·Φ⁻¹(α^(1/N)) = "
             f"{c.largest_radius:.3f} can be certified, so r = "
             + ", ".join(f"{r:g}" for r in beyond) + " are 0 by construction, not measured "
             "failures; a larger N certifies further")
  return text + "."
