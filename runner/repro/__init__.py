"""``mmapconf repro``: one standalone C file per case and backing, for a kernel bug report.

The generator reads the validated case model (runner.lang) and writes plain system calls, its
own fork/wait choreography and its own judging; it shares no code with the engine's executor.
"""
