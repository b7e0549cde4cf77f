"""Spiking math, pure JAX: Heaviside spikes with surrogate gradients, LIF and DLIF neurons, and
the :class:`NeuronSpec` that describes a network's neurons."""

from jsnn.spiking import adaptive
from jsnn.spiking.neurons import (ADAPTIVE_ESTIMATORS, DLIF_PLACEMENTS, ENCODINGS,
                                  GRADIENT_ESTIMATORS, check_estimator,
                                  direct_encoding, dlif, lif, lif_step, poisson_encoding,
                                  rga_rate_derivative)
from jsnn.spiking.spec import NEURONS, NeuronSpec
from jsnn.spiking.surrogate import (SURROGATES, Arctan, Rectangular, Sigmoid, StraightThrough,
                                    Triangle, get_surrogate, heaviside, spike)

__all__ = [
    "ADAPTIVE_ESTIMATORS", "adaptive", "DLIF_PLACEMENTS", "ENCODINGS", "GRADIENT_ESTIMATORS", "check_estimator", "direct_encoding",
    "dlif", "lif", "lif_step", "NEURONS", "NeuronSpec", "poisson_encoding", "rga_rate_derivative", "SURROGATES", "Arctan",
    "Rectangular", "Sigmoid", "StraightThrough", "Triangle", "get_surrogate", "heaviside", "spike",
]
