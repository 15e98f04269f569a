"""`python -m jasr_video.bench` runs :mod:`jasr_video.tools.bench`, where this tool lives with the others (this module
is that one under its old name, so ``from jasr_video.bench import ...`` keeps working)."""
import sys

from .tools import bench as _tool

if __name__ == "__main__":
    raise SystemExit(_tool.main())
sys.modules[__name__] = _tool
