"""The generated matrix cases are inputs of test_matrix.py, half of them wrong on purpose: the
conformance plugin must not collect them as cases of their own under `pytest tests`."""

collect_ignore_glob = ["generated/*.yaml"]
