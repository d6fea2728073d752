"""Asynchrony across processes and machines: the Ray backend
(asynchrony="ray"), a parameter server and data-holding workers running the
compiled update kernels."""
from .ray_backend import RayBackend, require_ray

__all__ = ["RayBackend", "require_ray"]
