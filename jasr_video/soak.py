"""`python -m jasr_video.soak` runs :mod:`jasr_video.tools.soak`, where this tool lives with the others (this module
is that one under its old name, so ``from jasr_video.soak import ...`` keeps working)."""
import sys

from .tools import soak as _tool

if __name__ == "__main__":
    raise SystemExit(_tool.main())
sys.modules[__name__] = _tool
