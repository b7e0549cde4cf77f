"""Writes docs/REPRODUCTION.md and its figures from the results files; nothing is typed by hand.

    python -m experiments.report --results results --out docs/

``--results`` (repeatable) names directories to scan, two levels deep, for

* ``results.json`` — a sweep root of :mod:`experiments.sweep` (Tables 1 and 2, and the row
  directories' ``eps_sweep.json``, ``dlif_factors.json`` and ``metrics.jsonl`` behind Figures 3–5);
* ``figure1.json`` — :mod:`experiments.figure1`;
* ``theorem31_*.json`` — :mod:`experiments.theorem31`;
* ``suites.json`` — :mod:`experiments.suites` (the paper's attack suite against ``standard`` and
  ``full``, beyond the paper);
* ``robustness.json`` with SA-PGD or the ASSG/PDSG gradients, or from the full suite (with
  ``robustness_before_frontier.json`` where kept), and ``certification.json`` — ``evaluate.py``
  (the frontier attacks and certified robustness, beyond the paper).

The paper's numbers come from ``experiments/paper_numbers.json``. Each table is laid out like the
paper's (its rows and columns), each cell ``ours / paper / ours − paper`` with ours the mean ± std
over seeds; each section states what was run (command, protocol, model, data, seeds, wall time)
and ends with an "honest reading" generated from the numbers. Rerunning the command after more
runs finish updates everything. Only JSON and matplotlib are needed (no JAX).

The modules, from the numbers to the page:

* :mod:`~experiments.report.analysis` — the statistics of a table's runs (means, chance, checks);
* :mod:`~experiments.report.reading` — the sentences generated from them;
* :mod:`~experiments.report.markdown` — the document, number formats and links;
* :mod:`~experiments.report.tables`, :mod:`~experiments.report.figures`,
  :mod:`~experiments.report.mid`, :mod:`~experiments.report.scripts`,
  :mod:`~experiments.report.frontier`, :mod:`~experiments.report.certified` — the sections;
* :mod:`~experiments.report.document` — the whole report (:func:`build`) and its command line.

Which rows a table has, which figures draw them and what the reading compares is
:mod:`experiments.rows`.
"""
from experiments.report.document import PAPER_NUMBERS, build, main

__all__ = ["PAPER_NUMBERS", "build", "main"]
