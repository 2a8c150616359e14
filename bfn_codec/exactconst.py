"""The exact float64 constants of exactmath.py: reduction constants and polynomial coefficients,
each an exact rational rounded once or a hexadecimal literal (exactmath_fit.py derives the
fitted tables). Kept apart so that exactmath.py (the numpy definitions) and kernels.py (their
compiled twins) read the same numbers without importing each other.
"""
from __future__ import annotations

from fractions import Fraction
from math import factorial

import numpy as np

# ln 2 = LN2_HI + LN2_LO, with LN2_HI's low 21 bits zero, so k * LN2_HI is exact for |k| < 2^21.
LN2_HI = float.fromhex("0x1.62e42feep-1")
LN2_LO = float.fromhex("0x1.a39ef35793c76p-33")  # ln 2 - LN2_HI, rounded
INV_LN2 = float.fromhex("0x1.71547652b82fep+0")  # 1 / ln 2, rounded
SQRT_HALF = float.fromhex("0x1.6a09e667f3bcdp-1")
# pi / 2 = PIO2_1 + PIO2_2 + PIO2_3 (33 + 33 + 53 bits): k * PIO2_1 and k * PIO2_2 are exact
# for |k| < 2^20, which bounds the sin/cos argument to about 1.6e6.
PIO2_1 = float.fromhex("0x1.921fb544p+0")
PIO2_2 = float.fromhex("0x1.0b4611a6p-34")
PIO2_3 = float.fromhex("0x1.3198a2e037073p-69")
TRIG_LIMIT = float(2 ** 20)
SPLIT = float(2 ** 27 + 1)  # Dekker's splitter: x = hi + lo with hi of 26 significant bits
TWO_OVER_SQRT_PI = float.fromhex("0x1.20dd750429b6dp+0")


def _coefficients(values) -> np.ndarray:
    """Exact rationals rounded once to float64 (Python's float(Fraction) rounds correctly)."""
    return np.array([float(v) for v in values], dtype=np.float64)


EXP_C = _coefficients(Fraction(1, factorial(k)) for k in range(14))  # exp(r), |r| <= 0.3466
LOG_C = _coefficients(Fraction(2, 2 * k + 1) for k in range(1, 12))  # 2 s^(2k) / (2k + 1)
# erf(x) = 2/sqrt(pi) sum_k (-1)^k x^(2k+1) / (k! (2k+1)), |x| < 0.5: 13 terms to 2^-60
ERF_C = _coefficients(Fraction((-1) ** k, factorial(k) * (2 * k + 1)) for k in range(13))
SIN_C = _coefficients(Fraction((-1) ** k, factorial(2 * k + 1)) for k in range(10))
COS_C = _coefficients(Fraction((-1) ** k, factorial(2 * k)) for k in range(10))

