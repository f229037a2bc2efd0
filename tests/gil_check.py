"""Checks that every GIL acquire in the C sources is paired with its release, on every path of its function.

Usage: python tests/gil_check.py [FILE.c ...]   (default: csrc/*.c); exit status 1 with one line per problem.

The pairs, by what they do to the GIL:
  held:     PyGILState_Ensure ... PyGILState_Release, PyEval_AcquireThread ... PyEval_ReleaseThread,
            PyEval_RestoreThread ... PyEval_SaveThread (a thread that keeps its thread state)
  released: Py_BEGIN_ALLOW_THREADS ... Py_END_ALLOW_THREADS (with Py_BLOCK_THREADS ... Py_UNBLOCK_THREADS
            inside, the documented way to leave the block early), PyEval_SaveThread ... PyEval_RestoreThread
Every path through a function (branches, loops, switch, goto, return, break, continue) must close what it
opened, with the matching kind, in order: no return or break leaves a pair open, one loop iteration closes
what it opens, and every path to a label (gotos and the code above it) arrives with the same pairs open.
Both branches of every #if/#else are checked (the first and the last of each group), so the Windows code
is checked on Linux too.

A function that deliberately ends in another state says so in a comment before its body:
  /* gil: returns-held */       it may return with the GIL held: with one PyGILState_Ensure open, or with
                                the delivery session of a returns-held function it called left open
  /* gil: releases */           it may release a GIL it did not take: one PyGILState_Release without an
                                Ensure, and it ends the session of a returns-held function
  /* gil: keeps-thread-state */ it returns having made its thread's state: Ensure then SaveThread, open
  /* gil: no-session (why) */   it calls returns-held functions in a way that opens no session; the reason
                                is part of the annotation
A call of a returns-held function (or its name passed as a function pointer) opens a session; a call of a
releases function ends it. A function that is not itself returns-held must end every session it opens
before it returns, so each such annotation is checked at every caller. Annotations that no longer match the
code (a returns-held function that never returns held, say) are problems too.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ANNOTATIONS = ("returns-held", "releases", "keeps-thread-state", "no-session")
# The function-like primitives, and the statement-like macros (no parentheses, no semicolon needed).
PRIMITIVES = {
    "PyGILState_Ensure",
    "PyGILState_Release",
    "PyEval_AcquireThread",
    "PyEval_ReleaseThread",
    "PyEval_SaveThread",
    "PyEval_RestoreThread",
}
RETURN_MACROS = {"Py_RETURN_NONE", "Py_RETURN_TRUE", "Py_RETURN_FALSE", "Py_RETURN_NOTIMPLEMENTED"}
MACROS = {"Py_BEGIN_ALLOW_THREADS", "Py_END_ALLOW_THREADS", "Py_BLOCK_THREADS", "Py_UNBLOCK_THREADS"}
# Open pairs on the stack: E Ensure, A AcquireThread, R RestoreThread (held), S SaveThread, B
# Py_BEGIN_ALLOW_THREADS (released), K Py_BLOCK_THREADS inside a B (held again until Py_UNBLOCK_THREADS).
NAMES = {"E": "PyGILState_Ensure", "A": "PyEval_AcquireThread", "R": "PyEval_RestoreThread"}
NAMES |= {"S": "PyEval_SaveThread", "B": "Py_BEGIN_ALLOW_THREADS", "K": "Py_BLOCK_THREADS"}

TOKEN = re.compile(
    r"(?P<comment>/\*.*?\*/|//[^\n]*)|(?P<string>\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*')"
    r"|(?P<ident>[A-Za-z_]\w*)|(?P<number>\.?\d[\w.]*)|(?P<punct>->|&&|\|\||[^\s\w])",
    re.DOTALL,
)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    function: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.function}: {self.message}"


@dataclass(frozen=True)
class Tok:
    text: str
    line: int
    comment: bool = False


# ---------------------------------------------------------------- reading the source


def configurations(text: str) -> Iterator[str]:
    """The source twice: with the first branch of every #if group, and with the last one. Directive lines
    (and #define continuations) become blank, so line numbers stay."""
    lines = text.split("\n")
    for keep_last in (False, True):
        out: list[str] = []
        stack: list[list[int]] = []  # per open group: [this branch's index, the group's branch count]
        continued = False
        branches = _branch_counts(lines)
        group = 0
        for line in lines:
            directive = continued or line.lstrip().startswith("#")
            continued = directive and line.rstrip().endswith("\\")
            word = line.lstrip()[1:].split(maxsplit=1)[0] if line.lstrip().startswith("#") else ""
            if word.startswith("if"):
                count = branches[group]
                group += 1
                stack.append([0, count])
            elif word in ("elif", "else") and stack:
                stack[-1][0] += 1
            elif word == "endif" and stack:
                stack.pop()
            active = all((b == n - 1) if keep_last else (b == 0) for b, n in stack)
            out.append("" if directive or not active else line)
        yield "\n".join(out)


def _branch_counts(lines: list[str]) -> list[int]:
    """For each #if group in order, how many branches it has."""
    counts: list[int] = []
    open_groups: list[int] = []
    for line in lines:
        stripped = line.lstrip()
        if not stripped.startswith("#"):
            continue
        word = stripped[1:].split(maxsplit=1)[0] if stripped[1:].strip() else ""
        if word.startswith("if"):
            open_groups.append(len(counts))
            counts.append(1)
        elif word in ("elif", "else") and open_groups:
            counts[open_groups[-1]] += 1
        elif word == "endif" and open_groups:
            open_groups.pop()
    return counts


def tokenize(text: str) -> list[Tok]:
    tokens, line, pos = [], 1, 0
    for match in TOKEN.finditer(text):
        line += text.count("\n", pos, match.start())
        pos = match.start()
        kind = match.lastgroup
        if kind == "comment":
            tokens.append(Tok(match.group(), line, comment=True))
        elif kind != "string":
            tokens.append(Tok(match.group(), line))
    return tokens


@dataclass
class Function:
    name: str
    line: int  # of its name
    body: list[Tok]  # between the braces
    annotations: dict[str, str]  # keyword -> the rest of the comment
    end: int  # the line of its closing brace


def functions(tokens: list[Tok], file: str, problems: list[Problem]) -> Iterator[Function]:
    """The function definitions at file level, with the gil: annotations in comments before each body."""
    depth, i, start = 0, 0, 0
    code = tokens
    while i < len(code):
        tok = code[i]
        if tok.comment:
            i += 1
            continue
        if tok.text == "{":
            if depth == 0 and _previous(code, i).text == ")":
                end = _matching(code, i)
                header = code[start:i]
                name = _name(header)
                body = [t for t in code[i + 1 : end] if not t.comment]
                yield Function(
                    name.text, name.line, body, _annotations(header, file, problems), code[end].line
                )
                i, start = end + 1, end + 1
                continue
            depth += 1
        elif tok.text == "}":
            depth -= 1
        elif tok.text == ";" and depth == 0:
            start = i + 1
        i += 1


def _previous(tokens: list[Tok], i: int) -> Tok:
    j = i - 1
    while j >= 0 and tokens[j].comment:
        j -= 1
    return tokens[j] if j >= 0 else Tok("", 0)


def _matching(tokens: list[Tok], i: int) -> int:
    pairs = {"{": "}", "(": ")", "[": "]"}
    opening, depth = tokens[i].text, 0
    for j in range(i, len(tokens)):
        if tokens[j].comment:
            continue
        if tokens[j].text == opening:
            depth += 1
        elif tokens[j].text == pairs[opening]:
            depth -= 1
            if depth == 0:
                return j
    raise SyntaxError(f"line {tokens[i].line}: unbalanced {opening}")


def _name(header: list[Tok]) -> Tok:
    code = [t for t in header if not t.comment]
    close = max(j for j, t in enumerate(code) if t.text == ")")
    depth = 0
    for j in range(close, -1, -1):
        depth += {")": 1, "(": -1}.get(code[j].text, 0)
        if depth == 0:
            return code[j - 1]
    return Tok("?", code[0].line)


def _annotations(header: list[Tok], file: str, problems: list[Problem]) -> dict[str, str]:
    found: dict[str, str] = {}
    for tok in header:
        for match in re.finditer(r"gil:\s*([\w-]+)([^*]*)", tok.text if tok.comment else ""):
            if match.group(1) not in ANNOTATIONS:
                problems.append(Problem(file, tok.line, "?", f"unknown annotation gil: {match.group(1)}"))
            found[match.group(1)] = match.group(2).strip()
    return found


# ---------------------------------------------------------------- statements


@dataclass
class Stmt:
    kind: str  # block, if, loop, switch, case, label, goto, return, break, continue, simple
    line: int
    events: list[Tok] = field(default_factory=list)  # identifiers that matter, in order (condition first)
    children: list[Stmt] = field(default_factory=list)
    name: str = ""  # label or goto target; case: "case" or "default"; loop: "do", "forever" or ""
    step: list[Tok] = field(default_factory=list)  # a for loop's step


class Parser:
    def __init__(self, tokens: list[Tok]) -> None:
        self.t = tokens
        self.i = 0

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.t[j].text if j < len(self.t) else ""

    def block(self, end: int) -> list[Stmt]:
        out = []
        while self.i < end:
            out.append(self.statement())
        return out

    def parenthesized(self) -> list[Tok]:
        close = _matching(self.t, self.i)
        inside = self.t[self.i + 1 : close]
        self.i = close + 1
        return inside

    def statement(self) -> Stmt:
        tok, word = self.t[self.i], self.peek()
        line = tok.line
        if word == "{":
            close = _matching(self.t, self.i)
            self.i += 1
            children = self.block(close)
            self.i = close + 1
            return Stmt("block", line, children=children)
        if word == "if":
            self.i += 1
            cond = self.parenthesized()
            children = [self.statement()]
            if self.peek() == "else":
                self.i += 1
                children.append(self.statement())
            return Stmt("if", line, cond, children)
        if word in ("while", "switch"):
            self.i += 1
            cond = self.parenthesized()
            body = self.statement()
            forever = word == "while" and [t.text for t in cond] == ["1"]
            return Stmt(
                "loop" if word == "while" else "switch", line, cond, [body], "forever" if forever else ""
            )
        if word == "do":
            self.i += 1
            body = self.statement()
            self.i += 1  # while
            cond = self.parenthesized()
            self.i += 1  # ;
            return Stmt("loop", line, cond, [body], "do")
        if word == "for":
            self.i += 1
            parts: list[list[Tok]] = [[]]
            for t in self.parenthesized():
                if t.text == ";" and len(parts) < 3:
                    parts.append([])
                else:
                    parts[-1].append(t)
            init, cond, step = parts
            body = self.statement()
            loop = Stmt("loop", line, cond, [body], "" if cond else "forever", step)
            return Stmt("block", line, children=[Stmt("simple", line, init), loop])
        if word in ("case", "default"):
            while self.peek() != ":":
                self.i += 1
            self.i += 1
            return Stmt("case", line, name=word)
        if word == "goto":
            self.i += 3
            return Stmt("goto", line, name=self.t[self.i - 2].text)
        if word in ("break", "continue"):
            self.i += 2
            return Stmt(word, line)
        if word in MACROS:
            self.i += 1
            if self.peek() == ";":
                self.i += 1
            return Stmt("simple", line, [tok])
        if re.fullmatch(r"[A-Za-z_]\w*", word) and self.peek(1) == ":" and word != "default":
            self.i += 2
            return Stmt("label", line, name=word)
        start = self.i
        depth = 0
        while not (self.peek() == ";" and depth == 0):
            if self.i >= len(self.t):
                raise SyntaxError(f"line {line}: a statement without its ;")
            depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(self.peek(), 0)
            self.i += 1
        self.i += 1
        kind = "return" if word == "return" or word in RETURN_MACROS else "simple"
        return Stmt(kind, line, self.t[start : self.i - 1])


# ---------------------------------------------------------------- paths

State = tuple[tuple[tuple[str, int], ...], int]  # open pairs (kind, line); line of the open session or 0


class Analysis:
    """Follows every path of one function with the set of states it can be in at each point."""

    def __init__(self, fn: Function, file: str, annotated: dict[str, dict[str, str]]) -> None:
        self.fn, self.file, self.annotated = fn, file, annotated
        self.notes = fn.annotations
        self.problems: set[Problem] = set()
        self.labels: dict[str, set[State]] = {}
        self.exits: set[State] = set()
        self.released_foreign = False  # a releases function released a GIL it did not take
        self.no_session_calls = False

    def problem(self, line: int, message: str) -> None:
        self.problems.add(Problem(self.file, line, self.fn.name, message))

    def run(self) -> None:
        body = Parser(self.fn.body).block(len(self.fn.body))
        for _ in range(8):  # gotos to labels seen earlier need another pass; stop when nothing changes
            before = {k: set(v) for k, v in self.labels.items()}
            self.problems.clear()
            self.exits.clear()
            flow = self.seq(body, {((), 0)}, None)
            self.exit(flow.normal, self.fn.end)
            if self.labels == before:
                break
        self.check_annotations()

    # -- one statement: returns the states after it, collecting break/continue states in `flow`
    def seq(self, stmts: list[Stmt], states: set[State], switch_entry: set[State] | None) -> Flow:
        flow = Flow(set(states))
        for stmt in stmts:
            if stmt.kind == "case" and switch_entry is not None:
                flow.normal |= switch_entry
                continue
            if stmt.kind == "label":
                arriving = flow.normal | self.labels.get(stmt.name, set())
                if len({_kinds(state) for state in arriving}) > 1:
                    worst = max(arriving, key=lambda state: len(state[0]))
                    self.problem(
                        stmt.line, f"paths reach {stmt.name}: with different GIL states ({_describe(worst)})"
                    )
                flow.normal = arriving
                continue
            result = self.stmt(stmt, flow.normal)
            flow.normal = result.normal
            flow.breaks |= result.breaks
            flow.continues |= result.continues
        return flow

    def stmt(self, stmt: Stmt, states: set[State]) -> Flow:
        if stmt.kind in ("case", "label"):  # (a label as the body of an if: no goto reaches it here)
            return Flow(set(states))
        if stmt.kind == "block":
            return self.seq(stmt.children, states, None)
        if stmt.kind == "simple":
            return Flow(self.events(stmt.events, states))
        if stmt.kind == "return":
            self.exit(self.events(stmt.events, states), stmt.line)
            return Flow(set())
        if stmt.kind == "goto":
            self.labels.setdefault(stmt.name, set()).update(states)
            return Flow(set())
        if stmt.kind == "break":
            return Flow(set(), breaks=set(states))
        if stmt.kind == "continue":
            return Flow(set(), continues=set(states))
        if stmt.kind == "if":
            after = self.events(stmt.events, states)
            then = self.stmt(stmt.children[0], after)
            other = self.stmt(stmt.children[1], after) if len(stmt.children) > 1 else Flow(after)
            return Flow(
                then.normal | other.normal, then.breaks | other.breaks, then.continues | other.continues
            )
        if stmt.kind == "switch":
            entry = self.events(stmt.events, states)
            body = stmt.children[0]
            inner = self.seq(body.children if body.kind == "block" else [body], set(), entry)
            has_default = any(s.kind == "case" and s.name == "default" for s in body.children)
            return Flow(
                inner.normal | inner.breaks | (set() if has_default else entry), set(), inner.continues
            )
        return self.loop(stmt, states)

    def loop(self, stmt: Stmt, states: set[State]) -> Flow:
        entry = set(states)
        for _ in range(4):  # the session flag may change per iteration: reach the fixpoint
            head = entry if stmt.name == "do" else self.events(stmt.events, entry)
            body = self.stmt(stmt.children[0], head)
            back = self.events(stmt.step, body.normal | body.continues)
            if stmt.name == "do":
                back = self.events(stmt.events, back)
            if back <= entry:
                break
            entry |= back
        kinds_in = {_kinds(s) for s in states}
        changed = sorted((s for s in back if _kinds(s) not in kinds_in), key=lambda state: len(state[0]))
        if changed:
            self.problem(
                stmt.line, f"one iteration of this loop ends with another GIL state: {_describe(changed[0])}"
            )
        exits = body.breaks
        if stmt.name != "forever":
            exits |= back if stmt.name == "do" else self.events(stmt.events, entry)
        return Flow(exits)

    # -- the events of one statement, in order
    def events(self, tokens: list[Tok], states: set[State]) -> set[State]:
        for j, tok in enumerate(tokens):
            name = tok.text
            called = j + 1 < len(tokens) and tokens[j + 1].text == "("
            if name in MACROS or (name in PRIMITIVES and called):
                states = {self.primitive(name, tok.line, s) for s in states}
            elif name in self.annotated and name != self.fn.name:
                notes = self.annotated[name]
                if "returns-held" in notes and "no-session" in self.notes:
                    self.no_session_calls = True
                elif "returns-held" in notes:
                    states = {(s[0], s[1] or tok.line) for s in states}
                if "releases" in notes:
                    states = {(s[0], 0) for s in states}
        return states

    def primitive(self, name: str, line: int, state: State) -> State:
        stack, session = list(state[0]), state[1]
        top = stack[-1][0] if stack else ""
        closes = {
            "PyGILState_Release": "E",
            "PyEval_ReleaseThread": "A",
            "Py_END_ALLOW_THREADS": "B",
            "Py_BLOCK_THREADS": "B",
            "Py_UNBLOCK_THREADS": "K",
        }
        if name in ("PyGILState_Ensure", "PyEval_AcquireThread", "Py_BEGIN_ALLOW_THREADS"):
            stack.append(({"PyGILState_Ensure": "E", "PyEval_AcquireThread": "A"}.get(name, "B"), line))
        elif name == "PyEval_SaveThread":
            stack.pop() if top == "R" else stack.append(("S", line))
        elif name == "PyEval_RestoreThread":
            stack.pop() if top == "S" else stack.append(("R", line))
        elif top == closes[name]:
            stack.pop()
            if name in ("Py_BLOCK_THREADS", "Py_UNBLOCK_THREADS"):
                stack.append(("K" if name == "Py_BLOCK_THREADS" else "B", line))
        elif not stack and name == "PyGILState_Release" and "releases" in self.notes:
            self.released_foreign = True
        else:
            opened = f"{NAMES[top]} on line {stack[-1][1]}" if stack else "nothing"
            self.problem(line, f"{name} does not close what is open here ({opened})")
        return tuple(stack), session

    def exit(self, states: set[State], line: int) -> None:
        allowed: set[tuple[str, ...]] = {()}
        if "returns-held" in self.notes:
            allowed.add(("E",))
        if "keeps-thread-state" in self.notes:
            allowed = {("E", "S")}
        sessions = sorted({state[1] for state in states if state[1]})
        self.exits |= states
        wrong = [s for s in states if tuple(kind for kind, _ in s[0] if kind != "K") not in allowed]
        if wrong:
            self.problem(line, f"returns with {_describe(min(wrong, key=lambda state: len(state[0])))}")
        if sessions and "returns-held" not in self.notes:
            opened = ", ".join(map(str, sessions))
            self.problem(
                line,
                f"may return with the session of a returns-held call (line {opened}) still open: end it on "
                "every path (a gil: releases call), or annotate the function gil: returns-held",
            )

    def check_annotations(self) -> None:
        line = self.fn.line
        if "returns-held" in self.notes and not any(s[1] or s[0] for s in self.exits):
            self.problem(line, "annotated gil: returns-held, but no path returns with the GIL held")
        if "releases" in self.notes and not self.released_foreign and not self._calls("releases"):
            self.problem(line, "annotated gil: releases, but it releases nothing it did not take")
        if "no-session" in self.notes and (not self.no_session_calls or not self.notes["no-session"]):
            self.problem(
                line, "annotated gil: no-session, but it calls no returns-held function, or gives no reason"
            )

    def _calls(self, note: str) -> bool:
        return any(t.text in self.annotated and note in self.annotated[t.text] for t in self.fn.body)


@dataclass
class Flow:
    normal: set[State]
    breaks: set[State] = field(default_factory=set)
    continues: set[State] = field(default_factory=set)


def _kinds(state: State) -> tuple[str, ...]:
    return tuple(kind for kind, _ in state[0])


def _describe(state: State) -> str:
    opened = [f"{NAMES[kind]} of line {line}" for kind, line in state[0] if kind != "K"]
    return "open: " + ", ".join(opened) if opened else "nothing open (its entry state was different)"


# ---------------------------------------------------------------- the check


def check_sources(sources: dict[str, str]) -> list[Problem]:
    """Problems of these sources (file name -> text), checked together (annotations cross files)."""
    problems: list[Problem] = []
    parsed: list[tuple[str, list[Function]]] = []
    gil_name = re.compile(r"\b(" + "|".join(sorted(PRIMITIVES | MACROS)) + r")\b")
    for file, text in sources.items():
        continued = False
        for number, line in enumerate(text.split("\n"), 1):
            directive = continued or line.lstrip().startswith("#")
            continued = directive and line.rstrip().endswith("\\")
            if directive and gil_name.search(line):
                problems.append(
                    Problem(file, number, "?", "a preprocessor line hides a GIL call from this check")
                )
        for i, variant in enumerate(configurations(text)):
            fns = list(functions(tokenize(variant), file, problems if i == 0 else []))
            parsed.append((file, fns))
    annotated: dict[str, dict[str, str]] = {}
    for _, fns in parsed:
        for fn in fns:
            if fn.annotations:
                annotated.setdefault(fn.name, {}).update(fn.annotations)
    found = set(problems)
    for file, fns in parsed:
        for fn in fns:
            analysis = Analysis(fn, file, annotated)
            analysis.run()
            found |= analysis.problems
    return sorted(found, key=lambda p: (p.file, p.line, p.message))


def check_files(paths: Iterable[Path]) -> list[Problem]:
    return check_sources({str(path): path.read_text() for path in paths})


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    paths = [Path(arg) for arg in argv] or sorted((root / "csrc").glob("*.c"))
    problems = check_files(paths)
    for problem in problems:
        print(problem)
    print(f"gil_check: {len(paths)} files, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
