"""Running English text for language-model perplexity: the VADER Amazon review snippets.

Source: C. J. Hutto and E. Gilbert, "VADER: A Parsimonious Rule-based Model for Sentiment
Analysis of Social Media Text", ICWSM 2014. Their ground truth ships in the ``vaderSentiment``
*source distribution* (MIT licence), inside ``additional_resources/hutto_ICWSM_2014.tar.gz``;
``amazonReviewSnippets_GroundTruth.txt`` holds 3,708 consecutive sentences of 300 Amazon
product reviews (lower-cased by the authors), one per line: ``<review>_<sentence>``, mean
human rating, sentence. The sentences of a review are contiguous prose, so rejoined they make
real running text for next-token prediction; the ratings are not used.

This module only fetches and reads the file: the sdist is fetched once with
``pip download --no-deps --no-binary :all: vaderSentiment==3.3.2`` (the same file, checked
against the same sha256, that ``topkima.sentiment`` caches), and the one member is extracted
atomically after its own sha256 check.
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VADER_VERSION = "3.3.2"
SDIST_NAME = f"vaderSentiment-{VADER_VERSION}.tar.gz"
#: sha256 of the sdist from PyPI (2,466,783 bytes; measured 2026-11-22, as in ``topkima.sentiment``)
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
INNER_ARCHIVE = f"vaderSentiment-{VADER_VERSION}/additional_resources/hutto_ICWSM_2014.tar.gz"
AMAZON_MEMBER = "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt"
#: sha256 of that member (373,157 bytes, UTF-8, CRLF line ends, no final newline; measured 2026-12-06)
AMAZON_SHA256 = "11a9807a0974a2506a2d3b4851eaf69b3d6d20688ce4923adda2312a4f6dd6c2"
N_AMAZON_SNIPPETS = 3708
_MAX_MEMBER_BYTES = 64 * 2**20


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    """Bytes of one regular member, looked up by name (never ``extractall``)."""
    try:
        info = archive.getmember(name)
    except KeyError:
        raise RuntimeError(f"archive lacks {name}") from None
    if not info.isreg() or info.size > _MAX_MEMBER_BYTES:
        raise RuntimeError(f"archive member {name} is not a regular file of sane size")
    return archive.extractfile(info).read()


def _fetch_sdist(cache: Path, timeout_s: float) -> Path:
    sdist = cache / SDIST_NAME
    if sdist.is_file() and _sha256(sdist.read_bytes()) == SDIST_SHA256:
        return sdist
    with tempfile.TemporaryDirectory(dir=cache, prefix=".pip-download-") as temp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   "--dest", temp, f"vaderSentiment=={VADER_VERSION}"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"pip download of vaderSentiment=={VADER_VERSION} took longer than "
                               f"{timeout_s:.0f} s; check network access to PyPI") from None
        fetched = Path(temp) / SDIST_NAME
        if done.returncode != 0 or not fetched.is_file():
            raise RuntimeError(f"pip download of vaderSentiment=={VADER_VERSION} failed (exit "
                               f"{done.returncode}): {done.stderr.strip()[-2000:]}")
        digest = _sha256(fetched.read_bytes())
        if digest != SDIST_SHA256:
            raise RuntimeError(f"{SDIST_NAME} from PyPI has sha256 {digest}, expected {SDIST_SHA256}")
        os.replace(fetched, sdist)
    return sdist


def fetch_amazon_snippets(cache_dir: str | os.PathLike = ".cache/downloads", timeout_s: float = 300.0) -> Path:
    """Path of ``amazonReviewSnippets_GroundTruth.txt``, extracted (and the sdist fetched) once.

    Raises
    ------
    RuntimeError
        pip failed (its stderr is quoted), or a checksum does not match.
    """
    cache = Path(cache_dir)
    target = cache / Path(AMAZON_MEMBER).name
    if target.is_file() and _sha256(target.read_bytes()) == AMAZON_SHA256:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tarfile.open(_fetch_sdist(cache, timeout_s), "r:gz") as outer:
        inner_bytes = _member(outer, INNER_ARCHIVE)
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        data = _member(inner, AMAZON_MEMBER)
    if _sha256(data) != AMAZON_SHA256:
        raise RuntimeError(f"{AMAZON_MEMBER} has sha256 {_sha256(data)}, expected {AMAZON_SHA256}")
    handle, temp_name = tempfile.mkstemp(dir=cache, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return target


def amazon_review_text(path: str | os.PathLike | None = None) -> str:
    """The Amazon review snippets as running text: one review per line, its sentences in order.

    Sentences of one review (same ``<review>`` id prefix), in order of their sentence number, are
    joined with a space; reviews, in file order, with a newline. 300 reviews (ids 1 … 309, some
    absent), 3,708 sentences, 329,023 characters, 77,608 SmolLM2 tokens.

    Parameters
    ----------
    path : path-like, optional
        The ground-truth file; default :func:`fetch_amazon_snippets` (may download once).

    Raises
    ------
    ValueError
        A malformed line (its number is named).
    """
    path = fetch_amazon_snippets() if path is None else Path(path)
    lines = Path(path).read_bytes().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    reviews: dict[str, list[tuple[int, str]]] = {}
    for number, line in enumerate(lines, start=1):
        fields = line.removesuffix("\r").split("\t")
        review, _, sentence = fields[0].partition("_")
        if len(fields) != 3 or not sentence.isdigit() or not fields[2].strip():
            raise ValueError(f"{path}, line {number}: expected '<review>_<sentence><TAB>rating<TAB>text', "
                             f"got {line[:80]!r}")
        reviews.setdefault(review, []).append((int(sentence), fields[2].strip()))
    # by sentence number: the file lists review 263's sentences 3-5 after its sentence 25
    return "\n".join(" ".join(text for _, text in sorted(sentences, key=lambda s: s[0]))
                     for sentences in reviews.values())


def amazon_token_windows(tokenize, window_tokens: int = 256, n_windows: int = 4, first_window: int = 0,
                         path: str | os.PathLike | None = None):
    """(n_windows, window_tokens) int64 token windows of :func:`amazon_review_text`.

    ``tokenize`` maps a str to token ids (e.g. ``SmolLM2.tokenize``); the windows are
    consecutive and disjoint (:func:`topkima.behavioral.models.perplexity.token_windows`), so
    windows used to fit anything (e.g. 4 … 7) never share a token with those evaluated (0 … 3).
    """
    from topkima.behavioral.models.perplexity import token_windows
    return token_windows(tokenize(amazon_review_text(path)), window_tokens, n_windows, first_window)
