"""``edgeq build``, stage by stage (the entry point is :func:`edgeq.pipeline.run`).

- ``folder``: the build folder, its marker and lock.
- ``inputs``: the model and data, given or bundled, checked up front.
- ``stages``: what every target shares (float reference, debugger chart, one quantization per conversion,
  the planner where plain PTQ misses the budget, other flavours), each cached by ``edgeq.cache``.
- ``target``: one target's check, compile, bench and folder; a failed target's manifest.
- ``verdict``: the per-target verdict line and what each figure rests on.
"""
