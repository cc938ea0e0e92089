#!/usr/bin/env python3
"""Runs Python Drain3 over a file of message contents (one per line) and prints lines
per second. Settings match the other two runs: similarity 0.4, depth 4, no cluster
limit, and the same four generic masks (UUID, IP with optional port, hex, number).

Usage: drain3_py.py FILE [--no-masks]
"""
import sys
import time

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig


def main():
    path = sys.argv[1]
    masks = "--no-masks" not in sys.argv[2:]
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    config = TemplateMinerConfig()
    config.drain_sim_th = 0.4
    config.drain_depth = 4
    config.drain_max_clusters = None
    config.profiling_enabled = False
    config.parametrize_numeric_tokens = True
    config.masking_instructions = (
        [
            MaskingInstruction(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "*"),
            MaskingInstruction(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d+)?", "*"),
            MaskingInstruction(r"0[xX][0-9a-fA-F]+", "*"),
            MaskingInstruction(r"\d+", "*"),
        ]
        if masks
        else []
    )
    # "<*>" masks, as the other two print them.
    config.mask_prefix = "<"
    config.mask_suffix = ">"
    miner = TemplateMiner(config=config)
    start = time.perf_counter()
    for line in lines:
        miner.add_log_message(line)
    secs = time.perf_counter() - start
    print(
        f"drain3-python masks={str(masks).lower()} lines={len(lines)} secs={secs:.3f} "
        f"lines_per_sec={len(lines) / secs:.0f} templates={len(miner.drain.clusters)}"
    )


if __name__ == "__main__":
    main()
