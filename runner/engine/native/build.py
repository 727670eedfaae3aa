"""Build the native executor with the distribution's C compiler, cached by source hash.

``python -m runner.engine.native.build`` builds it ahead (the set-up script does, so a first run
pays nothing); ``CC=aarch64-linux-gnu-gcc python -m runner.engine.native.build --static -o FILE``
cross-builds one for another architecture's guests. The cache key covers the source, the compiler
and the flags, so a changed executor.c or another compiler never reuses a stale binary.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from runner.errors import MmapconfError
from runner.lang import cache

SOURCE = Path(__file__).with_name("executor.c")
# Read once, at import: the binary is always built from the source that this process's compiler
# (program.py, imported with it) writes programs for, even if the file changes meanwhile.
SOURCE_TEXT = SOURCE.read_bytes()
FLAGS = ("-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror")


class BuildError(MmapconfError):
    """The native executor could not be built (no C compiler, or it refused the source)."""


def cache_dir() -> Path:
    return cache.root() / "native"


def compiler() -> list[str]:
    cc = shlex.split(os.environ.get("CC") or "cc")
    if not cc or shutil.which(cc[0]) is None:
        raise BuildError(
            f"no C compiler ({' '.join(cc) or 'CC is empty'}) for the native executor: "
            "install gcc (scripts/setup.sh does)"
        )
    return cc


def build(output: Path, static: bool = False, cc: list[str] | None = None) -> Path:
    """Compile executor.c to ``output`` (atomically: a concurrent build never sees half a file)
    with CC (default: $CC or cc)."""
    cc = cc or compiler()
    flags = [*FLAGS, *(["-static"] if static else [])]
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".mmapconf-exec.", dir=output.parent)
    os.close(fd)
    try:
        done = subprocess.run(
            [*cc, *flags, "-x", "c", "-o", tmp, "-"],
            input=SOURCE_TEXT,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            errors = done.stderr.decode(errors="replace")[-4000:]
            raise BuildError(f"{' '.join(cc)} could not build {SOURCE}:\n{errors}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return output


def executor_path(static: bool = True, cc: list[str] | None = None) -> Path:
    """The built executor for this source and compiler (CC, default $CC or cc), built on first
    use; in a guest of another architecture, the one the host cross-built for it
    (MMAPCONF_NATIVE_EXECUTOR). Linked statically by default, the host's fork server too: each
    fork of it then copies fewer mappings, and no forked process binds its library calls
    lazily (a one-process case-run about 8% faster, interleaved A/B); a guest's is the same
    file."""
    given = os.environ.get("MMAPCONF_NATIVE_EXECUTOR")
    if given:
        return Path(given)
    cc = cc or compiler()
    key = hashlib.sha256()
    key.update(SOURCE_TEXT)
    key.update(repr((cc, FLAGS, static, _compiler_id(tuple(cc)))).encode())
    path = cache_dir() / key.hexdigest()[:16] / "mmapconf-exec"
    if not path.exists():
        build(path, static, cc)
    return path


@functools.cache
def _compiler_id(cc: tuple[str, ...]) -> str:
    """The compiler's target and version: the same name may be another compiler elsewhere.
    Asked once per process (two runs of the compiler): the harness asks before it forks its
    ``-n`` workers, which start their own fork servers."""
    try:
        out = subprocess.run([*cc, "-dumpmachine"], capture_output=True, text=True, check=False)
        ver = subprocess.run([*cc, "-dumpversion"], capture_output=True, text=True, check=False)
    except OSError as e:
        raise BuildError(f"{cc[0]}: {e}") from None
    return f"{out.stdout.strip()} {ver.stdout.strip()}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Build mmapconf's native executor (cached).")
    p.add_argument("-o", "--output", help="write it here instead of the cache")
    p.add_argument("--static", action="store_true", help="with -o: link statically (for guests)")
    args = p.parse_args(argv)
    try:
        path = build(Path(args.output), args.static) if args.output else executor_path(args.static)
    except BuildError as e:
        print(f"mmapconf: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
