"""Every `suscli ...` command line the README and docs/*.md show, parsed by the real command line without running it:
a renamed or removed option, a value no choice takes (`--format yaml`), an option given to the wrong command or a
command that does not exist would otherwise go unnoticed until a user copied the line. The same for every
`python benchmarks/...` line, parsed by its script's own argument parser: the docs quote them as how each figure was
measured."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer

from suscli.cli import _PARSE_ERROR, app
from tests.conftest import invoke

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A fenced block in one of these languages holds no shell lines (a Python block's "suscli" is the package).
NOT_SHELL = {"python", "py", "xml", "json", "html", "toml"}
# What stands for a value the reader fills in: CHECKPOINT, N, <CIFAR images>, runs/..., $POOL, $(...).
PLACEHOLDER = re.compile(r"\.\.\.|^[A-Z][A-Z0-9_]*$|^<.*>$|\$")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
CONTROL = {"|", "||", "&&", ";", "&", "|&"}
REDIRECT = re.compile(r"^(?:[<>]+&?|&>>?)$")
STARTS_COMMAND = re.compile(r"\s*(?:\$\s+)?(?:[A-Za-z_]\w*=\S*\s+)*(?:suscli|python[0-9.]*\s+-m\s+suscli|torchrun)\s")
SUBCOMMAND_MENTION = re.compile(r"\bsuscli (?:score|rank|track|demo)\b")
BENCHMARK = re.compile(r"benchmarks/[\w/]+\.py")


def fragments(text: str) -> Iterator[tuple[int, str, bool]]:
    """(line, shell text, whether it is an inline span) for each line of a code block, its continuations joined, and
    each inline code span: fenced blocks, indented blocks after a blank line, and `spans` in the prose, including
    those that wrap to the next line."""
    lines = text.split("\n")
    fence: str | None = None
    language = ""
    prose: list[tuple[int, str]] = []
    code: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        opening = re.match(r"(`{3,}|~{3,})\s*(\w*)", stripped)
        if fence is None and opening:
            fence, language = opening.group(1), opening.group(2).lower()
            yield from joined(code)
            code = []
        elif fence is not None:
            if stripped.startswith(fence):
                fence = None
                yield from joined(code)
                code = []
            elif language not in NOT_SHELL:
                code.append((number, as_shell(line)))
        elif line.startswith("    ") and (code or not lines[number - 2].strip() or number == 1):
            code.append((number, as_shell(line)))
        else:
            yield from joined(code)
            code = []
            prose.append((number, line))
    yield from joined(code)
    yield from spans(prose)


def as_shell(line: str) -> str:
    """The shell a line holds: a YAML list item's or `run:` or `script:` value (`- run: suscli ...`, `  - suscli ...`),
    its indentation kept so that a more indented line still reads as its continuation; a line that starts with another
    `key:` is a YAML setting or a program's output (`error: ...`, `verdict: ...`), no shell."""
    indent, rest = re.match(r"(\s*)(?:-\s+)?(?:(?:run|script):\s+)?(.*)", line).groups()  # matches any line
    return "" if re.match(r"[\w-]+:(\s|$)", rest) else indent + rest


def joined(code: list[tuple[int, str]]) -> Iterator[tuple[int, str, bool]]:
    """Code lines with their continuations: a trailing backslash, or (as in a YAML plain scalar) a more indented line
    that starts with an option."""
    current: tuple[int, str, int] | None = None  # first line, text so far, its indentation
    for number, line in code:
        indent = len(line) - len(line.lstrip())
        if current is not None and (current[1].endswith("\\") or (indent > current[2] and line.lstrip().startswith("-"))):
            current = (current[0], current[1].removesuffix("\\") + " " + line.strip(), current[2])
            continue
        if current is not None:
            yield current[0], current[1], False
        current = (number, line.rstrip(), indent)
    if current is not None:
        yield current[0], current[1], False


def spans(prose: list[tuple[int, str]]) -> Iterator[tuple[int, str, bool]]:
    """The shell of each inline code span of the prose lines (code_spans)."""
    for number, span in code_spans(prose):
        yield number, as_shell(span.replace("\n", " ").strip()), True


