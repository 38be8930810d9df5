#!/usr/bin/env python3
"""Thumbnail processor, written the way a student starting from the course's seed
code would: one Kafka consumer, one boto3 S3 client, Pillow for the resize, one image
at a time.

It follows the harness's processor contract: everything it needs comes from the
environment (KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC, KAFKA_GROUP_ID, S3_ENDPOINT,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, SOURCE_BUCKET, TARGET_BUCKET,
THUMBNAIL_WIDTH), and it writes the thumbnail of SOURCE_BUCKET/<key> to
TARGET_BUCKET/<key>, THUMBNAIL_WIDTH pixels wide, same format.

Offsets are committed by hand after the thumbnail is written, so a crash means the
event is processed again rather than lost (at-least-once; a redelivery may write a
second version, which the harness would report as a duplicate).

Needs: confluent-kafka, boto3, pillow (ci/setup puts them in ~/.cache/harness/venv).
Run by the harness: scenarios/compare/python-vs-reference/python.yaml.
"""
import io
import json
import os
import signal
import sys
import time
import urllib.parse

import boto3
from botocore.config import Config
from confluent_kafka import Consumer, KafkaException
from PIL import Image


def setting(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"processor: {name} is not set")
    return value


def make_thumbnail(data, width):
    """Returns (bytes, content type) of the image resized to `width`, same format."""
    img = Image.open(io.BytesIO(data))
    fmt = img.format  # JPEG or PNG
    height = max(1, round(img.height * width / img.width))
    if fmt == "JPEG" and img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    small = img.resize((width, height), Image.BILINEAR)
    out = io.BytesIO()
    if fmt == "JPEG":
        small.save(out, format="JPEG", quality=85)
    else:
        small.save(out, format="PNG")
    return out.getvalue(), Image.MIME.get(fmt, "application/octet-stream")


def keys_in(message_value, source_bucket):
    """Object keys of the 'object created' records of one MinIO event."""
    try:
        event = json.loads(message_value)
    except (TypeError, ValueError):
        print("processor: skipping a message that is not JSON", flush=True)
        return []
    keys = []
    for record in event.get("Records", []):
        if not record.get("eventName", "").startswith("s3:ObjectCreated:"):
            continue
        s3 = record.get("s3", {})
        if s3.get("bucket", {}).get("name") != source_bucket:
            continue
        # MinIO URL-encodes keys in events, with '+' for spaces.
        keys.append(urllib.parse.unquote_plus(s3["object"]["key"]))
    return keys


def main():
    width = int(setting("THUMBNAIL_WIDTH"))
    source, target = setting("SOURCE_BUCKET"), setting("TARGET_BUCKET")
    s3 = boto3.client(
        "s3",
        endpoint_url=setting("S3_ENDPOINT"),
        aws_access_key_id=setting("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=setting("AWS_SECRET_ACCESS_KEY"),
        region_name=setting("AWS_REGION"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
    )
    consumer = Consumer({
        "bootstrap.servers": setting("KAFKA_BOOTSTRAP_SERVERS"),
        "group.id": setting("KAFKA_GROUP_ID"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([setting("KAFKA_TOPIC")])

    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"processor: consuming {setting('KAFKA_TOPIC')}, writing {width}px thumbnails to {target}", flush=True)
    done = 0
    try:
        while running:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                print(f"processor: kafka error: {msg.error()}", flush=True)
                continue
            for key in keys_in(msg.value(), source):
                started = time.monotonic()
                try:
                    data = s3.get_object(Bucket=source, Key=key)["Body"].read()
                except s3.exceptions.NoSuchKey:
                    print(f"processor: {key} is gone, skipping", flush=True)
                    continue
                try:
                    body, content_type = make_thumbnail(data, width)
                except Exception as e:  # a broken image must not stop the consumer
                    print(f"processor: cannot resize {key}: {e}", flush=True)
                    continue
                s3.put_object(Bucket=target, Key=key, Body=body, ContentType=content_type)
                done += 1
                print(f"processor: wrote {key} ({len(body)} bytes, {1000 * (time.monotonic() - started):.0f} ms)", flush=True)
            try:
                consumer.commit(message=msg, asynchronous=False)
            except KafkaException as e:
                print(f"processor: commit failed, the event may come again: {e}", flush=True)
    finally:
        consumer.close()
        print(f"processor: stopped after {done} thumbnails", flush=True)


if __name__ == "__main__":
    main()
