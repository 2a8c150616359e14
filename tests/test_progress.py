"""The progress bar's ETA under ramping batch sizes (true time per batch = a + b * size)."""
import io
import math
import re

from bfn_codec.progress import Progress


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def cost(B):
    """The true seconds of a batch of B items: a large fixed cost plus a small one per item."""
    return 2.0 + 0.01 * B


def calibrated(B):
    """What a calibration would measure for the same batches: the right shape up to a scale,
    with a per-item slope 20% off (the codec times single network calls, not whole batches)."""
    return 1.0 + 0.004 * B


def encoder_schedule(total=5000, cap=256):
    sizes = [1, 1, 2, 3, 4, 6, 8, 12, 16]
    while sum(sizes) < total:
        sizes.append(min(cap, total - sum(sizes)))
    return sizes


def parse_eta(line):
    """Seconds from 'ETA H:MM:SS' or 'ETA MM:SS', None for 'ETA ?'."""
    m = re.search(r"ETA (\?|(?:(\d+):)?(\d+):(\d\d))", line)
    assert m, line
    if m.group(1) == "?":
        return None
    h, mm, ss = m.group(2), m.group(3), m.group(4)
    return int(h or 0) * 3600 + int(mm) * 60 + int(ss)


def run(sizes, total, costs, stop, **kw):
    """Feed the first ``stop`` updates; return the printed lines and the elapsed seconds."""
    clock, out = FakeClock(), io.StringIO()
    bar = Progress(total, "test", "items", stream=out, log_every=0, clock=clock, **kw)
    for B, c in zip(sizes[:stop], costs[:stop]):
        clock.t += c
        bar.update(B)
    return out.getvalue().splitlines(), clock.t


def test_encoder_ramp_eta_is_close_while_rate_eta_is_wild():
    sizes = encoder_schedule()
    costs = [cost(B) for B in sizes]
    lines, elapsed = run(sizes, 5000, costs, 4, max_batch=256, work=calibrated)
    assert len(lines) == 4
    done = sum(sizes[:4])
    truth = sum(costs[4:])
    eta = parse_eta(lines[-1])
    assert eta is not None and abs(eta - truth) <= 0.25 * truth, (eta, truth)
    old = (5000 - done) / (done / elapsed)  # the former items-per-second ETA
    assert old > 3 * truth


def test_decoder_known_schedule_eta_within_10_percent():
    sizes = list(reversed(encoder_schedule()))  # the decoder undoes the encoder's batches last-first
    # Costs jittered by up to 3% so the fit is not exact.
    costs = [cost(B) * (1 + 0.03 * math.sin(7 * i)) for i, B in enumerate(sizes)]
    stop = 4
    lines, _ = run(sizes, 5000, costs, stop, batches=sizes, work=calibrated)
    truth = sum(costs[stop:])
    eta = parse_eta(lines[-1])
    assert eta is not None and abs(eta - truth) <= 0.10 * truth, (eta, truth)


def test_updates_of_one_give_the_rate_based_eta():
    total, stop = 500, 40
    costs = [0.3 + 0.05 * (i % 3) for i in range(total)]
    lines, elapsed = run([1] * total, total, costs, stop)
    rate_eta = (total - stop) / (stop / elapsed)
    assert abs(parse_eta(lines[-1]) - rate_eta) <= 1


def test_nothing_measured_yet_says_unknown():
    clock, out = FakeClock(), io.StringIO()
    bar = Progress(513, "x", stream=out, log_every=0, clock=clock, batches=[1, 256, 256], work=calibrated)
    assert bar.eta() is None
    bar.update(1)  # one batch of 1 measured: with the work model, batches of 256 are predicted
    assert bar.eta() is not None


def test_replan_replaces_the_updates_to_come():
    clock, out = FakeClock(), io.StringIO()
    bar = Progress(300, "x", stream=out, log_every=0, clock=clock, max_batch=256, work=cost)
    clock.t += cost(1)
    bar.update(1)
    assert abs(bar.eta() - (cost(256) + cost(43))) < 1e-6
    bar.replan([1, 2, 3, 293])  # the encoder re-plans its ramp as the stack grows
    assert abs(bar.eta() - sum(map(cost, [1, 2, 3, 293]))) < 1e-6


def test_same_size_planned_uses_mean_time_per_update():
    lines, _ = run([256] * 4, 1024, [4.0, 5.0, 4.0, 5.0], 2, batches=[256] * 4)
    assert parse_eta(lines[-1]) == 9


def test_final_line_elapsed_and_short_lines():
    clock, out = FakeClock(), io.StringIO()
    with Progress(3, "x", stream=out, log_every=0, clock=clock) as bar:
        for _ in range(3):
            clock.t += 61
            bar.update(1, status="s" * 500)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4  # one per update and a final one
    assert "03:03 elapsed" in lines[-1] and parse_eta(lines[-1]) == 0
    assert all(len(line) < 200 for line in lines)


def test_disabled_prints_nothing():
    clock, out = FakeClock(), io.StringIO()
    with Progress(10, "x", stream=out, enabled=False, log_every=0, clock=clock) as bar:
        for _ in range(10):
            clock.t += 1
            bar.update(1)
    assert out.getvalue() == ""


def test_the_encoders_plan_of_a_slow_ramp_is_bounded():
    """Items that leave few bits on the stack keep the ramp at batches of one for a long time;
    the plan then simulates a bounded number of batches and extrapolates the rest."""
    from bfn_codec.driver import PLAN_STEPS, _planned_ramp

    plan = _planned_ramp(avail=7000.0, need=6000.0, per_item=2.0, remaining=100_000, batch_size=256)
    assert sum(plan) == 100_000 and plan[:PLAN_STEPS] == [1] * PLAN_STEPS
    fast = _planned_ramp(avail=7000.0, need=6000.0, per_item=3000.0, remaining=5000, batch_size=256)
    assert sum(fast) == 5000 and fast[0] == 1 and max(fast) == 256
    assert all(a <= b for a, b in zip(fast[:-2], fast[1:-1]))  # grows to the cap; then a remainder


def test_deadline_caps_the_eta():
    """Training with --max-minutes stops at its deadline: the ETA is the budget left when the
    steps would take longer, and the work's own ETA when they end first."""
    clock = FakeClock()
    bar = Progress(10**8, "train", stream=io.StringIO(), log_every=0, clock=clock, deadline=clock.t + 60.0)
    assert bar.eta() == 60.0  # nothing measured yet: only the deadline is known
    clock.t += 1.0
    bar.update(1)
    assert bar.eta() == 59.0  # 10^8 steps at 1 s each would take years
    short = Progress(4, "train", stream=io.StringIO(), log_every=0, clock=clock, deadline=clock.t + 600.0)
    clock.t += 2.0
    short.update(1)
    assert short.eta() == 6.0  # 3 steps left at 2 s each, well before the deadline
    clock.t += 1000.0
    assert bar.eta() == 0.0  # past the deadline: never negative
