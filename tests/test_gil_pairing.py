"""Every GIL acquire in csrc/ is paired with its release on every path (tests/gil_check.py); it can fail.

The check runs on the project's sources, on small C snippets that each hold one mistake (it must report each,
at the right line) or none (it must stay quiet), and on the project's sources with a mistake put back in.
Portable: it reads C text only.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import gil_check
import pytest
from nettest import REPO_ROOT

CSRC = REPO_ROOT / "csrc"
SOURCES = sorted(CSRC.glob("*.c"))
needs_sources = pytest.mark.skipif(not SOURCES, reason="the C sources (csrc/) are not beside the tests")


def problems_of(code: str, **more: str) -> list[gil_check.Problem]:
    sources = {"snippet.c": textwrap.dedent(code)} | {
        name: textwrap.dedent(text) for name, text in more.items()
    }
    return gil_check.check_sources(sources)


# Each mistake: the snippet, the line the problem must be reported at, and words of the message.
MISTAKES: dict[str, tuple[str, int, str]] = {
    "missing release on an early return": (
        """
        int f(int x)
        {
            PyGILState_STATE g = PyGILState_Ensure();
            if (x < 0)
                return -1;
            PyGILState_Release(g);
            return 0;
        }
        """,
        6,
        "returns with open: PyGILState_Ensure of line 4",
    ),
    "mismatched pair": (
        """
        void f(PyThreadState *ts)
        {
            PyGILState_STATE g = PyGILState_Ensure();
            PyEval_ReleaseThread(ts);
        }
        """,
        5,
        "PyEval_ReleaseThread does not close what is open here (PyGILState_Ensure on line 4)",
    ),
    "acquire in a loop without release": (
        """
        void f(int n)
        {
            for (int i = 0; i < n; i++) {
                PyGILState_Ensure();
                call(i);
            }
        }
        """,
        4,
        "one iteration of this loop ends with another GIL state",
    ),
    "release in a loop of what was taken once": (
        """
        void f(int n)
        {
            PyGILState_STATE g = PyGILState_Ensure();
            while (n--)
                PyGILState_Release(g);
        }
        """,
        6,
        "does not close what is open here (nothing)",
    ),
    "goto to a label that skips the release": (
        """
        int f(void)
        {
            PyGILState_STATE g = PyGILState_Ensure();
            if (work() < 0)
                goto error;
            PyGILState_Release(g);
            return 0;
        error:
            return -1;
        }
        """,
        10,
        "returns with open: PyGILState_Ensure of line 4",
    ),
    "gotos that reach a label in different states": (
        """
        int f(void)
        {
            PyGILState_STATE g = PyGILState_Ensure();
            if (a() < 0)
                goto error;
            PyGILState_Release(g);
            if (b() < 0)
                goto error;
            return 0;
        error:
            return -1;
        }
        """,
        11,
        "paths reach error: with different GIL states",
    ),
    "return inside Py_BEGIN_ALLOW_THREADS": (
        """
        PyObject *f(int fd)
        {
            int n;
            Py_BEGIN_ALLOW_THREADS
            n = read_it(fd);
            if (n < 0)
                return NULL;
            Py_END_ALLOW_THREADS
            return PyLong_FromLong(n);
        }
        """,
        8,
        "returns with open: Py_BEGIN_ALLOW_THREADS of line 5",
    ),
    "Py_RETURN_NONE with the GIL released": (
        """
        PyObject *f(void)
        {
            PyThreadState *save = PyEval_SaveThread();
            if (quick())
                Py_RETURN_NONE;
            PyEval_RestoreThread(save);
            Py_RETURN_NONE;
        }
        """,
        6,
        "returns with open: PyEval_SaveThread of line 4",
    ),
    "break out of a loop while released": (
        """
        void f(void)
        {
            for (;;) {
                Py_BEGIN_ALLOW_THREADS
                if (done())
                    break;
                Py_END_ALLOW_THREADS
            }
        }
        """,
        10,
        "returns with open: Py_BEGIN_ALLOW_THREADS of line 5",
    ),
    "a switch case that returns held": (
        """
        int f(int kind)
        {
            PyGILState_STATE g = PyGILState_Ensure();
            switch (kind) {
            case 1:
                return 1;
            default:
                break;
            }
            PyGILState_Release(g);
            return 0;
        }
        """,
        7,
        "returns with open: PyGILState_Ensure of line 4",
    ),
    "release of a GIL it never took": (
        """
        void f(PyGILState_STATE g)
        {
            PyGILState_Release(g);
        }
        """,
        4,
        "PyGILState_Release does not close what is open here (nothing)",
    ),
    "Py_END_ALLOW_THREADS after Py_BLOCK_THREADS": (
        """
        void f(void)
        {
            Py_BEGIN_ALLOW_THREADS
            Py_BLOCK_THREADS
            Py_END_ALLOW_THREADS
        }
        """,
        6,
        "Py_END_ALLOW_THREADS does not close what is open here (Py_BLOCK_THREADS on line 5)",
    ),
    "a thread state kept without saying so": (
        """
        void attach(void)
        {
            PyGILState_Ensure();
            PyEval_SaveThread();
        }
        """,
        6,
        "returns with open: PyGILState_Ensure of line 4, PyEval_SaveThread of line 5",
    ),
    "a leak in the #else branch only": (
        """
        int f(int x)
        {
            PyGILState_STATE g = PyGILState_Ensure();
        #ifdef _WIN32
            PyGILState_Release(g);
        #else
            if (x)
                PyGILState_Release(g);
        #endif
            return 0;
        }
        """,
        11,
        "returns with open: PyGILState_Ensure of line 4",
    ),
    "a GIL call hidden in a macro": (
        """
        #define TAKE_GIL() PyGILState_Ensure()
        void f(void) { }
        """,
        2,
        "a preprocessor line hides a GIL call",
    ),
    "an unknown annotation": (
        """
        /* gil: returns-maybe */
        void f(void) { }
        """,
        2,
        "unknown annotation gil: returns-maybe",
    ),
}

# The session convention: a returns-held function, a releases function, and their callers.
SESSION = """
    /* gil: returns-held */
    int deliver(int x)
    {
        if (x)
            PyGILState_Ensure();
        return 0;
    }
    /* gil: releases */
    void end(void)
    {
        if (!open_now())
            return;
        PyGILState_Release(state());
    }
