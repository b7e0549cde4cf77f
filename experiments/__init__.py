"""Experiment entry points that reproduce the paper's figures and tables.

One command each, run from the repository root (``python -m experiments.<name> --help``):

* ``figure1``   — one LIF neuron: membrane difference, MPPD, TASAD and STD over 30 steps;
* ``theorem31`` — the L2-gain bound of Theorem 3.1 against measured ratios, per layer;
* ``figure3``   — PGD-10 accuracy and MS-MPPD against ε from several runs' ``eps_sweep.json``;
* ``figure4``   — the trained DLIF factors per layer and time step;
* ``figure5``   — CE and MS-MPPD over training from ``metrics.jsonl``;
* ``sweep``     — train and evaluate a set of table rows, resumable, into one ``results.json``;
* ``calibrate`` — time a few training steps and attack batches, and estimate a sweep's wall time;
* ``report``    — ``docs/REPRODUCTION.md`` and its figures, written from the results files.

The paper's rows are defined once, in :mod:`experiments.rows`; a sweep root's files (``row.json``,
``results.json``) are read and collected by :mod:`experiments.results`.
"""
