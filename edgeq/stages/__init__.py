"""The pipeline's stages, one module each, named for the public function it holds.

``edgeq.api`` is the facade that re-exports them; ``edgeq.pipeline`` (the build) and the targets
call them here, so the layers run one way: cli -> api -> stages -> targets, modelio -> core.
"""
