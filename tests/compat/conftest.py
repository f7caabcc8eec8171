"""seed_pipeline.py is a notebook-style module the tests run with runpy, not a test module."""

collect_ignore = ["seed_pipeline.py"]