def code_spans(prose: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """Inline code spans of the prose lines, by the line each starts on; a span may wrap within its paragraph."""
    paragraph: list[tuple[int, str]] = []
    for number, line in [*prose, (0, "")]:
        if line.strip() and (not paragraph or paragraph[-1][0] == number - 1):
            paragraph.append((number, line))
            continue
        if paragraph:
            text = "\n".join(part for _, part in paragraph)
            for match in re.finditer(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", text, re.DOTALL):
                yield paragraph[0][0] + text.count("\n", 0, match.start()), match.group(2)
        paragraph = [(number, line)] if line.strip() else []


def commands(shell: str, program: Callable[[list[str]], list[str] | None] | None = None) -> Iterator[list[str]]:
    """The words after `suscli` (or `python -m suscli`, `torchrun ... -m suscli`) of each simple command of a shell
    line, with comments, redirections, pipes, `&&`, `;`, leading variable assignments and `$(...)` taken apart;
    `program` picks another program's words instead (`benchmark`)."""
    program = program or after_suscli
    shell = strip_comment(shell)
    for inner in re.findall(r"\$\(([^()]*)\)", shell):
        yield from commands(inner, program)
    shell = re.sub(r"\$\([^()]*\)", " $SUBSTITUTED ", shell)
    shell = re.sub(r"<[^\s<>][^<>]*>", "PLACEHOLDER", shell)  # <CIFAR images>, not `< in > out`
    shell = re.sub(r"(^|\s)[0-9](?=>)", r"\1", shell)  # 2>&1: the descriptor goes with its redirection
    lexer = shlex.shlex(shell, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    words: list[str] = []
    for token in [*lexer, ";"]:
        if token in CONTROL:
            rest = program(words)
            if rest is not None:
                yield rest
            words = []
        else:
            words.append(token)


def strip_comment(shell: str) -> str:
    """The line up to an unquoted `#` that starts a word."""
    quote = ""
    for at, char in enumerate(shell):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (at == 0 or shell[at - 1].isspace()):
            return shell[:at]
    return shell


def after_suscli(words: list[str]) -> list[str] | None:
    """The arguments a simple command gives suscli, or None where it runs something else."""
    words = program_words(words)
    if not words:
        return None
    if words[0] == "suscli":
        return words[1:]
    if re.fullmatch(r"(?:.*/)?python[0-9.]*|torchrun", words[0]):
        for at in range(1, len(words) - 1):
            if words[at] == "-m" and words[at + 1] == "suscli":
                return words[at + 2 :]
        if words[0] == "torchrun" and "suscli" in words:
            return words[words.index("suscli") + 1 :]
    return None


def benchmark(words: list[str]) -> list[str] | None:
    """A simple command's benchmark script (`benchmarks/....py`) and its arguments, or None where it runs another."""
    words = program_words(words)
    if len(words) > 1 and re.fullmatch(r"(?:.*/)?python[0-9.]*", words[0]) and BENCHMARK.fullmatch(words[1]):
        return words[1:]
    return None


def program_words(words: list[str]) -> list[str]:
    """A simple command's words from its program on: redirections, variable assignments and `time`, `env`, `nice -n N`
    before it left out."""
    words = drop_redirections(words)
    while words and (ASSIGNMENT.match(words[0]) or words[0] in ("$", "time", "env", "nice")):
        words = words[3:] if words[:2] == ["nice", "-n"] else words[1:]
    return words


def drop_redirections(words: list[str]) -> list[str]:
    """The words less each redirection operator and its target."""
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif REDIRECT.match(word):
            skip = True
        else:
            kept.append(word)
    return kept


def doc_commands() -> list[tuple[str, str, list[str] | None, bool]]:
    """(doc:line, the line as shown, the arguments after suscli, whether it is an inline span) for every suscli
    command the docs show; None for the arguments of a line whose quotes do not close. A span that starts with a
    command's name (`score -f junit`, `track --log run.jsonl`) names a suscli command without the program."""
    names = tuple(typer.main.get_command(app).commands)
    found: list[tuple[str, str, list[str] | None, bool]] = []
    for doc in DOCS:
        for number, shell, span in fragments(doc.read_text(encoding="utf-8")):
            where = f"{doc.relative_to(ROOT)}:{number}"
            if span and shell.partition(" ")[0] in names and " " in shell:
                shell = f"suscli {shell}"
            try:
                found += [(where, shell, args, span) for args in commands(shell) if args]
            except ValueError:  # a quote that does not close: a message or prose, unless it starts as a command does
                if STARTS_COMMAND.match(shell):
                    found.append((where, shell, None, span))
    return found


def problem(args: list[str], span: bool = False) -> str | None:
    """What the real command line refuses in `suscli ARGS`, parsed as it parses them (nothing runs), or None. A
    placeholder is accepted wherever a value goes; what only a run checks (a missing --data, a file) is not checked.
    An inline span that ends with an option names the option (`suscli track --log` reads ...): it needs no value."""
    root = typer.main.get_command(app)
    root_ctx = root.context_class(root, info_name="suscli")
    try:
        opts, rest, _ = root.make_parser(root_ctx).parse_args(list(args))
        if opts.get("help") or not rest:
            return None
        command = root.get_command(root_ctx, rest[0])
        if command is None:
            return f"no such command {rest[0]!r} (commands: {', '.join(sorted(root.commands))})"
        ctx = command.context_class(command, info_name=rest[0], parent=root_ctx)
        takes_value = {opt for p in command.get_params(ctx) if not getattr(p, "is_flag", True) for opt in p.opts}
        args = [a for at, a in enumerate(rest[1:]) if a != "..." or rest[at] in takes_value]  # elided arguments
        if span and args[-1:] and args[-1] in takes_value:
            args.append("VALUE")
        opts, extra, _ = command.make_parser(ctx).parse_args(args)
        if opts.get("help"):
            return None
        for param in command.get_params(ctx):
            value = opts.get(param.name)
            values = value if isinstance(value, (list, tuple)) else [value]
            if values and all(isinstance(v, str) and not PLACEHOLDER.search(v) for v in values):
                param.process_value(ctx, value)
    except _PARSE_ERROR as e:
        return e.format_message()
    extra = [word for word in extra if not PLACEHOLDER.search(word)]
    return f"unexpected extra argument(s): {' '.join(extra)}" if extra else None


COMMANDS = doc_commands()


def test_every_command_line_in_the_docs_parses() -> None:
    """Each `suscli ...` line of README.md and docs/*.md names a command that exists, options it takes, each with its
    value, and a value each choice accepts."""
    refused = [
        f"{where}: {shell}\n    {why}"
        for where, shell, args, span in COMMANDS
        if (why := "its quotes do not close" if args is None else problem(args, span))
    ]
    assert not refused, "\n".join(refused)


# Parses each [script, *args] of its stdin's JSON list with the script's own parser, in one process (each script is run
# as __main__, its parse_args stopped once it has parsed), and prints what each parser refused, or null. A placeholder
# (N, POOL, <zoo>) is taken as any option's value, whatever its type or choices.
PARSE_SCRIPTS = r"""
import argparse, contextlib, io, json, re, runpy, sys

PLACEHOLDER = re.compile(sys.argv[1])
class Parsed(Exception):
    pass
parse, get_value, check_value = (argparse.ArgumentParser.parse_args, argparse.ArgumentParser._get_value,
                                 argparse.ArgumentParser._check_value)
def parse_only(self, args=None, namespace=None):
    parse(self, args, namespace)
    raise Parsed
argparse.ArgumentParser.parse_args = parse_only
argparse.ArgumentParser._get_value = lambda self, action, s: s if PLACEHOLDER.search(s) else get_value(self, action, s)
argparse.ArgumentParser._check_value = lambda self, action, v: (
    None if isinstance(v, str) and PLACEHOLDER.search(v) else check_value(self, action, v))
refused = []
for script, *args in json.load(sys.stdin):
    sys.argv, said = [script, *args], io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(script, run_name="__main__")
        refused.append("it ran past its argument parsing")
    except Parsed:
        refused.append(None)
    except SystemExit as e:
        refused.append(None if e.code == 0 else said.getvalue().strip().splitlines()[-1])
print(json.dumps(refused))
"""


def benchmark_lines() -> list[tuple[str, str, list[str]]]:
    """(doc:line, the line as shown, [script, *args]) for every benchmark script the docs run."""
    found = []
    for doc in DOCS:
        for number, shell, _ in fragments(doc.read_text(encoding="utf-8")):
            if BENCHMARK.search(shell):
                found += [(f"{doc.relative_to(ROOT)}:{number}", shell, args) for args in commands(shell, benchmark)]
    return found


def refusals(lines: list[list[str]]) -> list[str | None]:
    """What each script's parser says of its arguments (None: parsed), from one process run in the repository root."""
    out = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPTS, PLACEHOLDER.pattern],
        input=json.dumps(lines),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    return json.loads(out.stdout.splitlines()[-1])


def test_every_benchmark_line_in_the_docs_parses() -> None:
    """Each `python benchmarks/....py ...` line of README.md and docs/*.md names a script that exists and options its
    parser takes: the docs give them as how their figures were measured."""
    lines = benchmark_lines()
    assert len(lines) >= 100 and {args[0] for _, _, args in lines} >= {"benchmarks/perf.py", "benchmarks/zoo/train_zoo.py"}
    missing = [f"{where}: {shell}" for where, shell, args in lines if not (ROOT / args[0]).is_file()]
    assert not missing, "no such script:\n" + "\n".join(missing)
    refused = [f"{where}: {shell}\n    {why}" for (where, shell, _), why in zip(lines, refusals([args for _, _, args in lines])) if why]
    assert not refused, "\n".join(refused)


def test_the_benchmark_check_refuses_what_a_script_refuses() -> None:
    """The same check on lines its scripts refuse: an unknown option, a value its type refuses, a missing value."""
    lines = [
        ["benchmarks/perf.py", "--no-such-option"],
        ["benchmarks/perf.py", "--models", "two"],
        ["benchmarks/evaluate_noise.py", "--zoo"],
        ["benchmarks/perf.py", "--models", "N"],
    ]
    said = refusals(lines)
    assert [why is not None for why in said] == [True, True, True, False], said
    assert "unrecognized arguments: --no-such-option" in said[0] and "invalid int value: 'two'" in said[1], said
    assert "expected one argument" in said[2], said


def test_the_extraction_finds_the_commands_the_docs_mention() -> None:
    """The check above is only as good as what it reads: every doc that names suscli's commands yields command lines,
    about as many as it mentions `suscli score|rank|track|demo` (the rest of those mentions are prose or quoted messages)."""
    checked = Counter(where.rsplit(":", 1)[0] for where, _, _, _ in COMMANDS)
    for doc in DOCS:
        name = str(doc.relative_to(ROOT))
        mentions = len(SUBCOMMAND_MENTION.findall(doc.read_text(encoding="utf-8")))
        assert checked[name] >= mentions / 2, (name, checked[name], mentions)
    assert len(COMMANDS) >= 150 and min(checked[d] for d in ("README.md", "docs/rank.md", "docs/score.md", "docs/track.md")) >= 5


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("suscli rank m --format yaml", "'yaml' is not one of"),
        ("suscli rank m --data", "requires an argument"),
        ("suscli score m --fail-on memorized", "No such option: --fail-on"),
        ("suscli audit m", "no such command 'audit'"),
        ("suscli score a b", "unexpected extra argument(s): b"),
        ("suscli score m --batches two", "'--batches'"),
    ],
)
def test_the_check_refuses_what_the_command_line_refuses(line: str, says: str) -> None:
    (args,) = commands(line)
    why = problem(args)
    assert why is not None and says in why, why
    assert invoke(*args).exit_code == 2


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        (
            "CI=true suscli rank POOL --data <CIFAR images> -f json > r.json  # a comment",
            [["rank", "POOL", "--data", "PLACEHOLDER", "-f", "json"]],
        ),
        ("pip install -e . && python -m suscli score m.pt --data d | tee out", [["score", "m.pt", "--data", "d"]]),
        ("torchrun --nproc-per-node 2 -m suscli rank models/ ... 2>&1", [["rank", "models/", "..."]]),
        ("echo $(suscli demo --small); suscli track run/", [["demo", "--small"], ["track", "run/"]]),
        ("python benchmarks/perf.py --model-batch 8", []),
    ],
)
def test_shell_lines_are_taken_apart(shell: str, expected: list[list[str]]) -> None:
    assert list(commands(shell)) == expected


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        ("OMP_NUM_THREADS=1 nice -n 19 python benchmarks/perf.py --models 2  # idle", [["benchmarks/perf.py", "--models", "2"]]),
        ("python3 benchmarks/zoo/train_zoo.py --out <zoo> && suscli rank x", [["benchmarks/zoo/train_zoo.py", "--out", "PLACEHOLDER"]]),
        ("python -m suscli rank x; bash benchmarks/gpu_check.sh", []),
    ],
)
def test_benchmark_lines_are_taken_apart(shell: str, expected: list[list[str]]) -> None:
    assert list(commands(shell, benchmark)) == expected


