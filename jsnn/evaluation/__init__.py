"""Robustness of a trained checkpoint: the paper's attack table, the ε sweep and sanity checks.

``evaluate_checkpoint(config, workdir)`` restores ``workdir``'s checkpoint, runs an attack suite
(by default Table 1's: clean, FGSM, PGD-7/10/20/40, APGD-CE, APGD-DLR at ε = 8/255, reference
spec §5) over every test image exactly once, and writes

* ``robustness.json``: per attack its settings, accuracy, counts, wall time (compilation
  included) and the forward and backward passes it spends per image; the worst case over all
  attacks per example (AutoAttack's robust accuracy); and the sanity checks;
* ``robustness_flags.npz``: per attack the per-example "still correct" flags the worst case needs,
  keyed by the fingerprint of the attack's settings;
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
``apgd-dlr<k>``, ``apgd-t<k>`` (APGD-T, targeted DLR over ``eval.apgd_targets`` classes) and
``square<q>`` (Square with q queries), k, q ≥ 1. PGD step sizes are the reference's table at
ε = 8/255 (2.55, 2, 1, 0.5 /255 for 7, 10, 20, 40 steps) scaled by ε/(8/255) at other radii, and
``2.5·ε/k`` for other k.

Suites (``eval.suite``):

* ``paper``: the attacks of ``eval.attacks`` (Table 1's by default), each on every image;
* ``standard``: clean, then the AutoAttack-style cascade APGD-CE → APGD-T → Square
  (``eval.cascade_steps`` iterations, ``eval.apgd_targets`` targets, ``eval.square_queries``
  queries), each stage attacking only the images every stage before it left correctly classified;
  its accuracy after each stage is recorded, the last one being its robust accuracy;
* ``full``: both, plus every gradient attack of ``eval.attacks`` again under each gradient
  estimator of ``eval.estimators`` (all of :data:`FULL_ESTIMATORS` when it is empty).

``eval.estimators`` also adds those variants to the other suites. A variant is named
``<attack>@<estimator>``: estimators are ``bptr``, ``rga``, ``hart`` (the model's
``gradient_estimator``, see :mod:`jsnn.spiking.neurons`) or a surrogate name with an optional width,
e.g. ``sigmoid:4``, ``straight_through``. For each attack the per-example worst case across its
estimators is recorded too. The overall worst case is over every attack, variant and the cascade.

The gradient-masking checks add, when the suite has them: Square fooling an image every white-box
attack left correct, and per estimator the images classified correctly with an input gradient that
is zero or near zero.

The package, each layer knowing nothing of those above it:

* :mod:`~jsnn.evaluation.settings`: ``config.eval``, validated (attack names are parsed by
  :func:`jsnn.attacks.parse_attack`);
* :mod:`~jsnn.evaluation.context`: :func:`prepare`, the restored model, test set and gradients;
* :mod:`~jsnn.evaluation.plan`: the frozen tasks and what identifies each result (:class:`TaskKey`
  is the only place a result's key becomes a string and back);
* :mod:`~jsnn.evaluation.store`: ``robustness.json`` and its flags, one reuse path, a schema;
* :mod:`~jsnn.evaluation.steps`: the pure, jittable per-batch steps and the batched loop;
* :mod:`~jsnn.evaluation.checks`: the worst case and the sanity checks, functions of the results;
* :mod:`~jsnn.evaluation.records`: the table, the CSV and the files;
* :mod:`~jsnn.evaluation.summary`: the cascade's entry, per-estimator worst cases, masking
  diagnostics, the report;
* :mod:`~jsnn.evaluation.runner`: :func:`evaluate_checkpoint`, which loops over the plan;
* :mod:`~jsnn.evaluation.epsilon_sweep`: :func:`sweep_epsilon` (Figure 3);
* :mod:`~jsnn.evaluation.certification`: :func:`certify_checkpoint`, certified L2 accuracy by
  randomized smoothing (Cohen et al., 2019).
"""

from jsnn.evaluation.certification import (CERTIFY_ARRAYS, CERTIFY_FILE, CERTIFY_PLOT, RADII,
                                           certify_checkpoint, certify_from_counts,
                                           clopper_pearson_lower, predict_from_counts)
from jsnn.attacks.registry import parse_attack
from jsnn.evaluation.checks import (LARGE_EPSILON_MAX_ACCURACY, TOLERANCE, Check, sanity_checks,
                                    worst_case)
from jsnn.evaluation.context import CheckpointMismatch, Context, load_test_set, prepare
from jsnn.evaluation.plan import LARGE_EPSILON, Task, TaskKey, plan
from jsnn.evaluation.store import SCHEMA, Result, ResultStore
from jsnn.evaluation.epsilon_sweep import (SWEEP_FILE, SWEEP_MPPD_PLOT, SWEEP_PLOT,
                                           sweep_epsilon)
from jsnn.evaluation.records import (CSV_FILE, FLAGS_FILE, RESULTS_FILE, display_name,
                                     format_table, table_order)
from jsnn.evaluation.runner import evaluate_checkpoint
from jsnn.evaluation.settings import (FULL_ESTIMATORS, NEAR_ZERO_GRADIENT, STANDARD, SUITES,
                                      TRANSFER, WORST_CASE, EvalSettings, Estimator,
                                      parse_estimator, passes_per_image, settings_from_config)
from jsnn.evaluation.steps import (attack_key, jit_step, make_attack_step,
                                   make_sweep_step, make_transfer_step, make_zero_gradient_step,
                                   run_batches)

__all__ = [
    "attack_key",
    "CERTIFY_ARRAYS",
    "CERTIFY_FILE",
    "CERTIFY_PLOT",
    "certify_checkpoint",
    "certify_from_counts",
    "clopper_pearson_lower",
    "predict_from_counts",
    "RADII",
    "Check",
    "CheckpointMismatch",
    "Context",
    "CSV_FILE",
    "display_name",
    "Estimator",
    "EvalSettings",
    "evaluate_checkpoint",
    "FLAGS_FILE",
    "format_table",
    "FULL_ESTIMATORS",
    "jit_step",
    "LARGE_EPSILON",
    "LARGE_EPSILON_MAX_ACCURACY",
    "load_test_set",
    "make_attack_step",
    "make_sweep_step",
    "make_transfer_step",
    "make_zero_gradient_step",
    "NEAR_ZERO_GRADIENT",
    "parse_attack",
    "parse_estimator",
    "passes_per_image",
    "plan",
    "prepare",
    "Result",
    "ResultStore",
    "SCHEMA",
    "RESULTS_FILE",
    "run_batches",
    "sanity_checks",
    "settings_from_config",
    "STANDARD",
    "SUITES",
    "sweep_epsilon",
    "SWEEP_FILE",
    "SWEEP_MPPD_PLOT",
    "SWEEP_PLOT",
    "table_order",
    "Task",
    "TaskKey",
    "TOLERANCE",
    "TRANSFER",
    "worst_case",
    "WORST_CASE",
]
