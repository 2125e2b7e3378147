#!/usr/bin/env python3
"""Prints the shell commands of Markdown files' ```sh blocks, each ended by a NUL byte (`--lines`:
one per line): continuation lines joined, comments and blank lines dropped, a multi-line command
(a `for` loop) kept whole. `scripts/check-docs.sh` runs what this prints."""
import re
import subprocess
import sys


def complete(script):
    return subprocess.run(["bash", "-n", "-c", script], capture_output=True).returncode == 0


def commands(text):
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        pending = ""
        continued_before = False
        for raw in block.splitlines():
            line = raw.rstrip()
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            continued = line.endswith("\\")
            # A trailing comment starts at " #" (no command here has '#' inside quotes).
            code = re.split(r"\s+#", line.rstrip("\\"), maxsplit=1)[0].strip()
            pending = f"{pending}{' ' if continued_before else chr(10)}{code}".strip()
            continued_before = continued
            if not continued and complete(pending):
                out.append(pending)
                pending = ""
        if pending:
            out.append(pending)
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    end = "\n" if "--lines" in args else "\0"
    for path in (a for a in args if a != "--lines"):
        with open(path, encoding="utf-8") as f:
            for c in commands(f.read()):
                sys.stdout.write(c + end)
