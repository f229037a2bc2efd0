"""The packaging configuration, checked here without GitHub: the workflows pass actionlint and pin every
action by commit, cibuildwheel selects exactly the intended wheels, and the sdist carries every file a build
needs.

The tools come with `pip install --group test`; a test whose tool is not installed skips itself.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
WHEELS_YML = WORKFLOWS / "wheels.yml"

# `cibuildwheel --print-build-identifiers` per platform, for every architecture of the wheels workflow: one
# abi3 wheel (built on cp311, it serves every later CPython with the GIL) and one free-threaded 3.14t wheel.
EXPECTED_IDENTIFIERS = {
    "linux": (
        ["x86_64", "aarch64"],
        {
            "cp311-manylinux_x86_64",
            "cp311-manylinux_aarch64",
            "cp311-musllinux_x86_64",
            "cp311-musllinux_aarch64",
            "cp314t-manylinux_x86_64",
            "cp314t-manylinux_aarch64",
            "cp314t-musllinux_x86_64",
            "cp314t-musllinux_aarch64",
        },
    ),
    "windows": (
        ["AMD64", "x86", "ARM64"],
        {
            "cp311-win_amd64",
            "cp311-win32",
            "cp311-win_arm64",
            "cp314t-win_amd64",
            "cp314t-win32",
            "cp314t-win_arm64",
        },
    ),
}

# `uses: owner/repo[/path]@<40 hex> # vX.Y.Z`
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$", re.MULTILINE)
PINNED = re.compile(r"[\w.-]+/[\w.-]+(?:/[\w./-]+)?@[0-9a-f]{40}")
VERSION_COMMENT = re.compile(r"\s+# v\d+\.\d+\.\d+")
CIBUILDWHEEL_ACTION = re.compile(r"uses:\s*pypa/cibuildwheel@[0-9a-f]{40} # v(?P<version>\S+)")
MATRIX_ARCHS = re.compile(r"^\s+archs:\s*(?P<archs>.+?)\s*$", re.MULTILINE)
# What the sdist must hold (as far as git tracks it): everything a build from it and its tests need.
SDIST_PATHS = ["LICENSE", "README.md", "MANIFEST.in", "pyproject.toml", "setup.py", "csrc", "src", "tests"]


def workflow_files() -> list[Path]:
    files = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
    assert files, f"no workflow in {WORKFLOWS}"
    return files


def installed_tool(name: str) -> str:
    """The path of a command installed into this interpreter's environment (or else on PATH), or a skip."""
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / name, scripts / f"{name}.exe"):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (it comes with `pip install --group test`)")
    return found


