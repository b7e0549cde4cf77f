"""Square attack (Andriushchenko et al., 2020), L∞: score-based random search, no gradients.

Square needs only the model's logits, so surrogate gradients cannot mislead it: when it beats the
gradient attacks on some example, those gradients were masked. It keeps, per example, the best
point found so far (lowest margin ``z_y − max_{i≠y} z_i``) and proposes a change of one random
``s × s`` window per iteration: each channel of the window moves to the opposite face of the
ε-ball (``x_best ± 2ε``, projected), with a random sign per channel. The window side follows the
paper's schedule for the fraction ``p`` of pixels changed, and the start is vertical stripes
``clip01(x ± ε)`` with one random sign per column and channel.

Fixed shapes throughout: every iteration proposes and evaluates a point for every row of the
batch, and only the rows still correctly classified (``active``) take the update and count the
query, as AutoAttack's gather-and-scatter would. The iterations run in a ``lax.while_loop`` that
stops when the query budget is spent or no row is active, so ε (traced) and the batch do not
retrace it; the budget is static.

Differences from the reference implementations (AutoAttack ``square.py``, the authors' code), all
deliberate:

* each example draws its own window position and signs (AutoAttack's L∞ version shares one window
  for the whole batch, which makes an example's attack depend on the batch it is in);
* the window's top-left corner is uniform over all ``H − s + 1`` positions (the references draw
  from ``H − s``, so a 1×1 window never reaches the last row or column);
* ``num_queries`` counts every query, the start included: at most ``num_queries`` per example
  (AutoAttack's ``n_queries = 5000`` allows 5001), and the schedule is rescaled to it as in
  AutoAttack (``resc_schedule=True``).
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from jsnn import losses
from jsnn.attacks import base
from jsnn.attacks import projections
from jsnn.attacks.spec import AttackSpec, AttackStats

P_INIT = 0.8  # The paper's initial fraction of pixels changed per iteration, for L∞.

# p halves after each of these iterations of a 10,000-query run (the paper's schedule); other
# budgets rescale the iteration counter to 10,000 first.
P_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def square_p(iteration: int, num_queries: int, p_init: float = P_INIT) -> float:
  """The fraction ``p`` of pixels a window covers at ``iteration`` (0-based) of the search.

  Args:
    iteration: the iteration of the random search, 0-based.
    num_queries: the query budget the schedule is rescaled to.
    p_init: p at the start (0.8 for L∞).

  Returns:
    ``p_init / 2^h`` with h the number of points of :data:`P_HALVINGS` below
    ``int(iteration / num_queries · 10000)``.
  """
  it = int(iteration / num_queries * 10000)
  return p_init / 2 ** sum(it > h for h in P_HALVINGS)


def square_sizes(num_queries: int, height: int, width: int, p_init: float = P_INIT) -> np.ndarray:
  """The window side at each of the ``num_queries − 1`` iterations (the start is one query).

  ``s = max(round(sqrt(p·H·W)), 1)``, and at most ``min(H, W)``.

  Returns:
    int32 array [num_queries − 1].
  """
  sizes = [max(int(round(np.sqrt(square_p(i, num_queries, p_init) * height * width))), 1)
           for i in range(num_queries - 1)]
  return np.minimum(np.asarray(sizes, np.int32).reshape(-1), min(height, width))


class SquareResult(NamedTuple):
  """The outcome of a Square attack.

  Attributes:
    x_adv: [B, ...] the best point where it is misclassified (margin ≤ 0), else the clean image.
    x_best: [B, ...] the point with the lowest margin found (the clean image where not attacked).
    margin: [B] the margin at ``x_best`` (the clean margin where not attacked).
    queries: [B] int32 model queries spent on the example: 0 when it was misclassified to begin
      with, else 1 (the start) plus one per iteration while it was still correctly classified.
    num_iterations: scalar int32, the iterations the loop ran (it stops early when every example
      is fooled); every row of the batch was evaluated ``2 + num_iterations`` times (the clean
      forward, the start, the iterations).
  """
  x_adv: jax.Array
  x_best: jax.Array
  margin: jax.Array
  queries: jax.Array
  num_iterations: jax.Array


class _State(NamedTuple):
  i: jax.Array
  x_best: jax.Array
  margin: jax.Array
  queries: jax.Array


def _check_args(x, epsilon, num_queries, p_init):
  base.check_epsilon(epsilon)
  base.check_num_steps(num_queries, "num_queries")
  if not 0 < p_init <= 1:
    raise ValueError(f"p_init must lie in (0, 1]; got {p_init!r}")
  if x.ndim != 4:
    raise ValueError(f"square expects images [B, H, W, C]; got shape {x.shape}")


def square_run(
    logits_fn: base.LogitsFn,
    x: jax.Array,
    y: jax.Array,
    *,
    key: jax.Array,
    epsilon: ArrayLike,
    num_queries: int = 5000,
    p_init: float = P_INIT,
    mask: jax.Array | None = None,
) -> SquareResult:
  """The L∞ Square attack on a batch, with its per-example query counts.

  Only examples that ``logits_fn`` classifies correctly at ``x`` are attacked; each stops
  (keeps its point and stops counting queries) once its margin is ≤ 0.

  Args:
    logits_fn: images [B, H, W, C] -> logits [B, classes]; only its values are used.
    x: clean images [B, H, W, C] in [0, 1] (channels last).
    y: integer labels [B].
    key: PRNG key for the start and the windows.
    epsilon: L∞ radius, traced (scalar).
    num_queries: the query budget per example, the start included (static, >= 1).
    p_init: the initial fraction of pixels per window (0.8).
    mask: optional [B] bool, the rows to attack (False on a padded batch's filler rows, so that
      they neither spend queries nor keep the loop running).

  Returns:
    A :class:`SquareResult`.

  References:
    Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box
    adversarial attack via random search", ECCV 2020.
  """
  _check_args(x, epsilon, num_queries, p_init)
  batch, height, width, channels = x.shape
  eps = base.as_scalar(epsilon, x)
  sizes = jnp.asarray(square_sizes(num_queries, height, width, p_init))
  rows = jnp.arange(height).reshape(1, height, 1, 1)
  cols = jnp.arange(width).reshape(1, 1, width, 1)

  def margin(x_):
    return losses.margin(logits_fn(x_), y)

  def feasible(z):
    return projections.clip_to_box(projections.project_linf(z, x, eps))

  clean_logits = logits_fn(x)
  margin_clean = losses.margin(clean_logits, y)
  # Correct as the evaluation scores it (argmax, ties to the lowest class), so that Square attacks
  # exactly the examples the other attacks do; the search itself stops at margin <= 0.
  correct = losses.correct(clean_logits, y)
  if mask is not None:
    correct = correct & mask
  start_key, loop_key = jax.random.split(key)
  stripes = jax.random.rademacher(start_key, (batch, 1, width, channels), x.dtype)
  x_start = projections.clip_to_box(x + eps * stripes)
  state = _State(
      i=jnp.zeros((), jnp.int32),
      x_best=jnp.where(base.per_example(correct, x), x_start, x),
      margin=jnp.where(correct, margin(x_start), margin_clean),
      queries=correct.astype(jnp.int32),
  )

  def active(s: _State):
    return correct & (s.margin > 0)

  def cond(s: _State):
    return (s.i < num_queries - 1) & jnp.any(active(s))

  def body(s: _State) -> _State:
    size = sizes[s.i]
    pos_key, sign_key = jax.random.split(jax.random.fold_in(loop_key, s.i))
    # Uniform over every position where the window fits: [0, H − s] and [0, W − s].
    top = jax.random.randint(pos_key, (batch, 1, 1, 1), 0, height - size + 1)
    left = jax.random.randint(jax.random.fold_in(pos_key, 1), (batch, 1, 1, 1), 0,
                              width - size + 1)
    window = ((rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size))
    signs = jax.random.rademacher(sign_key, (batch, 1, 1, channels), x.dtype)
    x_new = feasible(s.x_best + jnp.where(window, 2 * eps * signs, 0))
    margin_new = margin(x_new)
    now_active = active(s)
    # With the margin as the loss, "lower loss or misclassified" (the reference's update rule) is
    # "lower margin": an active example has a positive margin.
    improved = now_active & (margin_new < s.margin)
    return _State(
        i=s.i + 1,
        x_best=jnp.where(base.per_example(improved, x), x_new, s.x_best),
        margin=jnp.where(improved, margin_new, s.margin),
        queries=s.queries + now_active.astype(jnp.int32),
    )

  s = jax.lax.while_loop(cond, body, state)
  fooled = correct & (s.margin <= 0)
  x_adv = jnp.where(base.per_example(fooled, x), s.x_best, x)
  return SquareResult(x_adv=x_adv, x_best=s.x_best, margin=s.margin, queries=s.queries,
                      num_iterations=s.i)


def square(
    logits_fn: base.LogitsFn,
    x: jax.Array,
    y: jax.Array,
    *,
    key: jax.Array,
    epsilon: ArrayLike,
    num_queries: int = 5000,
    p_init: float = P_INIT,
    mask: jax.Array | None = None,
) -> jax.Array:
  """The L∞ Square attack: adversarial images only (see :func:`square_run` for the counts).

  Args:
    logits_fn: images [B, H, W, C] -> logits [B, classes].
    x: clean images [B, H, W, C] in [0, 1].
    y: integer labels [B].
    key: PRNG key.
    epsilon: L∞ radius, traced (scalar).
    num_queries: the query budget per example, the start included (static, >= 1; 5000).
    p_init: the initial fraction of pixels per window (0.8).
    mask: optional [B] bool, the rows to attack (see :func:`square_run`).

  Returns:
    Adversarial images, x's shape and dtype: the misclassified point found, else ``x``.
  """
  return square_run(logits_fn, x, y, key=key, epsilon=epsilon, num_queries=num_queries,
                    p_init=p_init, mask=mask).x_adv


@dataclasses.dataclass(frozen=True)
class SquareSpec(AttackSpec):
  """Square with a query budget, L∞ (:func:`square_run`); it stops once its batch is fooled.

  Attributes:
    num_queries: the budget per example, its start included (AutoAttack: 5,000).
    p_init: the initial fraction of pixels per window.
  """
  num_queries: int = 5000
  p_init: float = P_INIT
  kind = "square"
  uses_gradients = False
  score_based = True

  def __post_init__(self):
    super().__post_init__()
    base.check_num_steps(self.num_queries, "num_queries")
    if not 0 < self.p_init <= 1:
      raise ValueError(f"p_init must lie in (0, 1]; got {self.p_init!r}")

  def passes(self) -> tuple[int, int]:
    """The maximum: the clean forward, the start and ``num_queries − 1`` iterations."""
    return 1 + self.num_queries, 0

  def record(self) -> dict:
    return {"kind": self.kind, "loss": "margin", "norm": "linf", "queries": self.num_queries,
            "p_init": self.p_init}

  def run(self, logits_fn, x, y, *, key, epsilon, mask):
    result = square_run(logits_fn, x, y, key=key, epsilon=epsilon, num_queries=self.num_queries,
                        p_init=self.p_init, mask=mask)
    # Every row of the batch is evaluated at each iteration the loop ran; only active rows count
    # the query.
    forward = jnp.full(x.shape[:1], 2, jnp.int32) + result.num_iterations
    return result.x_adv, AttackStats(forward=forward, backward=jnp.zeros_like(forward),
                                     queries=result.queries)