ERFC_INTERVALS = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 28.0])
ERFC_MAX = 27.3  # erfc(27.3) < 2^-1075: zero in float64
# G(x) = erfc(x) exp(x^2) on [a, b] = ERFC_INTERVALS[i : i + 2], as a polynomial in
# u = (2x - a - b) / (b - a) (constant first); derived by exactmath_fit.erfc_table
_ERFC_TABLE = (
    "0x1.038d54ea3d834p-1 -0x1.78cdd551ee51ap-4 0x1.d90093ae10928p-7 -0x1.09e77d40e0239p-9 0x1.1192f5bd6877dp-12 -0x1.054d68295b244p-15 0x1.d43a7c7a661b3p-19 -0x1.8c97dd4ea4906p-22 0x1.3f81897ce8651p-25 -0x1.ec0cf4e3344b9p-29 0x1.6b982c1d4a8b2p-32 -0x1.02b1604028d9ap-35 0x1.6372355c4ec65p-39 -0x1.d8bafbaebbacap-43 0x1.30ecbde8dc9d4p-46 -0x1.7e469e1525974p-50 0x1.d27f0024ead17p-54 -0x1.157780d05ed0ep-57 0x1.422cd300b17d0p-61 -0x1.6d766a2a1de5ap-65 0x1.95b1f1e62a0e3p-69 -0x1.c44b73852253cp-73 0x1.e16c03449d7d3p-77",
    "0x1.494daffa2ad68p-2 -0x1.4f1988444caf7p-4 0x1.37ea271bc54bdp-6 -0x1.0dc51d2941e6dp-8 0x1.b65944f34f7adp-11 -0x1.513ed7600d1c1p-13 0x1.ee705e736464dp-16 -0x1.5b0abfe65a31dp-18 0x1.d4509d0d417c7p-21 -0x1.30c0ec743ca2ep-23 0x1.7f99792354fbep-26 -0x1.d4157187d69e0p-29 0x1.156c936a5fb5bp-31 -0x1.4004f03d95a5bp-34 0x1.67cf5ef3b9c3cp-37 -0x1.8adbfc5ac441fp-40 0x1.a7798daa77c05p-43 -0x1.bc5fe6695ac0cp-46 0x1.c8a5b2c36df06p-49 -0x1.ca82b318739aap-52 0x1.c540dd474bdc7p-55 -0x1.de1ef968f85dfp-58 0x1.c6ad17203cba7p-61",
    "0x1.6e9827d229d2dp-3 -0x1.bd6ae4d14b16fp-5 0x1.043fe1a98c0cdp-6 -0x1.259061ba85692p-8 0x1.409cc2ed3fefcp-10 -0x1.53dec9d0895c0p-12 0x1.5e73930485048p-14 -0x1.6025103c14645p-16 0x1.595f1b5dc38f0p-18 -0x1.4b14628869c33p-20 0x1.369904b839826p-22 -0x1.1d7913ca8c531p-24 0x1.01508e2a05f87p-26 -0x1.c752340e1e034p-29 0x1.8bbf33f2279c5p-31 -0x1.522324439ba56p-33 0x1.1c3ea18cc44d4p-35 -0x1.d71be8245dba9p-38 0x1.7fef2c231cfc5p-40 -0x1.2cab14bcd45e3p-42 0x1.dcddffdf8032fp-45 -0x1.d7607bdf4ff45p-47 0x1.697db44fc4913p-49",
    "0x1.7c0348489d721p-4 -0x1.ed7f66d9d09fep-6 0x1.3c7764a81f462p-7 -0x1.9106a7cd79df8p-9 0x1.f64cd9c07b66cp-11 -0x1.370d06417ac40p-12 0x1.7d0e03edb2214p-14 -0x1.cde4ceca58c4bp-16 0x1.1513469ecdd63p-17 -0x1.491bb152f4eb5p-19 0x1.83201a8128c65p-21 -0x1.c312a78c5953ap-23 0x1.045ffc9dc9112p-24 -0x1.29e8afef4d7eep-26 0x1.51dac6bc001e4p-28 -0x1.7b931f0224871p-30 0x1.a73db2b330e91p-32 -0x1.d9806d433f62ap-34 0x1.03956f2260367p-35 -0x1.f7cd8661a9f33p-38 0x1.110fda41ea140p-39 -0x1.e8e59452fb60fp-41 0x1.028f1b8ae16b7p-42",
    "0x1.7fd46c5e0864dp-5 -0x1.fc477b46d665bp-7 0x1.4f67f473cc4f9p-8 -0x1.b92eddb6a4951p-10 0x1.21338ab42f122p-11 -0x1.79e921ac8bba3p-13 0x1.ec3b264bc4592p-15 -0x1.3f89d99e18e3bp-16 0x1.9d8bf916b8b2dp-18 -0x1.0ac36f2995aa8p-19 0x1.57157e74d941fp-21 -0x1.b7df47912c331p-23 0x1.191ed7882509bp-24 -0x1.664bc32a30b93p-26 0x1.c733c46816cb8p-28 -0x1.1f7321bad987ep-29 0x1.6b0de7e06ba73p-31 -0x1.d854413da80d5p-33 0x1.2858fee4b3671p-34 -0x1.1dd9cb8957547p-36 0x1.661b8dd0fb428p-38 -0x1.ef7ede5a49fbap-39 0x1.3286f33afb56ap-40",
    "0x1.a3bc12161d4ebp-6 -0x1.c8f37dc1645ebp-8 0x1.f0f552e2edc85p-10 -0x1.0df55507cd4a9p-11 0x1.24feef9a0ae7bp-13 -0x1.3dad41895eedep-15 0x1.5816a517dc716p-17 -0x1.7451fc87cb597p-19 0x1.9276a6dea2d94p-21 -0x1.b29c739ff15b8p-23 0x1.d4db9301e720fp-25 -0x1.f94c6cf2e3391p-27 0x1.1003fe011927bp-28 -0x1.2495d3603341dp-30 0x1.3a63d4d253edep-32 -0x1.513e3f455993fp-34 0x1.69aa7fc1a4cffp-36 -0x1.87d6dc5258b64p-38 0x1.a35d2faf46b2ep-40 -0x1.8f6a4a6f71245p-42 0x1.aae1f1a86eb78p-44 -0x1.809a71a832cc1p-45 0x1.99b74817c1991p-47",
)
ERFC_G = np.array([[float.fromhex(c) for c in row.split()] for row in _ERFC_TABLE])
_ERFC_COLUMNS = np.ascontiguousarray(ERFC_G.T)  # [power, interval]
# erfc_fast: erfc(x) = t exp(-x^2 + P(2t - 1)), t = 1 / (1 + x/2), P of degree 16 (constant
# first); derived by exactmath_fit.erfc_fast_table
ERFC_FAST_P = np.array([float.fromhex(c) for c in (
    "-0x1.57f564e956ebep-1 0x1.5864b151aaaf0p-1 0x1.83d61c76c2240p-5 -0x1.802b38ecd03d1p-5 -0x1.43823a6fe7fa3p-7 "
    "0x1.212cf442457cdp-7 0x1.cd2422aa7eb16p-10 -0x1.3379c1a6ed424p-9 -0x1.351bd4bbc3c1dp-13 0x1.61622234f12f0p-11 "
    "-0x1.78cd38bb85c76p-14 -0x1.7069072c81eeep-13 0x1.0bac85cca91bdp-14 0x1.237c56c0e5b41p-15 -0x1.6b92a2ddeaa76p-16 "
    "-0x1.f5f2bca83449cp-19 0x1.c68e309585212p-19").split()])
