"""The coder's arithmetic revisions (no imports: `info` reads them without loading torch)."""

# Revision of the coder's arithmetic (tables, posteriors, grids). Any change that alters a
# single probability makes older files undecodable, so files record it.
# 1: exact bin-mass posteriors (0.1.0, first files); 2: Sheppard-corrected posteriors and the
# one-pass discretised table; 3: discretised tails with erfc instead of ndtr (ndtr(-z) was 0
# beyond z ~ 9 in float64); 4: receiver weights of discretised data on a window of bins
# (coder.WINDOW_Z); 5: supports of +-5 instead of +-10 std (coder.DEFAULT_TAIL).
CODER_REVISION = 5
# 6: the portable arithmetic (portable.py): the integer network and exact functions, the same
# probabilities on every machine; its decoder needs no matching environment, and it is kept
# unchanged in every later release (tests/golden holds files that prove it).
# 7: revision 6 without the 2^-24 floors on entries that cannot occur (posteriors and weights on
# their kept entries, Gaussian tables on +-5 std): the chain overhead stops growing with n.
# 8: revision 7 with receivers that match the encoder's path distribution on the grids (the
# rounding noise of every value drawn on a grid taken into account): the chain no longer pays
# for the grids' mismatch (coder.grid_receivers).
PORTABLE_REVISIONS = (6, 7, 8)  # every portable revision, each decodable in every later release
PORTABLE_REVISION = PORTABLE_REVISIONS[-1]  # what new portable files are written with
