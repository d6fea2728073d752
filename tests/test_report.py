"""The report, profile and progress machinery on tiny inputs: it runs, the
JSON has the expected fields with sane values, plots and tables are
written, bad data files get clear errors. The numbers are not asserted."""
import io
import json
import math
import os

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file

from pyasync import __main__ as cli
from pyasync import profile, report
from pyasync.benchmark import thread_counts
from pyasync.progress import Progress

TINY = dict(rows=600, repeats=1, epochs=1, mlp_rows=300, se_rows=300, se_epochs=3,
            workers=(1, 4), momenta=(0.5, 0.0), threads=[1, 2])


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    echoed = []
    results = report.run(out=str(out), quick=True, settings=TINY,
                         with_reproduce=False, echo=echoed.append)
    return out, results, "\n".join(echoed)


def test_report_writes_markdown_json_and_plots(tiny_report):
    out, _, echoed = tiny_report
    text = (out / "report.md").read_text()
    for section in ("## Headline", "## Hardware efficiency", "## Statistical efficiency",
                    "Recommended:"):
        assert section in text
    assert "| workload |" in echoed  # the headline table is printed
    pngs = {p.name for p in out.glob("*.png")}
    pytest.importorskip("matplotlib")
    assert "he_dense_float64.png" in pngs and "he_sparse_float32.png" in pngs
    assert any(name.startswith("se_") for name in pngs)


def test_results_json_fields_and_values(tiny_report):
    out, results, _ = tiny_report
    data = json.loads((out / "results.json").read_text())
    assert data["machine"]["cores"] >= 1 and data["machine"]["stream_bandwidth_gb_s"] > 0
    assert data["settings"]["threads"] == [1, 2]
    assert [e["data"] for e in data["linear"]] == ["dense float64", "dense float32",
                                                   "sparse float64", "sparse float32"]
    for e in data["linear"]:
        assert e["sklearn_s"] > 0 and e["floor_s"] > 0
        combos = {(c["threads"], c["update"]) for c in e["configs"]}
        assert combos == {(t, u) for t in (1, 2) for u in ("racy", "atomic", "locked")}
        for c in e["configs"]:
            assert c["s_per_epoch"] > 0 and c["updates_per_s"] > 0
            assert math.isclose(c["vs_sklearn"], c["s_per_epoch"] / e["sklearn_s"])
            assert c["staleness_mean"] >= 0
        assert all(c["staleness_mean"] == 0 for c in e["configs"] if c["threads"] == 1)
    assert [e["data"] for e in data["mlp"]] == ["digits", "synthetic 300x256"]
    for e in data["statistical"]:
        assert {(r["workers"], r["momentum"]) for r in e["simulated"]} == {
            (m, mu) for m in (1, 4) for mu in (0.5, 0.0, "auto")}
        assert all(len(r["curve"]) == 3 for r in e["simulated"])
        for r in e["simulated"] + e["threads"]:
            ett = r["epochs_to_target"]
            assert ett is None or 1 <= ett <= 3
        # the target is set from these curves, so some configuration reaches it
        assert any(r["epochs_to_target"] is not None for r in e["simulated"] + e["threads"])
        rec = e["recommended"]
        if rec is not None:
            best = min(r["time_to_target_s"] for r in e["threads"]
                       if r["time_to_target_s"] is not None)
            assert rec["time_to_target_s"] == best and rec["threads"] in (1, 2)


def test_epochs_to_target():
    assert report.epochs_to([3.0, 2.0, 1.0], 2.0) == 2.0
    assert report.epochs_to([3.0, np.inf, np.inf], 2.0) == np.inf


def test_thread_counts_cover_cores_and_oversubscription():
    assert thread_counts(2) == [1, 2, 4]
    assert thread_counts(6) == [1, 2, 4, 6, 12]
    assert thread_counts(1) == [1, 2]


def test_progress_bar_counts_steps():
    stream = io.StringIO()
    bar = Progress(2, stream=stream)
    bar.step("first")
    bar.step("second")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "0/2" in lines[0] and "first" in lines[0]
    assert "1/2" in lines[1] and "2/2" in lines[2] and "done" in lines[2]


