#!/usr/bin/env python3
"""Fits the rational approximations behind the SIMD erf and tanh (simd_avx2.h).

Both functions are odd and saturate, so each is written f(x) = x P(x^2) / Q(x^2)
with Q(0) = 1 on [0, c], and x is clamped to [-c, c] where f(c) rounds to +-1 in
float32. The fit is linear least squares on x P - f Q (unknowns: P's and Q's
coefficients), reweighted towards the worst points (Lawson's iteration) until the
maximum absolute error in double stops shrinking. Prints the coefficients,
highest power first, as the C code evaluates them (Horner), and the error.

    python3 tools/fit_activation_approximations.py

Needs numpy and scipy (offline only; the runtime uses the printed constants).
"""
import numpy as np
from scipy.special import erf

FUNCTIONS = {
    # name: (function, clamp c, degree of P, degree of Q)
    "erf": (erf, 3.92, 5, 5),      # erf(3.92) = 1 - 1.2e-8
    "tanh": (np.tanh, 9.0, 4, 4),  # tanh(9) = 1 - 3.0e-8
}


def fit(f, c, p_degree, q_degree, iterations=200, points=40000):
    x = np.linspace(1e-4, c, points)
    t = x * x
    fx = f(x)
    weights = np.ones_like(x)
    best = None
    for _ in range(iterations):
        a = np.hstack([np.stack([x * t**i for i in range(p_degree + 1)], 1),
                       np.stack([-fx * t**j for j in range(1, q_degree + 1)], 1)])
        solution, *_ = np.linalg.lstsq(a * weights[:, None], fx * weights, rcond=None)
        p = solution[:p_degree + 1]
        q = np.concatenate([[1.0], solution[p_degree + 1:]])
        error = x * np.polyval(p[::-1], t) / np.polyval(q[::-1], t) - fx
        worst = np.abs(error).max()
        if best is None or worst < best[0]:
            best = (worst, p, q)
        weights = weights * np.sqrt(np.abs(error) / worst + 1e-3)
        weights /= weights.max()
    return best


def main():
    for name, (f, c, p_degree, q_degree) in FUNCTIONS.items():
        worst, p, q = fit(f, c, p_degree, q_degree)
        saturation = 1 - f(c)
        print(f"{name}: clamp {c}, max |error| {max(worst, saturation):.3g} in double (fit {worst:.3g}, clamp {saturation:.3g})")
        print("  P (x^2), highest first:", ", ".join(f"{v:.9e}f" for v in p[::-1]))
        print("  Q (x^2), highest first:", ", ".join(f"{v:.9e}f" for v in q[::-1]))


if __name__ == "__main__":
    main()
