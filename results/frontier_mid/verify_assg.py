"""Independent check of sa-pgd100@assg on a mid model: ‖δ‖∞ ≤ ε, x̃ ∈ [0,1], plain-model accuracy.

    python results/frontier_mid/verify_assg.py WORKDIR NUM_IMAGES ../shared/data/cifar10
"""
import sys
import jax
import jax.numpy as jnp
import jsnn  # noqa: F401
from jsnn import attacks, workdir as wl, data, losses, models, spiking
from jsnn.data import sources
from jsnn.evaluation import steps
W, N, DATA = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cfg, model, variables, meta = wl.restore_model(W, "latest")
m = cfg.model
amodel = wl.model_from_config(cfg, meta["num_classes"], gradient_estimator="assg",
                              surrogate=m.surrogate, surrogate_width=m.surrogate_width)
images, labels = sources.load_split("cifar10", "test", data_dir=DATA)[:2]
images, labels = images[:N], jnp.asarray(labels[:N], jnp.int32)
x = data.to_float(images)
eps = attacks.registry.PAPER_EPSILON   # 8/255
attack = attacks.make_attack(attacks.parse_attack("sa-pgd100", eps), with_stats=True)
fn = steps.assg_logits_fn(amodel, variables, spiking.adaptive.ASSG_BOUND)   # assg_search=1
@jax.jit
def run(x, labels, key):
  x_adv, _ = attack(fn, x, labels, key=key, epsilon=jnp.float32(eps),
                    mask=jnp.ones(labels.shape, bool))
  logits = models.apply_model(model, variables, x_adv, train=False)[0]
  clean = models.apply_model(model, variables, x, train=False)[0]
  return x_adv, losses.correct(logits, labels), losses.correct(clean, labels)
x_adv, rob, clean = run(x, labels, jax.random.key(0))
linf = float(jnp.max(jnp.abs(x_adv - x)))
print("max |δ|∞", linf, "ε", eps, "≤ε:", linf <= eps + 1e-7)
print("x̃ range", float(x_adv.min()), float(x_adv.max()))
print("clean", float(clean.mean()), "robust (plain model on x̃)", float(rob.mean()), "n", N)
