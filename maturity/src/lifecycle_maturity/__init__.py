"""Evidence-based MLOps/LLMOps maturity assessment of a repository (``cli.py``)."""

from .cli import assess

__all__ = ["assess"]
