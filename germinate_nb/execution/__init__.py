"""The engine: dependency-driven runs, results, progress events, reuse and workflows."""
