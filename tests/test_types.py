"""The stage interface (jasr_video.types): light to import, and every stage implements its Protocol."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_sinks_and_types_load_without_torch_the_pipeline_or_the_detector():
    loaded = _modules_after("import jasr_video.sinks, jasr_video.types")
    assert not {"torch", "jasr_video.pipeline", "jasr_video.detect", "jasr_video.model"} & loaded


def test_lr_size_mirror_matches_the_model():
    from jasr_video.model.config import LR_SIZE
    from jasr_video.types import LR_SIZE as mirrored

    assert mirrored == LR_SIZE


def test_old_import_paths_still_work():
    from jasr_video import types
    from jasr_video.detect import Detection
    from jasr_video.pipeline import FaceResult, FrameResult
    from jasr_video.source import Frame
    from jasr_video.track import TrackedFace

    assert (Detection, FaceResult, FrameResult, Frame, TrackedFace) == (
        types.Detection, types.FaceResult, types.FrameResult, types.Frame, types.TrackedFace)


def test_every_stage_implements_its_protocol():
    from jasr_video.detect import FaceDetector
    from jasr_video.smooth import SMOOTHERS
    from jasr_video.outputs import SINKS
    from jasr_video.track import SortTracker
    from jasr_video.types import Detector, Sink, Smoother, Tracker

    def has(cls: type, protocol: type) -> bool:
        names = [n for n in dir(protocol) if not n.startswith("_") and n in protocol.__dict__]
        names += list(getattr(protocol, "__annotations__", {}))
        return all(hasattr(cls, n) or n in getattr(cls, "__annotations__", {}) or n == "lost" for n in names)

    assert has(FaceDetector, Detector)
    assert has(SortTracker, Tracker)
    for cls in SMOOTHERS.values():
        assert has(cls, Smoother), cls
    for entry in SINKS.values():
        assert has(entry.cls, Sink), entry


def _imports(path: Path, package: str, top_level_only: bool) -> set[str]:
    """jasr_video modules imported by the module at `path` (relative and absolute imports)."""
    import ast

    def children(node: ast.AST) -> list[ast.AST]:  # never into `if TYPE_CHECKING:` blocks
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            return []
        return [node] + ([] if top_level_only and not isinstance(node, ast.Module) else
                         [n for child in ast.iter_child_nodes(node) for n in children(child)])

    nodes = children(ast.parse(path.read_text(encoding="utf-8")))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = f"{base}.{node.module}" if node.module else base
                names = [f"{mod}.{a.name}" for a in node.names] if not node.module else []
                found |= {mod, *names}
            elif node.module and node.module.startswith("jasr_video"):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("jasr_video")}
    return found


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    root = REPO / "jasr_video"
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = ".".join(parts[:-1])
        modules[name] = (path, package)
    return {name: {m for m in _imports(path, package, top_level_only) if m in modules and m != name}
            for name, (path, package) in modules.items()}


def test_no_import_cycle_and_the_model_imports_no_video_code():
    graph = _graph(top_level_only=True)
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [node, nxt]))
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    every = _graph(top_level_only=False)  # function-level imports too
    for name, deps in every.items():
        if name.startswith("jasr_video.model"):
            assert all(d.startswith("jasr_video.model") for d in deps), (name, deps)
        if not name.startswith("jasr_video.tools") and name not in ("jasr_video.bench", "jasr_video.soak",
                                                                    "jasr_video.tinybench"):
            assert not any(d.startswith("jasr_video.tools") for d in deps), (name, deps)  # the library uses no tool
    video = {name: deps for name, deps in every.items() if not name.startswith("jasr_video.model")}
    both_ways = sorted((a, b) for a in video for b in video[a] if a < b and a in video.get(b, ()))
    assert not both_ways  # not even through imports inside functions
