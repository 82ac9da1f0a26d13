"""The pipeline's stages, one module each; :mod:`edgeq.api` re-exports their entry points."""
