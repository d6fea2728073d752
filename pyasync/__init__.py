"""pyasync: lock-free asynchronous SGD on CPU threads, and the momentum that
asynchrony implies."""
from .linear import AsyncSGDClassifier, AsyncSGDRegressor
from .staleness import StalenessStats

__all__ = ["AsyncSGDClassifier", "AsyncSGDRegressor", "StalenessStats"]
__version__ = "0.1.0"
