"""The numcodecs codec, the Zarr v3 serializer and the Dask recipe (docs/pipelines.md)."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

numcodecs = pytest.importorskip("numcodecs")

from bfn_codec.api import read_header  # noqa: E402
from bfn_codec.data import DataError, binarise  # noqa: E402
from bfn_codec.numcodecs import BFNCodec, _model  # noqa: E402
from bfn_codec.zoo import ModelError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = np.load(os.path.join(ROOT, "bfn_codec", "samples", "fmnist-test-256.npy"))
BINARY = binarise(SAMPLE)


def test_get_codec_finds_bfn_through_the_entry_point_and_the_config_round_trips():
    codec = numcodecs.get_codec({"id": "bfn", "model": "fmnist-binary", "steps": 20, "mode": "bfn"})
    assert isinstance(codec, BFNCodec)
    again = numcodecs.get_codec(codec.get_config())
    assert again == codec and again.get_config()["steps"] == 20
    assert pickle.loads(pickle.dumps(codec)) == codec
    assert len(pickle.dumps(codec)) < 1000  # configuration only, never the model


def test_encode_decode_round_trips_every_accepted_chunk_form():
    codec = BFNCodec(model="fmnist-binary", mode="bfn")
    x = BINARY[:24]  # the fewest binary images whose chain outgrows its LZMA2 seed (22 items)
    blob = codec.encode(x)
    assert read_header(blob).mode == "bfn"  # the chain ran, not only the LZMA2 fallback
    assert np.array_equal(codec.decode(blob), x)
    # (N, 1, H, W), and a flat buffer of whole items (Zarr v2, byte pipelines): the same file
    plain = BFNCodec(model="fmnist-binary", mode="fallback")
    assert plain.encode(x[:, None]) == plain.encode(x) == plain.encode(x.tobytes())
    assert np.array_equal(plain.decode(plain.encode(x[:, None])), x)
    out = np.zeros(x.size, np.uint8)  # out= of another shape but the right size is filled
    result = codec.decode(blob, out=out)
    assert np.array_equal(out.reshape(x.shape), x) and np.shares_memory(result, out)
    with pytest.raises(ValueError, match="bytes"):
        codec.decode(blob, out=np.zeros(10, np.uint8))


def test_misfit_chunks_are_clear_errors():
    codec = BFNCodec(model="fmnist-binary")
    with pytest.raises(DataError, match="uint8"):
        codec.encode(BINARY[:2].astype(np.int16))
    with pytest.raises(DataError, match="whole number of 28x28 items"):
        codec.encode(BINARY[:2].tobytes()[:-5])
    with pytest.raises(ValueError, match="mode"):
        BFNCodec(mode="fast")
    with pytest.raises(ModelError, match="configuration names"):
        BFNCodec(model="fmnist-binary", weights_sha256="00" * 32).encode(BINARY[:1])
    with pytest.raises(Exception, match="not a bfn-codec file"):
        codec.decode(b"garbage garbage")


def test_the_model_is_loaded_once_per_process_not_per_chunk():
    codec = BFNCodec(model="fmnist-binary", mode="fallback")
    codec.encode(BINARY[:1])
    before = _model.cache_info().misses
    for i in range(4):
        codec.decode(codec.encode(BINARY[i:i + 2]))
        numcodecs.get_codec(codec.get_config()).encode(BINARY[:1])  # a new codec object, same model
    assert _model.cache_info().misses == before


@pytest.mark.slow
def test_zarr_v3_array_with_a_partial_edge_chunk_round_trips(tmp_path):
    zarr = pytest.importorskip("zarr")
    from bfn_codec.zarr_codec import BFNZarrCodec

    x = BINARY[:69]  # chunks of 32: 32, 32 and a partial 5 (stored at full shape, fill value 0)
    path = str(tmp_path / "images.zarr")
    z = zarr.create_array(path, shape=x.shape, chunks=(32, 28, 28), dtype="uint8",
                          serializer=BFNZarrCodec(model="fmnist-binary", mode="bfn", steps=12), compressors=None)
    for start in range(0, len(x), 32):  # chunk by chunk, as a pipeline writes
        z[start:start + 32] = x[start:start + 32]
    stored = sorted(os.listdir(os.path.join(path, "c")))
    assert stored == ["0", "1", "2"]
    modes = []
    for name in stored:  # every stored chunk is a complete .bfn file of the full chunk shape
        with open(os.path.join(path, "c", name, "0", "0"), "rb") as f:
            header = read_header(f.read())
        assert header.count == 32
        modes.append(header.mode)
    # the full chunks run the chain; the edge chunk's 27 fill items leave the LZMA2 seed all of it
    assert modes[:2] == ["bfn", "bfn"]
    # a fresh process that never imports bfn_codec finds the codec through the zarr.codecs entry point
    code = "import sys, numpy as np, zarr; np.save(sys.stdout.buffer, zarr.open_array(sys.argv[1])[:])"
    res = subprocess.run([sys.executable, "-c", code, path], capture_output=True, timeout=600)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    import io

    assert np.array_equal(np.load(io.BytesIO(res.stdout)), x)
    assert np.array_equal(zarr.open_array(path)[60:69], x[60:69])  # a slice reads only its chunk
    with pytest.raises(ValueError, match="uint8"):
        zarr.create_array(str(tmp_path / "f.zarr"), shape=(4, 28, 28), chunks=(2, 28, 28), dtype="float32",
                          serializer=BFNZarrCodec(model="fmnist-binary"), compressors=None)


@pytest.mark.slow
def test_dask_local_cluster_writes_and_reads_zarr_with_the_bfn_codec(tmp_path):
    pytest.importorskip("zarr")
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    from bfn_codec.pipelines import read_zarr, write_zarr

    x = BINARY[:64]
    path = str(tmp_path / "dask.zarr")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        write_zarr(da.from_array(x, chunks=(32, 28, 28)), path, model="fmnist-binary", mode="bfn", steps=12)
        workers = client.run(lambda: os.getpid())
        assert len(set(workers.values())) == 2
        back = read_zarr(path).compute()
    assert np.array_equal(back, x)
    for c in "01":  # both chunks ran the chain (each on some worker)
        with open(os.path.join(path, "c", c, "0", "0"), "rb") as f:
            assert read_header(f.read()).mode == "bfn"


@pytest.mark.slow
def test_the_readme_pipelines_example_runs_as_written(tmp_path):
    pytest.importorskip("zarr")
    pytest.importorskip("distributed")
    readme = open(os.path.join(ROOT, "README.md")).read()
    block = readme.split("<!-- pipelines-example:start -->")[1].split("<!-- pipelines-example:end -->")[0]
    code = block.split("```python\n")[1].split("```")[0]
    script = tmp_path / "example.py"
    script.write_text(code)
    res = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "read back exactly" in res.stdout
    assert sorted(os.listdir(tmp_path / "images.zarr" / "c")) == ["0", "1"]
