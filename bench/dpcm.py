"""GE DPCM decoding: the vectorised decoder against a plain per-byte Python loop, same run.

The loop is the algorithm of ge-genesis.md 7.4 written the obvious way; it is the reference
both for speed (the ratio printed) and for correctness (the outputs must be equal).

    python bench/dpcm.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.formats.ge import pixels  # noqa: E402

SAMPLES = next((p / "shared" / "samples" for p in Path(__file__).resolve().parents
                if (p / "shared" / "samples").is_dir()), Path("shared/samples"))


def loop_decode(data: bytes, offset: int, count: int) -> np.ndarray:
    out = np.empty(count, dtype=np.uint16)
    p, i = 0, offset
    for k in range(count):
        b0 = data[i]
        if b0 < 0x80:
            p = (p + (b0 if b0 < 0x40 else b0 - 0x80)) & 0xFFFF
            i += 1
        elif b0 < 0xC0:
            d = ((b0 & 0x3F) << 8) | data[i + 1]
            p = (p + (d - 0x4000 if d >= 0x2000 else d)) & 0xFFFF
            i += 2
        else:
            p = (data[i + 1] << 8) | data[i + 2]
            i += 3
        out[k] = p
    return out.view(np.int16)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    data = (SAMPLES / "ge_genesis" / "E07733S002I009.MR").read_bytes()
    fast = pixels.dpcm(data, 8412, 256, 256).ravel()
    slow = loop_decode(data, 8412, 256 * 256)
    if not np.array_equal(fast, slow):
        print("MISMATCH between the vectorised decoder and the loop")
        return 1
    t_loop = best(lambda: loop_decode(data, 8412, 256 * 256), max(3, args.repeat // 5))
    t_fast = best(lambda: pixels.dpcm(data, 8412, 256, 256), args.repeat)
    stream = np.frombuffer(data, dtype=np.uint8, offset=8412)
    t_scan = best(lambda: pixels._scan_starts(stream), max(3, args.repeat // 5))
    print("E07733S002I009.MR, 256x256, 74786-byte stream")
    print(f"  per-byte Python loop     {t_loop * 1e3:8.2f} ms")
    print(f"  vectorised (sync walk)   {t_fast * 1e3:8.2f} ms   {t_loop / t_fast:5.1f}x faster")
    print(f"  fallback scan, starts    {t_scan * 1e3:8.2f} ms   (used only for streams without sync points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
