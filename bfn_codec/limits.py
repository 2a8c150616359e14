"""The codec settings a file can carry. Their one home: the container's reader refuses anything
outside them, the encoder checks them before writing, and the command line's options take the
same ranges (this module imports nothing, so ``bfn-codec --help`` stays fast)."""
MAX_STEPS = 10_000  # number of steps n
R_RANGE = (0.1, 64.0)  # grid ratio r: delta_i = sigma_i / r
GRID_POWER_RANGE = (0.125, 8.0)  # time grid t_i = (i/n)^p
# items per chunk of a chunked file when --jobs asks for one and --chunk-items does not say
# (docs/pipelines.md: each chunk pays its own seed and ramp, ~600 bytes on binarised images
# whatever the chunk size, so ~3% of a 1,000-image chunk; 2,000 items already feed two workers)
DEFAULT_CHUNK_ITEMS = 1000
