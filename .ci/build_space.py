"""Build the folder a Hugging Face Space needs: ``make space DIR=folder`` runs this.

The folder holds exactly what the Space builds and runs: the app (``app.py``, ``pages/``, ``core/``),
the shipped checkpoints, ``requirements.txt``, the ``Dockerfile`` and ``.dockerignore``, the Streamlit
settings and the README with its front matter. Only files tracked by git are copied, from the working
tree, so caches, virtualenvs and other untracked files never ship; tests, benchmarks, CI and git history
are not copied at all. Images the README links to that the folder does not hold (the screenshots in
``tests/``) are left out of its copy of the README instead of showing as broken links.

Safe to run again: it replaces what it wrote before and keeps a ``.git`` folder and ``.gitattributes``,
so the folder can also be a clone of the Space's own repository. It refuses a folder holding anything
else, and a folder inside this repository (or containing it). Standard library only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent
# What the Space gets, relative to the repository root. Nothing else is copied.
SHIPPED = (
    "app.py",
    "pages",
    "core",
    "checkpoints",
    "requirements.txt",
    "Dockerfile",
    ".dockerignore",
    "README.md",
    ".streamlit",
)
# Kept when the folder is refreshed: a clone of the Space's repository, for pushing with plain git.
KEPT = (".git", ".gitattributes")
# A README line that is only an image: ![alt](target "optional title")
_IMAGE_LINE = re.compile(r"^\s*!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)\s*$")


class BuildError(Exception):
    """Why the folder was not built: printed as is, exit status 1."""


def _git(*args: str) -> list[str]:
    try:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise BuildError(
            f"`make space` needs git and a git checkout of CIFAR Lab: git {' '.join(args)} failed "
            f"({detail.decode(errors='replace').strip() or exc})"
        ) from exc
    return [name for name in done.stdout.decode().split("\0") if name]


def tracked_files() -> list[str]:
    """The tracked files under SHIPPED that exist in the working tree, as repository-relative paths."""
    return [name for name in _git("ls-files", "-z", "--", *SHIPPED) if (REPO / name).is_file()]


def untracked_files() -> list[str]:
    """Files under SHIPPED that git does not track and does not ignore: they are not shipped."""
    return _git("ls-files", "-z", "--others", "--exclude-standard", "--", *SHIPPED)


def check_destination(dest: Path) -> None:
    """Refuse a destination this build could damage or that would end up inside the repository."""
    if dest == REPO or dest.is_relative_to(REPO):
        raise BuildError(f"DIR must be outside this repository ({REPO}), e.g. DIR=../cifar-lab-space; got {dest}")
    if REPO.is_relative_to(dest):
        raise BuildError(f"DIR must not contain this repository ({REPO}); got {dest}")
    if not dest.exists():
        return
    if not dest.is_dir():
        raise BuildError(f"{dest} exists and is not a folder")
    foreign = sorted(entry.name for entry in dest.iterdir() if entry.name not in SHIPPED + KEPT)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise BuildError(
            f"refusing to replace {dest}: it holds {shown}, which `make space` does not write. "
            "Use a new or empty folder, or one `make space` built before."
        )


def check_front_matter(readme: str) -> None:
    """The Space reads its configuration from the README's front matter: it must declare a Docker Space."""
    match = re.match(r"---\n(.*?)\n---\n", readme, re.DOTALL)
    if not match or not re.search(r"^sdk:\s*docker\s*$", match.group(1), re.MULTILINE):
        raise BuildError("README.md must start with the Space's front matter (a --- block with `sdk: docker`)")


def space_readme(readme: str, shipped: set[str]) -> str:
    """The README without image lines whose (relative) target the Space folder does not hold."""
    out: list[str] = []
    dropped_after_blank = False
    for line in readme.splitlines(keepends=True):
        if dropped_after_blank and not line.strip():
            dropped_after_blank = False
            continue  # the blank line that separated the dropped image from the next paragraph
        dropped_after_blank = False
        match = _IMAGE_LINE.match(line)
        if match and not re.match(r"^([a-z][a-z0-9+.-]*:|/|#)", match.group(1), re.IGNORECASE):
            target = str(PurePosixPath(match.group(1).split("#")[0].split("?")[0]))
            if target not in shipped:
                dropped_after_blank = not out or not out[-1].strip()
                continue
        out.append(line)
    return "".join(out)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def build(dest: Path) -> list[str]:
    """Build (or refresh) the Space folder at ``dest``; returns the files written."""
    dest = dest.expanduser().resolve()
    check_destination(dest)
    files = tracked_files()
    missing = [name for name in ("app.py", "README.md", "Dockerfile", "requirements.txt") if name not in files]
    if missing:
        raise BuildError(f"not tracked by git, so not shipped: {', '.join(missing)}")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    check_front_matter(readme)
    unshipped = untracked_files()
    if unshipped:
        print(
            "make space: warning: untracked files are not shipped (`git add` them to ship them): "
            + ", ".join(unshipped),
            file=sys.stderr,
        )

    dest.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        _remove(dest / name)
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name == "README.md":
            target.write_text(space_readme(readme, set(files)), encoding="utf-8")
        else:
            shutil.copy2(REPO / name, target)
    return files


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].strip():
        print("usage: make space DIR=folder   (e.g. make space DIR=../cifar-lab-space)", file=sys.stderr)
        return 2
    try:
        files = build(Path(argv[0]))
    except BuildError as exc:
        print(f"make space: {exc}", file=sys.stderr)
        return 1
    size = sum((REPO / name).stat().st_size for name in files) / 1e6
    dest = Path(argv[0]).expanduser().resolve()
    print(f"make space: {len(files)} files ({size:.0f} MB) in {dest}")
    print(f"push it with: hf upload <user>/<space> {dest} . --repo-type space")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