@pytest.fixture
def classification_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = (X[:, 0] > 0).astype(np.float64)
    return X, y


@pytest.mark.parametrize("fmt", ["npy", "npz", "npz-sparse", "npz-save_npz", "svmlight"])
def test_profile_reads_every_format(tmp_path, classification_data, fmt):
    X, y = classification_data
    path = tmp_path / ("data." + fmt.split("-")[0])
    if fmt == "npz-save_npz":  # scipy's own file, y added: its format is bytes
        sp.save_npz(path, sp.csr_matrix(X))
        parts = dict(np.load(path))
        np.savez(path, y=y, **parts)
    elif fmt == "npy":
        np.save(path, np.column_stack([X, y]))
    elif fmt == "npz":
        np.savez(path, X=X, y=y)
    elif fmt == "npz-sparse":
        S = sp.csr_matrix(X)
        np.savez(path, data=S.data, indices=S.indices, indptr=S.indptr,
                 shape=np.array(S.shape), format="csr", y=y)
    else:
        dump_svmlight_file(X, y, str(path))
    X2, y2 = profile.load_data(str(path))
    assert X2.shape == X.shape and np.allclose(y2, y)
    dense = X2.toarray() if sp.issparse(X2) else X2
    assert np.allclose(dense, X, atol=1e-6)


def test_profile_runs_on_svmlight(tmp_path, classification_data):
    """load_svmlight_file gives 64-bit indices: the estimators take them."""
    X, y = classification_data
    path = tmp_path / "data.svm"
    dump_svmlight_file(X, y, str(path))
    res = profile.run(str(path), threads=[1], epochs=1, repeats=1, echo=lambda *_: None)
    assert res["data"]["sparse"] and len(res["results"]) == 3


def test_profile_says_what_is_wrong_before_measuring(tmp_path, classification_data):
    X, _ = classification_data
    path = tmp_path / "reg.npy"
    np.save(path, np.column_stack([X, X @ np.arange(5.0)]))
    with pytest.raises(ValueError, match="--loss squared_error"):
        profile.run(str(path), threads=[1], epochs=1, repeats=1)
    S = sp.csr_matrix(X)
    bad = tmp_path / "bad.npz"
    np.savez(bad, data=S.data, indices=S.indices + 100, indptr=S.indptr,
             shape=np.array(S.shape), y=np.ones(200))
    with pytest.raises(ValueError, match="X.indices holds an index outside"):
        profile.run(str(bad), threads=[1], epochs=1, repeats=1)


def test_benchmark_arguments_are_checked_before_the_work(tmp_path):
    """The bench scripts' and the CLI's argument types: a bad count, list
    or output path is a usage error, not a traceback after the run."""
    import argparse
    from pyasync.benchmark import counts, numbers, positive_int, writable_file
    assert positive_int("3") == 3 and counts("4,1,2,4") == [1, 2, 4]
    assert numbers("0.5, -0.9") == [0.5, -0.9] and numbers("") == []
    assert writable_file(str(tmp_path / "out.json")) == str(tmp_path / "out.json")
    (tmp_path / "file").write_text("")
    for check, bad in [(positive_int, "0"), (positive_int, "-1"), (positive_int, "x"),
                       (counts, "0,2"), (counts, ""), (counts, "a"), (numbers, "abc"),
                       (numbers, "nan"), (writable_file, str(tmp_path)),
                       (writable_file, str(tmp_path / "file" / "x.json"))]:
        with pytest.raises(argparse.ArgumentTypeError):
            check(bad)


