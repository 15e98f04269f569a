"""The README and the docs as a user reads them: the commands run as written (the cheap ones), every name they
import exists, every option is documented, every link leads somewhere, and the README fits on a screen."""
from __future__ import annotations

import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CLIP, SHARED_DATA, need
from jasr_video.cli import build_parser
from video_utils import make_clip

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [README, *DOCS, REPO / "models" / "README.md"]
COMMAND_PAGES = [README, REPO / "docs" / "cli.md"]  # pages whose shell blocks are run
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
    [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.M | re.S)


def code_blocks(path: Path) -> list[tuple[str, str]]:
    """(language, text) of every fenced block of a Markdown page (indented fences included)."""
    blocks = []
    for indent, lang, text in FENCE.findall(path.read_text(encoding="utf-8")):
        blocks.append((lang, "\n".join(line[len(indent):] for line in text.splitlines())))
    return blocks


def shell_commands(path: Path) -> list[str]:
    """The commands of a page's shell blocks (no language, sh, bash, console), one per line (``\\`` joins)."""
    commands = []
    for lang, text in code_blocks(path):
        if lang not in ("", "sh", "bash", "console", "shell"):
            continue
        for line in text.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


# what a command needs that a test machine lacks: skipped with this reason
EXPENSIVE = [
    (lambda w: w[0] == "make", "runs the install or the whole suite"),
    (lambda w: any(x.startswith(("rtsp://", "http://", "https://", "tcp://", "udp://", "/dev/video", "webcam:"))
                   for x in w), "needs a camera or stream that does not exist here"),
    (lambda w: "--ray" in w, "needs a Ray cluster"),
    (lambda w: "cuda" in w, "needs a CUDA device"),
]


def runnable(command: str) -> tuple[list[str] | None, str]:
    """The command as it is run here (jasr-video through this Python, at most 2 frames), or None and why not."""
    words = shlex.split(command)
    for check, why in EXPENSIVE:
        if check(words):
            return None, why
    if words[0] != "jasr-video":
        return None, f"not a jasr-video command: {words[0]}"
    words = [sys.executable, "-m", "jasr_video.cli", *words[1:]]
    if "--help" in words or "-h" in words:
        return words, ""
    if "--max-frames" in words:
        words[words.index("--max-frames") + 1] = "2"
    else:
        words += ["--max-frames", "2"]
    return [w.replace("../shared/data", str(SHARED_DATA)) for w in words] + ["--threads", "1"], ""


ALL_COMMANDS = sorted({c for page in COMMAND_PAGES for c in shell_commands(page)})


def test_pages_have_commands():
    assert len(shell_commands(README)) >= 5 and any(c.startswith("jasr-video") for c in ALL_COMMANDS)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder holding what the examples name: `clip.mp4` (the first frames of the real clip), `out/`, and
    `cameras.txt` (here two files, as --streams takes any inputs)."""
    folder = tmp_path_factory.mktemp("user")
    make_clip(need(CLIP), folder / "clip.mp4", frames=4, width=480)
    (folder / "out").mkdir()
    (folder / "cameras.txt").write_text("# one input per line\nclip.mp4\nclip.mp4\n")
    return folder


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_command_runs(command, workdir):
    argv, why = runnable(command)
    if argv is None:
        pytest.skip(why)
    r = subprocess.run(argv, cwd=workdir, env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{command}\n{r.stderr[-2000:]}"


def test_skipped_commands_are_only_the_expensive_ones():
    reasons = {runnable(c)[1] for c in ALL_COMMANDS}
    assert not [r for r in reasons if r.startswith("not a jasr-video")], reasons
    assert runnable("jasr-video clip.mp4 --json c.jsonl --max-frames 250")[0][-4:] == ["--max-frames", "2", "--threads", "1"]
    assert runnable("jasr-video rtsp://cam/s --json c.jsonl")[0] is None


IMPORT = re.compile(r"from (jasr_video[\w.]*) import \(?([\w, \n]+)\)?")
DOTTED = re.compile(r"`(jasr_video(?:\.\w+)+)")


def imported_names() -> set[tuple[str, str]]:
    """(module, name) of every ``from jasr_video... import ...`` in the pages, code blocks and inline code."""
    found = set()
    for page in PAGES:
        for module, names in IMPORT.findall(page.read_text(encoding="utf-8")):
            for name in names.replace("\n", " ").split(","):
                if name.strip():
                    found.add((module, name.strip().split()[0]))
    return found


def test_every_imported_name_exists():
    names = imported_names()
    assert ("jasr_video", "Pipeline") in names and ("jasr_video.schemas", "load_schema") in names
    missing = []
    for module, name in sorted(names):
        try:
            getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as error:
            missing.append(f"from {module} import {name}: {error}")
    assert not missing, missing


def resolve(dotted: str):
    """The object a dotted name such as ``jasr_video.gallery.TrackGallery`` or ``jasr_video.tools.jitter`` names."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def test_every_dotted_name_exists():
    """Names the pages give in full (`jasr_video.cluster.RayRunner`) exist under that name."""
    missing = []
    for page in PAGES:
        for dotted in sorted(set(DOTTED.findall(page.read_text(encoding="utf-8")))):
            try:
                resolve(dotted)
            except (ImportError, AttributeError) as error:
                missing.append(f"{page.relative_to(REPO)}: {dotted}: {error}")
    assert not missing, missing


def test_every_option_is_in_the_cli_page():
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    options = {o for a in build_parser()._actions for o in a.option_strings if o.startswith("--")}
    assert len(options) > 50
    assert not sorted(o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text))


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_links_lead_somewhere():
    broken = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for target in LINK.findall(text):
            if "://" in target or target.startswith("mailto:"):
                continue
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                broken.append(f"{page.relative_to(REPO)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", FENCE.sub("", dest.read_text(encoding="utf-8")), re.M)
                if anchor not in {slug(h) for h in headings}:
                    broken.append(f"{page.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, broken


def test_readme_fits_on_a_screen():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines (at most 160; details go to docs/)"
