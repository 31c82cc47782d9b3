"""Zip the Function App the way Core Tools' `func pack`/`func publish` does: every file under the repository root
except what `.funcignore` lists (gitignore syntax). Flex Consumption then builds it remotely (pip install -r
requirements.txt on Azure's Python 3.11 image), so no dependencies go into the zip.

    python infra/scripts/package_functions.py -o build/functionapp.zip   # prints files, bytes and the zip's size
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ("function_app.py", "host.json", "requirements.txt", "shared/__init__.py")


@dataclass(frozen=True)
class IgnoreRule:
    """One .funcignore line. Supported: `#` comments, a leading `/` (anchored at the root), a trailing `/`
    (directories only), `*`/`?`/`[...]` within one path segment. Negation (`!`) and `**` are refused rather than
    half-supported."""

    segments: tuple[str, ...]
    anchored: bool
    directory_only: bool

    @classmethod
    def parse(cls, line: str) -> IgnoreRule | None:
        text = line.strip()
        if not text or text.startswith("#"):
            return None
        if text.startswith("!") or "**" in text:
            raise ValueError(f".funcignore: unsupported pattern {text!r}")
        directory_only = text.endswith("/")
        body = text.strip("/")
        return cls(tuple(body.split("/")), text.startswith("/") or "/" in body, directory_only)

    def matches(self, path: PurePosixPath, *, is_dir: bool) -> bool:
        """Whether `path` (relative, posix) or one of its parent directories is ignored by this rule."""
        parts = path.parts
        n = len(self.segments)
        starts = [0] if self.anchored else range(len(parts) - n + 1)
        for start in starts:
            end = start + n
            if end > len(parts):
                continue
            # A match that ends before the last part is a parent directory; at the end, it is the path itself.
            names_match = all(fnmatchcase(parts[start + i], seg) for i, seg in enumerate(self.segments))
            if names_match and (not self.directory_only or end < len(parts) or is_dir):
                return True
        return False


def load_rules(text: str) -> list[IgnoreRule]:
    return [rule for line in text.splitlines() if (rule := IgnoreRule.parse(line)) is not None]


def is_ignored(path: PurePosixPath, rules: Iterable[IgnoreRule], *, is_dir: bool = False) -> bool:
    return any(rule.matches(path, is_dir=is_dir) for rule in rules)


def package_files(root: Path = ROOT) -> Iterator[PurePosixPath]:
    """Files that ship, relative to `root`, in a stable order."""
    ignore_file = root / ".funcignore"
    rules = load_rules(ignore_file.read_text(encoding="utf-8")) if ignore_file.is_file() else []
    for directory, dirnames, filenames in os.walk(root):
        rel_dir = PurePosixPath(Path(directory).relative_to(root).as_posix())
        dirnames[:] = sorted(d for d in dirnames if not is_ignored(rel_dir / d, rules, is_dir=True))
        for name in sorted(filenames):
            rel = rel_dir / name
            if not is_ignored(rel, rules) and not (Path(directory) / name).is_symlink():
                yield rel


def build_zip(output: Path, root: Path = ROOT) -> tuple[int, int]:
    """Write the package; returns (number of files, total uncompressed bytes)."""
    skip = output.resolve()
    files = [rel for rel in package_files(root) if (root / rel).resolve() != skip]
    missing = [name for name in REQUIRED if PurePosixPath(name) not in files]
    if missing:
        raise SystemExit(f"the package would miss {', '.join(missing)}: check .funcignore")
    output.parent.mkdir(parents=True, exist_ok=True)
    total = 0
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for rel in files:
            source = root / rel
            total += source.stat().st_size
            archive.write(source, str(rel))
    return len(files), total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "build" / "functionapp.zip")
    parser.add_argument("--list", action="store_true", help="print the files instead of zipping them")
    args = parser.parse_args(argv)
    if args.list:
        for rel in package_files():
            print(rel)
        return 0
    count, total = build_zip(args.output)
    size = args.output.stat().st_size
    print(f"{args.output}: {count} files, {total / 1024:.0f} KiB, zipped {size / 1024:.0f} KiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
