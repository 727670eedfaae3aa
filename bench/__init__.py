"""The benchmark of issue 8: ``python3 bench/run.py`` prints figures and asserts nothing."""
