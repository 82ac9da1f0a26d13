"""Build reports: a self-contained report.html (opens offline) and report.md."""
