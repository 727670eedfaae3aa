"""mmapconf's pytest plugin: every case × backing a pytest item, run through ``runner``.

Registered as the ``conformance`` pytest11 entry point; without installation, ``-p conformance``
loads this package (with the project root on ``sys.path``). The hooks live in
``conformance.plugin``: naming it in ``pytest_plugins`` lets both ways of loading register the
same module under the same names, so loading it twice (entry point and ``-p``) is harmless.
"""

pytest_plugins = ["conformance.plugin"]
