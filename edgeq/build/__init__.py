"""``edgeq build``, as a recipe of declared steps (the entry point is :func:`edgeq.pipeline.run`).

- ``recipe``: every cached step declared (its inputs' hashes, config and tools), and the build's inputs.
- ``keys``: a step's cache key, computed in one place, with the versions of the tools it runs.
- ``options``: the target options of a build, resolved and checked once.
- ``folder``: the build folder, its marker and lock.
- ``inputs``: the model and data, given or bundled, checked up front.
- ``stages``: what every target shares (float reference, debugger chart, one quantization per conversion,
  the planner where plain PTQ misses the budget, other flavours).
- ``target``: one target's check (once), compile (given the check), bench and folder, with the typed
  findings its manifest carries; a failed target's manifest.
"""
