"""The command lines of the READMEs: which lines count as commands, and a sandbox to run them in.

Extraction rule: inside fenced code blocks (no language, ``bash``, ``sh``, ``shell``, ``console``)
and indented code blocks (4 spaces after a blank line), a logical line (physical lines joined at a
trailing ``\\``) is a command when its first word, after optional ``VAR=value`` assignments, is
``python``, ``python3``, ``.venv/bin/python``, ``make`` or ``for``. ``#`` starts a comment. A
``for VAR in A B C; do`` ... ``done`` loop becomes one command per value. Every other line of a
code block (file trees, YAML, output) is not a command. A command that a shell could not split
(an unclosed quote) is an error, not a skipped line.
"""

import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

PYTHONS = ("python", "python3", ".venv/bin/python")
COMMAND_WORDS = PYTHONS + ("make", "for")
SHELL_FENCES = ("", "bash", "sh", "shell", "console")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_FOR_LOOP = re.compile(r"^for\s+(\w+)\s+in\s+(.+?);\s*do$")


@dataclass
class Command:
    """One README command line.

    ``argv`` is the line split as a POSIX shell would (comments removed, loop variable
    substituted); ``env`` holds leading ``VAR=value`` assignments.
    """

    readme: str
    line: int
    text: str
    argv: list
    env: dict = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.readme}:{self.line}"


def code_blocks(markdown: str):
    """Yields ``(first_line_number, lines)`` for every shell-like code block (1-based lines)."""
    lines = markdown.splitlines()
    index = 0
    previous_blank = True
    while index < len(lines):
        line = lines[index]
        fence = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", line)
        if fence:
            marker, language = fence.group(2), fence.group(3).lower()
            end = index + 1
            while end < len(lines) and not lines[end].strip().startswith(marker):
                end += 1
            if language in SHELL_FENCES:
                yield index + 2, lines[index + 1 : end]
            index, previous_blank = end + 1, False
            continue
        if previous_blank and line.startswith("    ") and line.strip():
            end = index
            while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
                end += 1
            yield index + 1, [text[4:] for text in lines[index:end]]
            index, previous_blank = end, True
            continue
        previous_blank = not line.strip()
        index += 1


def _logical_lines(first_line: int, lines):
    """Joins continuation lines; yields ``(line_number, text)``."""
    pending, start = "", None
    for offset, raw in enumerate(lines):
        if start is None:
            start = first_line + offset
        stripped = raw.strip()
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = (pending + stripped).strip()
        pending = ""
        if text:
            yield start, text
        start = None
    if pending.strip():
        yield start, pending.strip()


def _split(text: str):
    """``(env, argv)`` of a command line, or None when it is not a command.

    Raises ValueError for a command that a shell could not split (an unclosed quote).
    """
    plain = [w for w in text.split() if not _ENV_ASSIGNMENT.match(w)]
    if not plain or plain[0] not in COMMAND_WORDS:
        return None  # prose, file trees, output: apostrophes there are not quotes
    words = shlex.split(text, comments=True)
    env = {}
    while words and _ENV_ASSIGNMENT.match(words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    if not words or words[0] not in COMMAND_WORDS:
        return None
    return env, words


def extract_commands(markdown: str, readme: str):
    """Every command of a README, in document order (loops expanded).

    Raises ValueError naming the README line of a command that cannot be split.
    """
    try:
        return _extract(markdown, readme)
    except ValueError as error:
        raise ValueError(f"{readme}: {error}") from error


def _split_at(line_number: int, text: str):
    try:
        return _split(text)
    except ValueError as error:
        raise ValueError(f"line {line_number}: cannot split {text!r} ({error})") from error


def _extract(markdown: str, readme: str):
    commands = []
    for first_line, lines in code_blocks(markdown):
        logical = list(_logical_lines(first_line, lines))
        index = 0
        while index < len(logical):
            line_number, text = logical[index]
            index += 1
            loop = _FOR_LOOP.match(text)
            if loop:
                variable, values = loop.group(1), shlex.split(loop.group(2))
                body = []
                while index < len(logical) and logical[index][1] != "done":
                    body.append(logical[index])
                    index += 1
                index += 1  # "done"
                for value in values:
                    for body_line, body_text in body:
                        expanded = re.sub(rf"\$\{{{variable}\}}|\${variable}\b", value, body_text)
                        split = _split_at(body_line, expanded)
                        if split:
                            commands.append(
                                Command(readme, body_line, expanded, split[1], split[0])
                            )
                continue
            split = _split_at(line_number, text)
            if split:
                commands.append(Command(readme, line_number, text, split[1], split[0]))
    return commands


def make_recipe(makefile: Path, target: str):
    """The recipe lines of a Makefile target (tab-indented lines after ``target:``), or None."""
    lines = makefile.read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(rf"^{re.escape(target)}\s*:(?!=)", line):
            recipe = []
            for body in lines[index + 1 :]:
                if not body.startswith("\t"):
                    break
                recipe.append(body.strip())
            return recipe
    return None


_TMP_PREFIX = re.compile(r"(?<![\w./-])/tmp/")


class Sandbox:
    """A folder that stands in for the repository root while README commands run.

    Every top-level entry of the repository is symlinked into it except ``output`` (so that
    relative output paths land in the sandbox) and ``tools``, which is copied: scripts that
    locate the repository from their own file (``tools/run_demo.py``) then write into the
    sandbox too. ``datasets`` stays a link, so toy data generated on first use is cached in the
    repository's ``datasets/toy`` as ``make demo`` does. Absolute ``/tmp/...`` paths of a README
    map to ``<sandbox>/tmp/...``, the same way in every command, so a command reading what
    another wrote still finds it only where the README says it is.
    """

    def __init__(self, repo: Path, root: Path):
        self.repo, self.root = repo, root
        root.mkdir(parents=True, exist_ok=True)
        for entry in repo.iterdir():
            if entry.name in ("output", ".git", "tools") or entry.name.startswith(".pytest"):
                continue
            (root / entry.name).symlink_to(entry)
        shutil.copytree(
            repo / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__")
        )
        (root / "tmp").mkdir()

    def map_argv(self, argv):
        """The argv to execute: this interpreter for ``python``, README ``/tmp/`` in the sandbox."""
        mapped = [_TMP_PREFIX.sub(str(self.root / "tmp") + "/", word) for word in argv]
        if mapped and mapped[0] in PYTHONS:
            mapped[0] = sys.executable
        return mapped

    def path(self, readme_path: str) -> Path:
        """Where a path written in a README (relative to the repository root) is in the sandbox."""
        mapped = _TMP_PREFIX.sub(str(self.root / "tmp") + "/", readme_path)
        return Path(mapped) if Path(mapped).is_absolute() else self.root / mapped

    def files_under(self, relative: str):
        """``{path: mtime_ns}`` of the files below a sandbox folder (empty when it is absent)."""
        base = self.root / relative
        if not base.is_dir():
            return {}
        return {p: p.stat().st_mtime_ns for p in base.rglob("*") if p.is_file()}