def test_continued_lines_and_wrapped_spans_are_read_whole() -> None:
    text = "Run\n`suscli rank pool\n--rule regions` here.\n\n    suscli score m \\\n        --format csv\n"
    assert [(line, list(commands(shell))) for line, shell, _ in fragments(text) if list(commands(shell))] == [
        (5, [["score", "m", "--format", "csv"]]),
        (2, [["rank", "pool", "--rule", "regions"]]),
    ]


@pytest.mark.parametrize(
    ("args", "span"),
    [(["score", "CHECKPOINT", "--batches", "N", "--format", "..."], False), (["track", "--log"], True), (["rank", "...", "POOL"], False)],
)
def test_placeholders_and_named_options_are_accepted(args: list[str], span: bool) -> None:
    """A placeholder stands for any value, an elision for left-out arguments, and a span that ends with an option names
    it; a code line that ends with one still lacks its value."""
    assert problem(args, span) is None
    assert span is False or problem(args) == "Option '--log' requires an argument."


@pytest.mark.parametrize("command", [[], *([name] for name in typer.main.get_command(app).commands)])
def test_help_runs_for_every_command(command: list[str]) -> None:
    res = invoke(*command, "--help")
    assert res.exit_code == 0 and "Usage" in res.stdout, res.output


# The pages that document each command's options: its own page, and those it says apply to it (rank.md: "all of
# score.md applies, options included"; track.md: its other options "are those of rank"); the options before the
# command (`suscli --version`) are ci.md's.
OPTION_PAGES = {
    "": ["docs/ci.md"],
    "score": ["docs/score.md"],
    "rank": ["docs/rank.md", "docs/score.md"],
    "track": ["docs/track.md", "docs/rank.md", "docs/score.md"],
    "demo": ["README.md"],
}


def test_every_option_of_every_command_is_named_on_its_pages() -> None:
    """An option added to a command, or renamed, is found in no doc unless its page says what it does: demo's
    --out and --small, score's --cache-dir and --no-cache, rank's --model-batch were in `--help` alone."""
    root = typer.main.get_command(app)
    assert set(OPTION_PAGES) == {"", *root.commands}
    missing = []
    for name, pages in OPTION_PAGES.items():
        text = "\n".join((ROOT / page).read_text(encoding="utf-8") for page in pages)
        command = root.commands[name] if name else root
        named = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", text))
        missing += [
            f"suscli {name} {opt}: {', '.join(pages)}"
            for p in command.params
            for opt in p.opts
            if opt.startswith("--") and opt not in named
        ]
    assert not missing, "options no page names:\n" + "\n".join(missing)