def test_cli_says_interrupted_without_a_traceback(monkeypatch, capsys):
    from pyasync import demo

    def interrupted(**kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(demo, "run", interrupted)
    assert cli.main(["demo"]) == 130
    assert capsys.readouterr().err.strip() == "pyasync demo: interrupted"


def test_cli_refuses_bad_counts_and_folders(tmp_path, capsys):
    for flag in ("--epochs", "--repeats"):
        with pytest.raises(SystemExit):
            cli.main(["profile", "x.npz", flag, "0"])
        assert "positive integer" in capsys.readouterr().err
    for json_path in (tmp_path / "no" / "p.json", tmp_path):  # no folder; a folder
        assert cli.main(["profile", "x.npz", "--json", str(json_path)]) == 2
        assert "cannot write --json" in capsys.readouterr().err
    assert cli.main([]) == 2 and "usage" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    for command in ("report", "reproduce"):
        with pytest.raises(SystemExit, match="cannot write"):
            cli.main([command, "--out", str(tmp_path / "file" / "sub")])


def test_per_epoch_time_never_from_a_negative_difference(monkeypatch):
    """Noise can make the longer fit the faster: such a repeat is measured
    again, and then bounded by the longer fit's time per epoch, never
    turned into a near-zero time (a ratio of 1e7 in a report)."""
    from pyasync import benchmark
    times = iter([1.0, 0.5] * benchmark.RETRIES + [1.0, 1.6])
    monkeypatch.setattr(benchmark, "fit_seconds", lambda est, X, y: next(times))
    t = benchmark.per_epoch_seconds(lambda n: None, None, None, epochs=3, repeats=2)
    assert t.seconds == pytest.approx(np.median([0.5 / 4, 0.6 / 3]))


def test_profile_runs_and_recommends_momentum(tmp_path, classification_data):
    X, y = classification_data
    path = tmp_path / "data.npz"
    np.savez(path, X=X, y=y)
    lines = []
    res = profile.run(str(path), threads=[1, 2], epochs=1, repeats=1, echo=lines.append)
    assert {(r["threads"], r["update"]) for r in res["results"]} == {
        (t, u) for t in (1, 2) for u in ("racy", "atomic", "locked")}
    for r in res["results"]:
        assert r["updates_per_s"] > 0 and r["gb_per_s"] > 0 and r["of_bandwidth"] > 0
        assert sum(r["staleness_histogram"]) >= 0
    assert set(res["recommended_momentum"]) == {1, 2}
    for rec in res["recommended_momentum"].values():
        assert -1 < rec["momentum"] < 1
    assert any("recommended explicit momentum" in ln for ln in lines)


def test_profile_regression_loss_uses_the_regressor(tmp_path, classification_data):
    X, _ = classification_data
    path = tmp_path / "data.npy"
    np.save(path, np.column_stack([X, X @ np.arange(5.0)]))
    res = profile.run(str(path), loss="squared_error", threads=[1], epochs=1,
                      repeats=1, echo=lambda *_: None)
    assert res["loss"] == "squared_error" and len(res["results"]) == 3


@pytest.mark.parametrize("content, name, message", [
    (None, "missing.npz", "no such data file"),
    (np.arange(5.0), "one.npy", "2-D"),
    ({"X": np.ones((3, 2))}, "noy.npz", "'y'"),
    ({"A": np.ones((3, 2)), "y": np.ones(3)}, "nox.npz", "'X'"),
    (b"this is not svmlight\n", "bad.txt", "svmlight"),
    (b"", "empty.npy", "not a readable .npy"),
    (b"PK\x03\x04garbage", "corrupt.npz", "not a readable .npz"),
])
def test_profile_bad_data_files(tmp_path, content, name, message):
    path = tmp_path / name
    if isinstance(content, dict):
        np.savez(path, **content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.save(path, content)
    with pytest.raises(ValueError, match=message):
        profile.load_data(str(path))


def test_cli_profile_reports_bad_file_and_thread_list(tmp_path, capsys):
    assert cli.main(["profile", str(tmp_path / "missing.svm")]) == 2
    assert "no such data file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["profile", "x.svm", "--threads", "0,2"])
    assert "--threads" in capsys.readouterr().err


def test_cli_profile_writes_json(tmp_path, classification_data):
    X, y = classification_data
    data, out = tmp_path / "d.npz", tmp_path / "p.json"
    np.savez(data, X=X, y=y)
    assert cli.main(["profile", str(data), "--threads", "1", "--epochs", "1",
                     "--repeats", "1", "--json", str(out)]) == 0
    assert os.path.exists(out)
    assert json.loads(out.read_text())["data"]["rows"] == 200
