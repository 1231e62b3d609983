"""The README and docs/ stay navigable: every relative link resolves, every anchor names a
heading of its file, every `make` command names a target of the Makefile, and the README
stays a front door rather than the whole manual.

The Makefile is read when the tests run, so a target added or removed there is seen here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

PROJECT = Path(__file__).resolve().parents[2]
README = PROJECT / "README.md"
DOCS = PROJECT / "docs"
MAKEFILE = PROJECT / "Makefile"
README_MAX_BYTES = 12_500

FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
# [text](target) or ![alt](target), with an optional "title"; text may hold one level of [].
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^()\s]+)(?:\s+\"[^\"]*\")?\s*\)")
INLINE_LINK_TEXT = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^()]*\)")
HTML_TAG = re.compile(r"<[^>]+>")
MAKE_COMMAND = re.compile(r"(?<![\w.-])make[ \t]+([a-z][a-z-]*)(?![\w=-])")
MAKEFILE_TARGET = re.compile(r"^([a-z][a-z-]*):", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


@dataclass(frozen=True)
class Markdown:
    """A Markdown file split into what renders as prose and what renders as code."""

    path: Path
    prose: str  # the text outside fenced blocks (fenced lines blanked, so lines still count)
    blocks: tuple[str, ...]  # the fenced code blocks' contents

    def code(self) -> Iterator[str]:
        """Every piece of code: fenced blocks, then inline code spans."""
        yield from self.blocks
        for match in CODE_SPAN.finditer(self.prose):
            yield match.group(2)

    def prose_without_code(self) -> str:
        """The prose with each code span replaced by a word, so `[`x`](y)` stays a link."""
        return CODE_SPAN.sub("code", self.prose)

    def headings(self) -> list[str]:
        return [m.group(2) for line in self.prose.splitlines() if (m := HEADING.match(line))]

    def anchors(self) -> set[str]:
        """The ids GitHub gives the headings, duplicates numbered as GitHub numbers them."""
        seen: dict[str, int] = {}
        found: set[str] = set()
        for heading in self.headings():
            slug = github_slug(heading)
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
        return found

    def link_targets(self) -> list[str]:
        return [m.group(1).strip("<>") for m in LINK.finditer(self.prose_without_code())]


def github_slug(heading: str) -> str:
    """GitHub's heading id: the rendered text, lower-cased, punctuation other than `-` and
    `_` dropped, each space a `-`."""
    text = INLINE_LINK_TEXT.sub(r"\1", heading)
    text = HTML_TAG.sub("", text).strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in "-_ ")
    return text.replace(" ", "-")


def parse(path: Path) -> Markdown:
    prose: list[str] = []
    blocks: list[str] = []
    block: list[str] = []
    fence: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if fence is None:
            opening = FENCE.match(line)
            if opening:
                fence, block = opening.group(1), []
            prose.append("" if opening else line)
            continue
        closing = FENCE.match(line)
        if (
            closing
            and closing.group(1)[0] == fence[0]
            and len(closing.group(1)) >= len(fence)
            and not line[closing.end() :].strip()
        ):
            fence = None
            blocks.append("\n".join(block))
        else:
            block.append(line)
        prose.append("")
    if fence is not None:  # an unclosed fence runs to the end of the file, as GitHub renders it
        blocks.append("\n".join(block))
    return Markdown(path, "\n".join(prose), tuple(blocks))


@cache
def parsed(path: Path) -> Markdown:
    return parse(path)


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def name(path: Path) -> str:
    return path.relative_to(PROJECT).as_posix()


def split_target(source: Path, target: str) -> tuple[Path, str | None]:
    """The file a relative link points at, and its anchor (None without a `#`)."""
    location, hash_sign, anchor = target.partition("#")
    location = unquote(location)
    if not location:
        resolved = source
    elif location.startswith("/"):  # GitHub resolves a leading / from the repository root
        resolved = PROJECT / location.lstrip("/")
    else:
        resolved = source.parent / location
    return resolved.resolve(), (unquote(anchor) if hash_sign else None)


def relative_targets(path: Path) -> list[str]:
    return [t for t in parsed(path).link_targets() if not t.lower().startswith(EXTERNAL)]


def makefile_targets() -> set[str]:
    return set(MAKEFILE_TARGET.findall(MAKEFILE.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", markdown_files(), ids=name)
def test_every_relative_link_in_docs_resolves(path: Path) -> None:
    missing = [
        target for target in relative_targets(path) if not split_target(path, target)[0].exists()
    ]
    assert not missing, f"{name(path)} links to files that do not exist: {missing}"


@pytest.mark.parametrize("path", markdown_files(), ids=name)
def test_every_anchor_in_docs_names_a_heading_of_its_file(path: Path) -> None:
    broken: list[str] = []
    for target in relative_targets(path):
        resolved, anchor = split_target(path, target)
        if anchor is None or resolved.suffix != ".md" or not resolved.is_file():
            continue  # no anchor, not Markdown, or missing (the link test reports that)
        if anchor not in parsed(resolved).anchors():
            broken.append(target)
    assert not broken, f"{name(path)} links to headings that do not exist: {broken}"


@pytest.mark.parametrize("path", markdown_files(), ids=name)
def test_every_make_command_in_docs_names_a_makefile_target(path: Path) -> None:
    targets = makefile_targets()
    mentioned = {m.group(1) for code in parsed(path).code() for m in MAKE_COMMAND.finditer(code)}
    unknown = sorted(mentioned - targets)
    assert not unknown, (
        f"{name(path)} tells readers to run make targets the Makefile lacks: {unknown} "
        f"(the Makefile has: {sorted(targets)})"
    )


def test_readme_stays_a_front_door_of_at_most_12500_bytes() -> None:
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, (
        f"README.md is {size} bytes, over {README_MAX_BYTES}: move detail into docs/ and link it"
    )


def test_the_checks_see_the_readmes_links_commands_and_the_makefiles_targets() -> None:
    """Guards against the checks above passing vacuously because a pattern stopped matching."""
    readme = parsed(README)
    assert any(t.startswith("docs/") for t in relative_targets(README))
    assert any(MAKE_COMMAND.search(code) for code in readme.code())
    assert {"run", "test"} <= makefile_targets()


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        (
            "Five minutes: from `git clone` to an uploaded file",
            "five-minutes-from-git-clone-to-an-uploaded-file",
        ),
        ("`GET /uploads/{uuid}`: did the upload happen?", "get-uploadsuuid-did-the-upload-happen"),
        (
            "Multipart uploads: `/s3/...`, Uppy Companion's routes",
            "multipart-uploads-s3-uppy-companions-routes",
        ),
        ("`AUTH_MODE` is required", "auth_mode-is-required"),
        ("A 6 GiB upload, killed and resumed", "a-6-gib-upload-killed-and-resumed"),
        ("See [the API](api.md) here", "see-the-api-here"),
    ],
)
def test_heading_ids_follow_githubs_rules(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_duplicate_headings_are_numbered_and_fenced_lines_are_not_headings(
    tmp_path: Path,
) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Setup\n\n```sh\n# not a heading\nmake run\n```\n\n## Setup\n\n"
        "Run `make test`, see [setup](#setup).\n",
        encoding="utf-8",
    )
    doc = parse(page)
    assert doc.anchors() == {"title", "setup", "setup-1"}
    assert list(doc.code()) == ["# not a heading\nmake run", "make test"]
    assert doc.link_targets() == ["#setup"]
