"""The package's shape: no import cycles, and a command line that starts without torch."""
import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "bfn_codec")


def import_graph() -> dict:
    """module -> the package modules it imports, at any depth of its code (lazy imports inside
    functions count: they still make two modules depend on each other)."""
    modules = {f[:-3] for f in os.listdir(PACKAGE) if f.endswith(".py")}
    graph = {}
    for name in modules:
        tree = ast.parse(open(os.path.join(PACKAGE, name + ".py")).read())
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = node.module or ""
                if node.level == 0:
                    if not target.startswith("bfn_codec"):
                        continue
                    target = target[len("bfn_codec"):].lstrip(".")
                if target:
                    edges.add(target.split(".")[0])
                else:  # from . import x: a submodule, or a name of the package's __init__
                    edges |= {a.name if a.name in modules else "__init__" for a in node.names}
            elif isinstance(node, ast.Import):
                edges |= {a.name.split(".")[1] for a in node.names if a.name.startswith("bfn_codec.")}
        graph[name] = edges & modules - {name}
    return graph


def find_cycle(graph: dict):
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    graph = import_graph()
    assert {"api", "cli", "container", "coder"} <= set(graph) and "container" in graph["api"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_command_line_starts_without_torch_or_numpy():
    code = ("import sys, bfn_codec, bfn_codec.cli; "
            "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", (out.stdout, out.stderr)


def test_the_version_has_one_home():
    import bfn_codec
    from bfn_codec.cli import main
    from click.testing import CliRunner

    assert CliRunner().invoke(main, ["--version"]).output.strip().endswith(bfn_codec.__version__)
    pyproject = open(os.path.join(ROOT, "pyproject.toml")).read()
    assert f'version = "{bfn_codec.__version__}"' in pyproject
    hits = [f for f in os.listdir(PACKAGE) if f.endswith(".py") and "__version__ = " in open(os.path.join(PACKAGE, f)).read()]
    assert hits == ["version.py"], hits


def test_the_declared_interfaces_are_what_the_models_and_flows_provide():
    import pytest
    import torch

    from bfn_codec.chain import BayesianFlow
    from bfn_codec.models import CoderModel, OracleModel, load_model, make_flow

    flow = make_flow({"data_type": "discretised", "K": 256})
    oracle = OracleModel(flow, torch.full((4, 256), 1 / 256).numpy(), shape=(1, 2, 2))
    for model in (oracle, load_model("fmnist-binary")):
        assert isinstance(model, CoderModel), type(model)
        assert isinstance(model.info, dict) and model.trunk_seconds >= 0.0

    class Incomplete(BayesianFlow):  # no beta, config or net_input
        data_type = "incomplete"

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()
    lo, probs = oracle.output_window(torch.zeros(3, 4, 1, dtype=torch.float64), 0.5, 5.0)
    assert lo is None and probs.shape == (3, 4, 256)


def test_generated_documents_are_current():
    """REPORT.md, README.md's results block and benchmarks/README.md regenerate from the
    committed JSON (and the template): report.py --check fails when any of them was edited by
    hand or a result changed without regenerating them."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "report.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_result_records_the_command_that_wrote_it(tmp_path, monkeypatch):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import result_names
    finally:
        sys.path.pop(0)
    book = tmp_path / "commands.json"
    book.write_text('{"results": {}, "archive": {}}')
    monkeypatch.setattr(result_names, "COMMANDS", str(book))
    monkeypatch.setattr(sys, "argv", [os.path.join(ROOT, "benchmarks", "codec_bench.py"), "--limit", "8"])
    result_names.record_command(os.path.join(result_names.RESULTS, "codec-8bit-1234abcd-8-n25-p2.json"))
    result_names.record_command(str(tmp_path / "elsewhere.json"))  # not a committed result: ignored
    import json

    entries = json.loads(book.read_text())["results"]
    assert entries == {"codec-8bit-1234abcd-8-n25-p2.json": {
        "weights": "1234abcd", "command": "python3 benchmarks/codec_bench.py --limit 8"}}


def test_bundled_models_are_reproducible_portable_and_within_the_size_budget():
    """Every model in the zoo: safetensors whose SHA-256 is the one config.json records, the
    training command and seed that produced it, an integer calibration of these very weights
    (portable files) and codec defaults; all of them together under 25 MB."""
    import hashlib
    import json

    from bfn_codec.zoo import ZOO_DIR, available_models

    names = available_models()
    assert {"fmnist", "fmnist-binary"} <= set(names)
    total = 0
    for name in names:
        cfg = json.loads((ZOO_DIR / name / "config.json").read_text())
        weights = (ZOO_DIR / name / "model.safetensors").read_bytes()
        total += len(weights)
        assert hashlib.sha256(weights).hexdigest() == cfg["weights_sha256"], name
        training = cfg["info"]["training"]
        assert training["command"].startswith("bfn-codec train ") and isinstance(training["seed"], int), name
        assert cfg["integer"]["weights_sha256"] == cfg["weights_sha256"], name
        assert cfg["integer"]["command"].startswith("bfn-codec calibrate "), name
        assert set(cfg["info"]["codec"]) == {"steps", "r", "grid_power"}, name
    assert total < 25_000_000
