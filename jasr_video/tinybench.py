"""`python -m jasr_video.tinybench` runs :mod:`jasr_video.tools.tinybench`, where this tool lives with the others (this module
is that one under its old name, so ``from jasr_video.tinybench import ...`` keeps working)."""
import sys

from .tools import tinybench as _tool

if __name__ == "__main__":
    raise SystemExit(_tool.main())
sys.modules[__name__] = _tool
