"""The controller runtime: informer caches, a rate-limited work queue, reconcilers, and the manager."""

from .cache import NAMESPACE_INDEX, Informer, object_key
from .controller import Controller, Reconciler, Request, Result, own_request
from .manager import Manager
from .queue import RateLimitingQueue

__all__ = ["NAMESPACE_INDEX", "Controller", "Informer", "Manager", "RateLimitingQueue", "Reconciler", "Request",
           "Result", "object_key", "own_request"]
