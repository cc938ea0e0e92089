#!/usr/bin/env python3
"""Writes N lines of log message content (default 1,000,000) by repeating the Content
column of every Loghub-2k dataset in DATA, in dataset order. The data is research-use
only, so the output goes under bench/out/ (git-ignored), never into the repository.

Usage: make_input.py DATA OUT [N]
"""
import csv
import os
import sys


def main():
    data, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    contents = []
    for name in sorted(os.listdir(data)):
        path = os.path.join(data, name, f"{name}_2k.log_structured_corrected.csv")
        if os.path.isfile(path):
            with open(path, newline="", encoding="utf-8") as f:
                contents += [row["Content"].replace("\n", " ") for row in csv.DictReader(f)]
    if not contents:
        sys.exit(f"no *_2k.log_structured_corrected.csv under {data}")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(contents[i % len(contents)])
            f.write("\n")


if __name__ == "__main__":
    main()