"""
SESSION_MISTAKES: dict[str, tuple[str, int, str]] = {
    "a caller that leaves the session open": (
        """
        void reader(int x)
        {
            deliver(x);
            if (x > 1)
                return;
            end();
        }
        """,
        6,
        "may return with the session of a returns-held call (line 4) still open",
    ),
    "a caller that passes a returns-held callback and ends nothing": (
        """
        void reader(void)
        {
            read_all(deliver);
        }
        """,
        5,
        "session of a returns-held call (line 4) still open",
    ),
    "a stale returns-held annotation": (
        """
        /* gil: returns-held */
        int quiet(void)
        {
            return 0;
        }
        """,
        3,
        "annotated gil: returns-held, but no path returns with the GIL held",
    ),
    "a stale releases annotation": (
        """
        /* gil: releases */
        void nothing(void)
        {
        }
        """,
        3,
        "annotated gil: releases, but it releases nothing it did not take",
    ),
    "no-session without its reason": (
        """
        /* gil: no-session */
        void fill(void)
        {
            read_all(deliver);
        }
        """,
        3,
        "gives no reason",
    ),
}

CLEAN: dict[str, str] = {
    "ctypes-style single exit": """
        void callback(void *arg)
        {
            PyGILState_STATE g = PyGILState_Ensure();
            if (arg == NULL)
                goto done;
            call(arg);
        done:
            PyGILState_Release(g);
        }
        """,
    "one error label that releases": """
        int f(void)
        {
            int rc = -1;
            Py_BEGIN_ALLOW_THREADS
            if (a() < 0)
                goto error;
            if (b() < 0)
                goto error;
            rc = 0;
        error:
            Py_END_ALLOW_THREADS
            return rc;
        }
        """,
    "Py_BLOCK_THREADS before an early return": """
        PyObject *f(int fd)
        {
            Py_BEGIN_ALLOW_THREADS
            if (read_it(fd) < 0) {
                Py_BLOCK_THREADS
                return NULL;
            }
            Py_END_ALLOW_THREADS
            Py_RETURN_NONE;
        }
        """,
    "a pair per iteration": """
        void f(int n)
        {
            for (int i = 0; i < n; i++) {
                PyGILState_STATE g = PyGILState_Ensure();
                if (skip(i)) {
                    PyGILState_Release(g);
                    continue;
                }
                call(i);
                PyGILState_Release(g);
            }
        }
        """,
    "a thread that keeps its state, said so": """
        /* gil: keeps-thread-state */
        void attach(void)
        {
            PyGILState_Ensure();
            PyEval_SaveThread();
        }
        """,
    "restore then save in a kept thread state": """
        void burst(PyThreadState **ts)
        {
            PyEval_RestoreThread(*ts);
            deliver_all();
            *ts = PyEval_SaveThread();
        }
        """,
    "a switch whose every case closes": """
        int f(int kind)
        {
            PyGILState_STATE g = PyGILState_Ensure();
            switch (kind) {
            case 1:
                PyGILState_Release(g);
                return 1;
            case 2:
                kind = 3;
                /* fall through */
            default:
                break;
            }
            PyGILState_Release(g);
            return 0;
        }
        """,
}
SESSION_CLEAN: dict[str, str] = {
    "a caller that ends the session on every path": """
        void reader(int x)
        {
            while (more()) {
                if (deliver(x) < 0)
                    break;
            }
            end();
        }
        """,
    "a caller that passes it on, said so": """
        /* gil: returns-held */
        int on_message(int x)
        {
            return deliver(x);
        }
        void dispatcher(void)
        {
            read_all(on_message);
            end();
        }
        """,
    "a caller that opens no session, with its reason": """
        /* gil: no-session (nothing is delivered while filling) */
        void fill(void)
        {
            read_all(deliver);
        }
        """,
}


@pytest.mark.parametrize("name", MISTAKES)
def test_each_mistake_is_reported(name: str) -> None:
    code, line, words = MISTAKES[name]
    problems = problems_of(code)
    assert any(p.line == line and words in p.message for p in problems), [str(p) for p in problems]


@pytest.mark.parametrize("name", SESSION_MISTAKES)
def test_each_session_mistake_is_reported(name: str) -> None:
    code, line, words = SESSION_MISTAKES[name]
    problems = [p for p in problems_of(code, **{"session.c": SESSION}) if p.file == "snippet.c"]
    assert any(p.line == line and words in p.message for p in problems), [str(p) for p in problems]


@pytest.mark.parametrize("name", CLEAN)
def test_correct_code_passes(name: str) -> None:
    assert problems_of(CLEAN[name]) == []


@pytest.mark.parametrize("name", SESSION_CLEAN)
def test_correct_session_code_passes(name: str) -> None:
    assert problems_of(SESSION_CLEAN[name], **{"session.c": SESSION}) == []


@needs_sources
def test_the_project_pairs_every_acquire() -> None:
    problems = gil_check.check_files(SOURCES)
    assert problems == [], "\n".join(map(str, problems))


# A mistake put back into the project's own code: (file, text replaced, replacement, words of the problem).
REGRESSIONS = [
    pytest.param(
        "nn_linux.c",
        "              : nn_nl_read(&lr->sock, buf, NN_READ_BUF, nn_on_message, lr, &err);\n"
        "    nn_core_session_end(NN_SESS(lr));",
        "              : nn_nl_read(&lr->sock, buf, NN_READ_BUF, nn_on_message, lr, &err);",
        "nn_read_some: may return with the session",
        id="the dispatcher keeps the GIL after a read",
    ),
    pytest.param(
        "nn_core.c",
        "    gil = PyGILState_Ensure();\n    nn_dispatch(reg, ev);",
        "    gil = PyGILState_Ensure();\n    if (reg->cancelled)\n        return -1;\n"
        "    nn_dispatch(reg, ev);",
        "nn_core_deliver: returns with open: PyGILState_Ensure",
        id="an early return in a foreign-thread callback",
    ),
    pytest.param(
        "nn_module.c",
        "    rc = nn_backend_get_table(kind, family, &table, &err);\n    Py_END_ALLOW_THREADS",
        "    rc = nn_backend_get_table(kind, family, &table, &err);",
        "nn_get_table: returns with open: Py_BEGIN_ALLOW_THREADS",
        id="a table read that never takes the GIL back",
    ),
    pytest.param(
        "nn_core.c",
        "/* gil: keeps-thread-state */\n",
        "",
        "nn_core_thread_attach: returns with open: PyGILState_Ensure",
        id="the dispatcher's thread state without its annotation",
    ),
]


@needs_sources
@pytest.mark.parametrize(("file", "old", "new", "words"), REGRESSIONS)
def test_a_mistake_in_the_project_is_reported(file: str, old: str, new: str, words: str) -> None:
    sources = {path.name: path.read_text() for path in SOURCES}
    assert sources[file].count(old) == 1, f"{file} changed: update this test's excerpt"
    sources[file] = sources[file].replace(old, new)
    problems = gil_check.check_sources(sources)
    assert any(words in str(p) for p in problems), [str(p) for p in problems]


def test_command_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.c"
    bad.write_text(textwrap.dedent(MISTAKES["missing release on an early return"][0]))
    script = Path(gil_check.__file__)
    done = subprocess.run(
        [sys.executable, str(script), str(bad)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert f"{bad}:6: f: returns with open" in done.stdout
    if SOURCES:
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
