"""pyasync: lock-free asynchronous SGD on CPU threads, and the momentum that
asynchrony implies."""
from .linear import AsyncSGDClassifier, AsyncSGDRegressor
from .mlp import AsyncMLPClassifier, AsyncMLPRegressor
from .staleness import StalenessStats

__all__ = ["AsyncMLPClassifier", "AsyncMLPRegressor", "AsyncSGDClassifier",
           "AsyncSGDRegressor", "StalenessStats"]
__version__ = "0.1.0"
