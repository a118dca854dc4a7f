"""`make space DIR=...` builds exactly the folder a Hugging Face Space needs (README, "Deploying as a Hugging
Face Space"): the tracked app files, every shipped checkpoint, the Dockerfile and the README with its front
matter; no tests, benchmarks, CI or git history. Safe to run again, and it never wipes a folder it did not
build."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ("app.py", "pages", "core", "checkpoints", "requirements.txt", "Dockerfile", ".dockerignore", "README.md",
           ".streamlit")

pytestmark = pytest.mark.skipif(
    not (shutil.which("make") and shutil.which("git") and (REPO / ".git").exists()),
    reason="`make space` needs make and a git checkout",
)


def make_space(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `make space ARGS` in the repository, as a user would (no variables inherited from an outer make)."""
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DIR"}}
    return subprocess.run(["make", "-s", "space", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


def files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


def tracked_shipped_files() -> set[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--", *SHIPPED], cwd=REPO, capture_output=True, check=True)
    return {name for name in out.stdout.decode().split("\0") if name and (REPO / name).is_file()}


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("space") / "cifar-lab-space"  # does not exist yet: make creates it
    done = make_space(f"DIR={folder}")
    assert done.returncode == 0, done.stderr
    assert str(folder) in done.stdout and "hf upload" in done.stdout
    return folder


def test_the_folder_holds_the_tracked_app_files_and_nothing_else(space: Path) -> None:
    assert files_in(space) == tracked_shipped_files()
    assert (space / "app.py").is_file()
    assert {"home.py", "classify.py", "denoise.py", "colorize.py", "train.py", "__init__.py"} <= {
        p.name for p in (space / "pages").glob("*.py")
    }
    assert (space / "core" / "__init__.py").is_file() and (space / "core" / "models" / "__init__.py").is_file()
    for name in ("requirements.txt", "Dockerfile", ".dockerignore", ".streamlit/config.toml"):
        assert filecmp.cmp(REPO / name, space / name, shallow=False), name


def test_every_shipped_checkpoint_is_in_the_folder_byte_for_byte(space: Path) -> None:
    shipped = sorted(p.name for p in (REPO / "checkpoints").iterdir() if p.suffix in {".safetensors", ".json"})
    assert any(name.endswith(".safetensors") for name in shipped)
    for name in shipped:
        assert filecmp.cmp(REPO / "checkpoints" / name, space / "checkpoints" / name, shallow=False), name
    for weights in (space / "checkpoints").glob("*.safetensors"):
        assert weights.with_suffix(".json").is_file(), f"{weights.name} has no sidecar"


def test_no_tests_benchmarks_ci_git_or_caches(space: Path) -> None:
    for name in ("tests", "bench", ".ci", ".git", ".venv", ".cache", "Makefile", "pyproject.toml",
                 "requirements-test.txt", ".gitignore", "data"):
        assert not (space / name).exists(), name
    junk = [p for p in space.rglob("*") if p.name == "__pycache__" or p.suffix in {".pyc", ".tmp"}]
    assert not junk


def test_readme_keeps_the_space_front_matter_and_has_no_broken_links(space: Path) -> None:
    readme = (space / "README.md").read_text(encoding="utf-8")
    front = re.match(r"---\n(.*?)\n---\n", readme, re.DOTALL)
    assert front, "the README must start with the Space's front matter"
    assert re.search(r"^sdk: docker$", front.group(1), re.MULTILINE)
    port = re.search(r"^app_port: (\d+)$", front.group(1), re.MULTILINE)
    assert port and f"EXPOSE {port.group(1)}" in (space / "Dockerfile").read_text()
    # Only the screenshot lines (their images live in tests/, which does not ship) differ from the repo's README.
    original = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert [line for line in original if "](tests/" not in line and line.strip()] == [
        line for line in readme.splitlines() if line.strip()
    ]
    for target in re.findall(r"\]\(([^)\s#]+)", readme):
        if not re.match(r"[a-z]+:", target):
            assert (space / target).exists(), f"README links to {target}, which the Space does not have"


def test_the_folder_runs_on_its_own(space: Path) -> None:
    """The app resolves its shipped checkpoints inside the folder, not in this repository."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = "import core, core.paths as p; print(core.__file__); print(p.SHIPPED_CHECKPOINTS)"
    done = subprocess.run([sys.executable, "-c", code], cwd=space, env=env, capture_output=True, text=True,
                          check=True)
    module, checkpoints = done.stdout.split()
    assert Path(module) == space / "core" / "__init__.py"
    assert Path(checkpoints) == space / "checkpoints"


def test_running_again_refreshes_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "space"
    assert make_space(f"DIR={folder}").returncode == 0
    (folder / "core" / "stale.py").write_text("# removed from the repository since the last build\n")
    (folder / "core" / "__pycache__").mkdir()
    (folder / "checkpoints" / "old.safetensors").write_bytes(b"\0")
    # A clone of the Space's own repository, for pushing with plain git: its git data survives a rebuild.
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / ".gitattributes").write_text('*.safetensors filter=lfs diff=lfs merge=lfs -text\n')

    done = make_space(f"DIR={folder}")
    assert done.returncode == 0, done.stderr
    assert files_in(folder) == tracked_shipped_files() | {".git/HEAD", ".gitattributes"}


def test_refuses_a_folder_it_did_not_build(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a Space build\n")
    (tmp_path / "core").mkdir()
    done = make_space(f"DIR={tmp_path}")
    assert done.returncode != 0
    assert "refusing" in done.stderr and "notes.txt" in done.stderr
    assert files_in(tmp_path) == {"notes.txt"}  # nothing removed, nothing written


def test_needs_a_dir_outside_the_repository(tmp_path: Path) -> None:
    done = make_space()
    assert done.returncode != 0 and "usage: make space DIR=" in done.stderr
    inside = REPO / "space-build-test"
    done = make_space(f"DIR={inside}")
    assert done.returncode != 0 and "outside this repository" in done.stderr
    assert not inside.exists()
    assert make_space(f"DIR={REPO.parent}").returncode != 0  # a folder holding the repository
    (tmp_path / "file").write_text("x")
    assert make_space(f"DIR={tmp_path / 'file'}").returncode != 0  # not a folder
