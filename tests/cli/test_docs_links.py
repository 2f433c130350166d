"""The documentation stays true to the repository: README.md and docs/*.md.

Every relative link (and image) points to a file that exists, and every ``#anchor`` to a heading
of that file (GitHub's heading slugs); every ``topkima`` command line the documents show names a
real subcommand with real options (checked against the command line's own parser); every
``make`` target exists in the Makefile; the README stays short and no citation points to a
design file outside the repository.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from topkima.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`([^`]+)`")


def _split(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Prose lines (fenced blocks blanked) and the fenced blocks as (info string, lines)."""
    prose, blocks, block = [], [], None
    for line in text.splitlines():
        if FENCE.match(line):
            if block is None:
                block = (line.strip().strip("`~").strip(), [])
            else:
                blocks.append(block)
                block = None
            prose.append("")
        elif block is not None:
            block[1].append(line)
            prose.append("")
        else:
            prose.append(line)
    assert block is None, "unclosed code fence"
    return prose, blocks


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link in a heading keeps its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    prose, _ = _split(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for line in prose:
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = github_slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _links(path: Path) -> list[tuple[int, str]]:
    return _links_in(path.read_text(encoding="utf-8"))


def _links_in(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link and image outside code."""
    prose, _ = _split(text)
    found = []
    for number, line in enumerate(prose, 1):
        line = INLINE_CODE.sub("", line)   # `[x](y)` inside code is not a link
        found += [(number, m.group(1)) for m in LINK.finditer(line)]
    return found


def _doc_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_slug_follows_github():
    assert github_slug("2. The macro (Topkima-M)") == "2-the-macro-topkima-m"
    assert github_slug("The evaluation (`topkima attention`)") == "the-evaluation-topkima-attention"
    assert github_slug("4. Softmax-macro latency (the paper's equations 3–4)") == \
        "4-softmax-macro-latency-the-papers-equations-34"


def test_link_parser_sees_links_and_images_but_not_code():
    text = "see [a](docs/a.md#x) and ![f](fig.png) but not `[b](c.md)`\n```\n[d](e.md)\n```\n"
    assert [t for _, t in _links_in(text)] == ["docs/a.md#x", "fig.png"]


@pytest.mark.parametrize("doc", DOCS, ids=_doc_id)
def test_relative_links_resolve(doc: Path):
    broken = []
    for line, target in _links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):          # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"line {line}: {target} (no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest})")
            continue
        if not dest.is_relative_to(ROOT):
            broken.append(f"line {line}: {target} points outside the repository")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"line {line}: {target} (no heading #{anchor} in {dest.relative_to(ROOT)})")
    assert not broken, f"{_doc_id(doc)}: broken links:\n" + "\n".join(broken)


def test_every_doc_is_reachable_from_the_readme():
    linked = set()
    for doc in DOCS:
        for _, target in _links(doc):
            file_part = target.partition("#")[0]
            if file_part and not re.match(r"^[a-z][a-z0-9+.-]*:", file_part):
                linked.add((doc.parent / file_part).resolve())
    orphans = [_doc_id(d) for d in DOCS[1:] if d.resolve() not in linked]
    assert not orphans, f"documents no other document links to: {orphans}"


# --- commands -----------------------------------------------------------------------------------
def _command_lines(doc: Path) -> list[str]:
    """`topkima …` command lines: inline code spans and the lines of shell code blocks (a
    usage block's continuation lines, which start with whitespace and '[', join their command)."""
    prose, blocks = _split(doc.read_text(encoding="utf-8"))
    paragraphs = " ".join(line.strip() or "\n\n" for line in prose).split("\n\n")   # a span may wrap
    lines = [span.strip() for par in paragraphs for span in INLINE_CODE.findall(par)]
    for info, body in blocks:
        if info not in ("sh", "bash", "shell", "console", ""):
            continue
        for raw in body:
            if re.match(r"^\s+\[", raw) and lines and lines[-1].startswith("topkima "):
                lines[-1] += " " + raw.strip()
            else:
                lines.append(raw.split("#", 1)[0].strip().removeprefix("$ "))
    return [line for line in lines if line.startswith("topkima ")]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _check_command(line: str, parser, subs) -> list[str]:
    tokens = line.replace("[", " ").replace("]", " ").replace("|", " ").split()[1:]
    top_options = set(parser._option_string_actions)
    sub = None
    problems = []
    for tok in tokens:
        if tok.startswith("-"):
            flag = tok.split("=", 1)[0]
            if sub is None:
                if flag not in top_options:
                    problems.append(f"{line!r}: {flag} is not an option of topkima")
            elif flag not in subs[sub]._option_string_actions and flag not in top_options:
                problems.append(f"{line!r}: {flag} is not an option of topkima {sub}")
        elif sub is None and re.fullmatch(r"[a-z][a-z-]*", tok):
            if tok not in subs:
                problems.append(f"{line!r}: no subcommand {tok!r}")
                break
            sub = tok
    return problems


def test_documented_commands_exist_with_their_options():
    parser = build_parser()
    subs = _subparsers(parser)
    problems, seen = [], set()
    for doc in DOCS:
        for line in _command_lines(doc):
            problems += [f"{_doc_id(doc)}: {p}" for p in _check_command(line, parser, subs)]
            seen.update(t for t in line.split()[1:2] if t in subs)
    assert not problems, "\n".join(problems)
    assert seen == set(subs), f"subcommands the documents never show: {sorted(set(subs) - seen)}"


def test_command_check_catches_a_wrong_option_and_subcommand():
    parser = build_parser()
    subs = _subparsers(parser)
    assert _check_command("topkima calibrate --quick --workers 2", parser, subs) == []
    assert _check_command("topkima --threads 2 summary", parser, subs) == []
    assert _check_command("topkima calibrate --fast", parser, subs)
    assert _check_command("topkima calibrat --quick", parser, subs)


def test_documented_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z0-9_-]*):", makefile, flags=re.M))
    missing = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for target in re.findall(r"`make ([a-z][a-z0-9_-]*)", text) + re.findall(r"^make ([a-z][a-z0-9_-]*)", text, re.M):
            if target not in targets:
                missing.append(f"{_doc_id(doc)}: make {target}")
    assert not missing, f"make targets that do not exist: {missing}"


# --- the README's shape -------------------------------------------------------------------------
def test_readme_is_short():
    n = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert n <= 200, f"README.md has {n} lines; details belong in docs/"


@pytest.mark.parametrize("doc", DOCS, ids=_doc_id)
def test_no_citation_outside_the_repository(doc: Path):
    text = doc.read_text(encoding="utf-8")
    assert not re.search(r"SPEC §\s*\d", text), \
        f"{_doc_id(doc)} cites 'SPEC §n'; link the section of docs/spec.md instead"
    assert "shared/" not in text, f"{_doc_id(doc)} points to a file outside the repository"
