"""The task model: tasks, executors, the registry, states and workflows (no IPython, no drawing)."""
