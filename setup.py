"""The wheel carries the catalogue: cases/ (with schema.json) and baselines/ go in as package
data under runner/shipped/ at build time, while the source tree keeps them at the top
(runner/lang/shipped.py finds either). Everything else is in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup  # type: ignore[import-untyped]
from setuptools.command.build_py import build_py  # type: ignore[import-untyped]

SHIPPED = {"cases": ("**/*.yaml", "schema.json", "README.md"), "baselines": ("*.yaml",)}


class BuildWithCatalogue(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the source tree itself
            return
        for folder, patterns in SHIPPED.items():
            for pattern in patterns:
                for src in sorted(Path(folder).glob(pattern)):
                    dest = Path(self.build_lib, "runner", "shipped", src)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, dest)


setup(cmdclass={"build_py": BuildWithCatalogue})
