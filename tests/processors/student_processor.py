#!/usr/bin/env python3
"""A thumbnail processor written the way a student would, following the harness's
processor contract (environment variables KAFKA_*, S3_ENDPOINT, AWS_*, *_BUCKET,
THUMBNAIL_WIDTH).

The tests use it to prove that the harness catches broken processors:
  --skip-every N         drop the events of keys whose CRC-32 is divisible by N
  --write-twice-every N  write the thumbnail of those keys twice (two versions)
  --stall-after N        stop consuming after N messages, but stay alive and in
                         the group (a stuck processor: a backlog, not a loss)
  --crash-on-bad-image   let a decoding error end the process (no try/except)
  --commit-first-crash-every N
                         commit each event's offset before writing its thumbnail,
                         and die (exit 1) between the commit and the write for the
                         keys selected as above: each such key is lost for good
Without flags it is a plain, reasonably correct processor.

Needs: confluent-kafka, boto3, pillow (ci/setup installs them into a venv).
"""
import argparse
import io
import json
import os
import signal
import sys
import time
import urllib.parse
import zlib

import boto3
from botocore.config import Config
from confluent_kafka import Consumer
from PIL import Image


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"student_processor: environment variable {name} is not set")
    return value


def selected(key, every):
    return every > 0 and zlib.crc32(key.encode("utf-8")) % every == 0


def thumbnail(data, width):
    img = Image.open(io.BytesIO(data))
    fmt = img.format or "PNG"
    height = max(1, round(img.height * width / img.width))
    small = img.convert("RGB").resize((width, height))
    out = io.BytesIO()
    small.save(out, format=fmt)
    return out.getvalue(), Image.MIME.get(fmt, "application/octet-stream")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-every", type=int, default=0)
    parser.add_argument("--write-twice-every", type=int, default=0)
    parser.add_argument("--stall-after", type=int, default=0)
    parser.add_argument("--crash-on-bad-image", action="store_true")
    parser.add_argument("--commit-first-crash-every", type=int, default=0)
    args = parser.parse_args()

    width = int(env("THUMBNAIL_WIDTH"))
    source, target = env("SOURCE_BUCKET"), env("TARGET_BUCKET")
    s3 = boto3.client(
        "s3",
        endpoint_url=env("S3_ENDPOINT"),
        aws_access_key_id=env("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env("AWS_SECRET_ACCESS_KEY"),
        region_name=env("AWS_REGION"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )
    config = {
        "bootstrap.servers": env("KAFKA_BOOTSTRAP_SERVERS"),
        "group.id": env("KAFKA_GROUP_ID"),
        "auto.offset.reset": "earliest",
    }
    commit_first = args.commit_first_crash_every > 0
    if commit_first:
        # Commits by hand, before the work; a short session so that the group
        # gets the partitions back soon after a crash.
        config.update({"enable.auto.commit": False, "session.timeout.ms": 6000})
    consumer = Consumer(config)
    consumer.subscribe([env("KAFKA_TOPIC")])

    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("student_processor: consuming", flush=True)
    handled = 0
    try:
        while running:
            if args.stall_after and handled >= args.stall_after:
                # Stuck, but alive: no poll, so nothing more is stored or committed.
                time.sleep(0.2)
                continue
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            handled += 1
            if commit_first:
                consumer.commit(message=msg, asynchronous=False)
            try:
                event = json.loads(msg.value())
            except ValueError:
                print("student_processor: not JSON, skipped", flush=True)
                continue
            for record in event.get("Records", []):
                if not record.get("eventName", "").startswith("s3:ObjectCreated:"):
                    continue
                if record["s3"]["bucket"]["name"] != source:
                    continue
                key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
                if selected(key, args.skip_every):
                    print(f"student_processor: skipping {key}", flush=True)
                    continue
                if selected(key, args.commit_first_crash_every):
                    print(f"student_processor: dying after committing {key}", flush=True)
                    os._exit(1)
                data = s3.get_object(Bucket=source, Key=key)["Body"].read()
                if args.crash_on_bad_image:
                    body, content_type = thumbnail(data, width)
                    copies = 2 if selected(key, args.write_twice_every) else 1
                    for _ in range(copies):
                        s3.put_object(Bucket=target, Key=key, Body=body, ContentType=content_type)
                    print(f"student_processor: wrote {key} x{copies}", flush=True)
                    continue
                try:
                    body, content_type = thumbnail(data, width)
                except Exception as e:  # a corrupt image must not stop the consumer
                    print(f"student_processor: cannot resize {key}: {e}", flush=True)
                    continue
                copies = 2 if selected(key, args.write_twice_every) else 1
                for _ in range(copies):
                    s3.put_object(Bucket=target, Key=key, Body=body, ContentType=content_type)
                print(f"student_processor: wrote {key} x{copies}", flush=True)
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
