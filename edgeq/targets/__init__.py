"""Deployment targets. Each is one module implementing :class:`edgeq.targets.base.Target`."""
