"""The embedded node: the scheduler and an agent that runs worker pods as local processes (the kubelet)."""

from .agent import NodeAgent, default_node_name

__all__ = ["NodeAgent", "default_node_name"]
