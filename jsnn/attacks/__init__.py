"""Adversarial attacks in pure JAX, shaped like optax: small composable functions that jit.

Every attack takes ``logits_fn(x) -> logits`` (a pure function, never a model object), clean images
``x`` [B, ...] in [0, 1] and integer labels ``y`` [B], a keyword-only PRNG ``key`` where it draws
random numbers, and ε / step sizes as traced values, so one compiled attack serves every ε. It
returns adversarial images of x's shape and dtype.

Pieces: :func:`input_gradient`, the step rules :func:`sign_step` / :func:`normalized_step`, the
projections :func:`project_linf` / :func:`project_l2` / :func:`clip_to_box`, random starts, and
APGD's :func:`apgd_checkpoints`. Attacks: :func:`fgsm`, :func:`rfgsm`, :func:`pgd`,
:func:`apgd`, :func:`apgd_targeted` (APGD-T), :func:`sapgd` (SA-PGD), :func:`square`
(score-based), :func:`gaussian_noise`. A model whose gradient carries a state from one step to the
next (ASSG) is a :class:`StatefulLogitsFn`.
For stochastic models, :func:`expected_logits` (EOT) and :func:`majority_vote`.
Specs, one per kind beside its attack (:class:`AttackSpec`, :class:`PGDSpec`, …); names
(:func:`parse_attack`), the paper's suite (:data:`PAPER_SUITE`), :func:`make_attack`, and the
AutoAttack-style cascade (:func:`standard_cascade`): :mod:`jsnn.attacks.registry`.
"""

from jsnn.attacks.apgd import APGDSpec
from jsnn.attacks.apgd import APGDTSpec
from jsnn.attacks.apgd import ApgdResult
from jsnn.attacks.apgd import apgd
from jsnn.attacks.apgd import apgd_checkpoints
from jsnn.attacks.apgd import apgd_run
from jsnn.attacks.apgd import apgd_targeted
from jsnn.attacks.apgd import target_classes
from jsnn.attacks.base import LogitsFn
from jsnn.attacks.base import LossFn
from jsnn.attacks.base import StatefulLogitsFn
from jsnn.attacks.base import TargetedLossFn
from jsnn.attacks.base import get_loss
from jsnn.attacks.base import get_targeted_loss
from jsnn.attacks.base import input_gradient
from jsnn.attacks.base import normalized_step
from jsnn.attacks.base import sign_step
from jsnn.attacks.clean import CleanSpec
from jsnn.attacks.eot import StochasticLogitsFn
from jsnn.attacks.eot import expected_logits
from jsnn.attacks.eot import majority_vote
from jsnn.attacks.fgsm import FGSMSpec
from jsnn.attacks.fgsm import fgsm
from jsnn.attacks.fgsm import rfgsm
from jsnn.attacks.noise import gaussian_noise
from jsnn.attacks.pgd import PGDSpec
from jsnn.attacks.pgd import default_step_size
from jsnn.attacks.pgd import pgd
from jsnn.attacks.pgd import pgd_step_size
from jsnn.attacks.projections import clip_to_box
from jsnn.attacks.projections import l2_ball_start
from jsnn.attacks.projections import l2_sphere_start
from jsnn.attacks.projections import linf_sphere_start
from jsnn.attacks.projections import project_l2
from jsnn.attacks.projections import project_linf
from jsnn.attacks.projections import uniform_linf_start
from jsnn.attacks.registry import PAPER_SUITE
from jsnn.attacks.registry import attack_passes
from jsnn.attacks.registry import attack_names
from jsnn.attacks.registry import get_attack_spec
from jsnn.attacks.registry import make_attack
from jsnn.attacks.registry import parse_attack
from jsnn.attacks.registry import standard_cascade
from jsnn.attacks.sapgd import SAPGDSpec
from jsnn.attacks.sapgd import sapgd
from jsnn.attacks.sapgd import sapgd_run
from jsnn.attacks.spec import AttackSpec
from jsnn.attacks.spec import AttackStats
from jsnn.attacks.square import SquareResult
from jsnn.attacks.square import SquareSpec
from jsnn.attacks.square import square
from jsnn.attacks.square import square_p
from jsnn.attacks.square import square_run
from jsnn.attacks.square import square_sizes

__all__ = (
    "APGDSpec",
    "APGDTSpec",
    "ApgdResult",
    "AttackSpec",
    "AttackStats",
    "CleanSpec",
    "FGSMSpec",
    "LogitsFn",
    "LossFn",
    "PAPER_SUITE",
    "PGDSpec",
    "SAPGDSpec",
    "SquareResult",
    "SquareSpec",
    "StatefulLogitsFn",
    "StochasticLogitsFn",
    "TargetedLossFn",
    "apgd",
    "apgd_checkpoints",
    "apgd_run",
    "apgd_targeted",
    "attack_names",
    "attack_passes",
    "clip_to_box",
    "default_step_size",
    "expected_logits",
    "fgsm",
    "gaussian_noise",
    "get_attack_spec",
    "get_loss",
    "get_targeted_loss",
    "input_gradient",
    "l2_ball_start",
    "l2_sphere_start",
    "linf_sphere_start",
    "majority_vote",
    "make_attack",
    "normalized_step",
    "parse_attack",
    "pgd",
    "pgd_step_size",
    "project_l2",
    "project_linf",
    "rfgsm",
    "sapgd",
    "sapgd_run",
    "sign_step",
    "square",
    "square_p",
    "square_run",
    "square_sizes",
    "standard_cascade",
    "target_classes",
    "uniform_linf_start",
)
