#!/usr/bin/env python3
"""The machine's bare decode + resize + encode rate with Pillow, no Kafka, no S3: the
ceiling a one-image-at-a-time Python processor can reach.

Images like the harness's workload (640x480 gradients with solid rectangles, JPEG
quality 85 and PNG, alternating), resized to 128 px wide as processor.py does.

  python3 examples/python-processor/bare_resize.py [SECONDS] [WIDTHxHEIGHT]
"""
import io
import random
import sys
import time

from PIL import Image, ImageDraw

from processor import make_thumbnail


def images(size, count=20):
    w, h = size
    rng = random.Random(1)
    out = []
    for i in range(count):
        base = [rng.randrange(256) for _ in range(3)]
        img = Image.new("RGB", (w, h))
        px = img.load()
        for y in range(h):
            fy = y * 255 // h
            for x in range(w):
                fx = x * 255 // w
                px[x, y] = ((base[0] + fx) % 256, (base[1] + fy) % 256, (base[2] + fx // 2 + fy // 2) % 256)
        d = ImageDraw.Draw(img)
        for _ in range(3):
            x, y = rng.randrange(w), rng.randrange(h)
            d.rectangle([x, y, x + rng.randrange(w // 3 + 1), y + rng.randrange(h // 3 + 1)],
                        fill=tuple(rng.randrange(256) for _ in range(3)))
        buf = io.BytesIO()
        if i % 2 == 0:
            img.save(buf, format="JPEG", quality=85)
        else:
            img.save(buf, format="PNG", compress_level=1)
        out.append(buf.getvalue())
    return out


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    size = tuple(int(v) for v in (sys.argv[2] if len(sys.argv) > 2 else "640x480").split("x"))
    data = images(size)
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        make_thumbnail(data[n % len(data)], 128)
        n += 1
    elapsed = time.perf_counter() - start
    print(f"pillow: {n} thumbnails of {size[0]}x{size[1]} JPEG/PNG in {elapsed:.1f} s: {n / elapsed:.1f} images/s on one core")


if __name__ == "__main__":
    main()
