# The generated cases are half wrong on purpose: test_matrix.py runs and judges them; the pytest
# plugin must not collect them as cases of their own.
collect_ignore = ["generated"]
