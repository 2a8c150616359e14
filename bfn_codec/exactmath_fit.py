"""Development tool: derive the erfc coefficient tables of exactmath.py (needs mpmath).

    python3 -m bfn_codec.exactmath_fit      # prints the table; tests/test_exactmath.py checks it

For x >= 0.5 exactmath writes erfc(x) = exp(-x^2) G(x). G is smooth and slowly varying (it
falls like 1 / (x sqrt(pi))), so on each interval [a, b] of ERFC_INTERVALS it is a polynomial of
degree ERFC_DEGREE in u = (2x - a - b) / (b - a) in [-1, 1]: its Chebyshev interpolant at
ERFC_DEGREE + 1 Chebyshev nodes, computed with 60 significant digits, converted to the monomial
basis (Horner's rule then needs no recurrence) and rounded to float64 once per coefficient.
Nothing here runs when the codec runs; the table is data in exactmath.py.
"""
from __future__ import annotations

ERFC_INTERVALS = ((0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 16.0), (16.0, 28.0))
ERFC_DEGREE = 22  # measured: relative error of the fit <= 2.3e-16 on every interval from 22 on


def erfc_table(degree: int = ERFC_DEGREE, intervals=ERFC_INTERVALS) -> list[list[float]]:
    """Monomial coefficients (constant first) of G(x) = erfc(x) exp(x^2) per interval."""
    import mpmath as mp

    with mp.workdps(60):
        N = degree + 1
        table = []
        for a, b in intervals:
            a, b = mp.mpf(a), mp.mpf(b)
            values = []
            for u in _nodes(N):
                x = (b - a) / 2 * u + (a + b) / 2
                values.append(mp.erfc(x) * mp.exp(x * x))
            table.append(_monomials(_chebyshev(values, N), N))
        return table


def _nodes(N):
    """The N Chebyshev nodes cos(pi (k + 1/2) / N) on [-1, 1]."""
    import mpmath as mp

    return [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / N) for k in range(N)]


ERFC_FAST_DEGREE = 16  # measured: erfc_fast's relative error <= 1.6e-11 where erfc >= 1e-300


def erfc_fast_table(degree: int = ERFC_FAST_DEGREE) -> list[float]:
    """Monomial coefficients (constant first) of P(u) with erfc(x) = t exp(-x^2 + P(u)),
    t = 1 / (1 + x/2), u = 2t - 1: P is smooth on u in [-1, 1] (x from infinity to 0), so one
    Chebyshev interpolant of degree ``degree`` covers the whole half-line (exactmath.erfc_fast)."""
    import mpmath as mp

    with mp.workdps(60):
        N = degree + 1
        values = []
        for u in _nodes(N):
            t = (u + 1) / 2
            x = 2 * (1 / t - 1)
            values.append(mp.log(mp.erfc(x) / t) + x * x)
        return _monomials(_chebyshev(values, N), N)


def _chebyshev(values, N):
    import mpmath as mp

    cheb = [2 * mp.fsum(values[k] * mp.cos(mp.pi * j * (k + mp.mpf(1) / 2) / N) for k in range(N)) / N
            for j in range(N)]
    cheb[0] /= 2
    return cheb


def _monomials(cheb, N):
    """sum_j cheb[j] T_j(u) in the monomial basis, rounded once per coefficient."""
    import mpmath as mp

    # T_j in the monomial basis: T_0 = 1, T_1 = u, T_{j+1} = 2u T_j - T_{j-1}
    T = [[mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]]
    for j in range(2, N):
        t = [mp.mpf(0)] * (j + 1)
        for i, v in enumerate(T[-1]):
            t[i + 1] += 2 * v
        for i, v in enumerate(T[-2]):
            t[i] -= v
        T.append(t)
    mono = [mp.mpf(0)] * N
    for j in range(N):
        for i, v in enumerate(T[j]):
            mono[i] += cheb[j] * v
    return [float(c) for c in mono]


if __name__ == "__main__":
    for row in erfc_table():
        print('    "' + " ".join(float.hex(c) for c in row) + '",')
    print("erfc_fast:", " ".join(float.hex(c) for c in erfc_fast_table()))
