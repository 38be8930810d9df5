//! The bare thumbnail rate on one core: decode + resize + encode, no Kafka, no S3.
//! Images like the harness's workload: 640x480 gradients with solid rectangles,
//! JPEG (quality 85) and PNG (fast compression).

use std::io::Cursor;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ImageEncoder, RgbImage};

fn source(w: u32, h: u32, seed: u32, png: bool) -> Vec<u8> {
    let mut img = RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = ((x * 255 / w) as u8, (y * 255 / h) as u8);
        image::Rgb([fx.wrapping_add(seed as u8), fy, fx / 2 + fy / 2])
    });
    for i in 0..3u32 {
        let (rx, ry) = ((seed * 97 + i * 131) % w, (seed * 53 + i * 71) % h);
        for y in ry..(ry + h / 4).min(h) {
            for x in rx..(rx + w / 4).min(w) {
                img.put_pixel(x, y, image::Rgb([(i * 80) as u8, 200, (seed * 31) as u8]));
            }
        }
    }
    let mut out = Cursor::new(Vec::new());
    let raw = img.as_raw();
    if png {
        PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub).write_image(
            raw,
            w,
            h,
            image::ExtendedColorType::Rgb8,
        )
    } else {
        JpegEncoder::new_with_quality(&mut out, 85).write_image(raw, w, h, image::ExtendedColorType::Rgb8)
    }
    .expect("encode");
    out.into_inner()
}

fn bench(c: &mut Criterion) {
    let images: Vec<Vec<u8>> = (0..20).map(|i| source(640, 480, i, i % 2 == 1)).collect();
    let mut g = c.benchmark_group("thumbnail");
    g.throughput(Throughput::Elements(images.len() as u64));
    g.bench_function("640x480 jpeg+png to 128 wide (20 images)", |b| {
        b.iter(|| {
            for img in &images {
                black_box(harness_processor::thumbnail(black_box(img), 128).expect("thumbnail"));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
