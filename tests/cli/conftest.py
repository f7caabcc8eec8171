"""The hostile notebooks are data for test_hostile_notebooks.py, not notebooks for nbval to run."""

collect_ignore_glob = ["hostile/*.ipynb"]