def require_module(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (it comes with `pip install --group test`)")


def run(
    command: list[str], *, cwd: Path = REPO_ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    # A developer's CIBW_* variables would change what cibuildwheel selects: only pyproject.toml counts here.
    env = {key: value for key, value in os.environ.items() if not key.startswith("CIBW_")}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_workflows_pass_actionlint() -> None:
    actionlint = installed_tool("actionlint")
    # shellcheck and pyflakes are left out so that the result does not depend on what else the machine has.
    files = [path.relative_to(REPO_ROOT).as_posix() for path in workflow_files()]
    done = run([actionlint, "-no-color", "-oneline", "-shellcheck=", "-pyflakes=", *files])
    assert done.returncode == 0, f"actionlint:\n{done.stdout}{done.stderr}"


def test_workflows_pin_every_action_by_commit() -> None:
    unpinned = []
    for path in workflow_files():
        for match in USES.finditer(path.read_text(encoding="utf-8")):
            if not (PINNED.fullmatch(match["ref"]) and VERSION_COMMENT.match(match["rest"])):
                unpinned.append(f"{path.name}: {match.group(0).strip()}")
    assert not unpinned, "actions must be pinned as owner/repo@<full commit SHA> # vX.Y.Z:\n" + "\n".join(
        unpinned
    )


def test_workflows_have_read_only_permissions_and_concurrency() -> None:
    for path in workflow_files():
        text = path.read_text(encoding="utf-8")
        assert re.search(r"^permissions:\n  contents: read\n(?!  )", text, re.MULTILINE), (
            f"{path.name}: the top-level permissions must be exactly `contents: read`"
        )
        assert re.search(r"^concurrency:", text, re.MULTILINE), f"{path.name}: no concurrency group"
        jobs = text[text.index("\njobs:\n") :]
        names = re.findall(r"^  ([\w-]+):\s*$", jobs, re.MULTILINE)
        blocks = re.split(r"^  [\w-]+:\s*$", jobs, flags=re.MULTILINE)[1:]
        assert names
        assert len(names) == len(blocks)
        for name, block in zip(names, blocks, strict=True):
            assert re.search(r"^    timeout-minutes: \d+$", block, re.MULTILINE), (
                f"{path.name}: job {name} has no timeout-minutes"
            )


def test_cibuildwheel_is_the_version_of_the_action() -> None:
    """The identifiers printed here are only those of CI if both run the same cibuildwheel."""
    require_module("cibuildwheel")
    match = CIBUILDWHEEL_ACTION.search(WHEELS_YML.read_text(encoding="utf-8"))
    assert match, "wheels.yml does not use pypa/cibuildwheel pinned with a version comment"
    assert importlib.metadata.version("cibuildwheel") == match["version"], (
        "the cibuildwheel of the test group must be the version of the action in wheels.yml"
    )


def test_wheels_matrix_builds_every_architecture() -> None:
    archs = {
        arch
        for match in MATRIX_ARCHS.finditer(WHEELS_YML.read_text(encoding="utf-8"))
        for arch in match["archs"].split()
    }
    assert archs == {arch for wanted, _ in EXPECTED_IDENTIFIERS.values() for arch in wanted}


@pytest.mark.parametrize("platform", sorted(EXPECTED_IDENTIFIERS))
def test_cibuildwheel_selects_the_intended_wheels(platform: str) -> None:
    require_module("cibuildwheel")
    archs, expected = EXPECTED_IDENTIFIERS[platform]
    done = run(
        [
            sys.executable,
            "-m",
            "cibuildwheel",
            "--print-build-identifiers",
            "--platform",
            platform,
            "--archs",
            ",".join(archs),
        ]
    )
    assert done.returncode == 0, f"cibuildwheel:\n{done.stdout}{done.stderr}"
    printed = done.stdout.split()
    assert len(printed) == len(set(printed)), printed
    assert set(printed) == expected


def tracked_files() -> list[str]:
    git = shutil.which("git")
    if git is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("needs a git checkout: the sdist must hold the tracked sources")
    # safe.directory: under sudo the checkout belongs to another user, and git would refuse to read it.
    done = run([git, "-c", f"safe.directory={REPO_ROOT.as_posix()}", "ls-files", "-z", "--", *SDIST_PATHS])
    assert done.returncode == 0, done.stderr
    # A file deleted but not yet committed is not a source any more.
    return [name for name in done.stdout.split("\0") if name and (REPO_ROOT / name).is_file()]


def test_sdist_holds_every_source(tmp_path: Path) -> None:
    """An sdist built from the tracked files holds them all: headers, the other platform's backend, tests."""
    require_module("build")
    tracked = tracked_files()
    tree = tmp_path / "tree"
    for name in tracked:  # a copy, so that the build writes no egg-info into the checkout
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    if (REPO_ROOT / "MANIFEST.in").is_file():  # also before it is committed
        shutil.copy2(REPO_ROOT / "MANIFEST.in", tree / "MANIFEST.in")
    done = run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path / "dist"), str(tree)], timeout=300
    )
    assert done.returncode == 0, f"python -m build --sdist:\n{done.stdout}{done.stderr}"
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    missing = sorted(set(tracked) - members)
    assert not missing, f"{sdist.name} lacks {missing} (MANIFEST.in says what goes beyond the C sources)"
