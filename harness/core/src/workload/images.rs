//! Deterministic test images: the same seed gives the same bytes.
//!
//! Smooth gradients with a few solid shapes: cheap to encode (so generation keeps up
//! with the upload rate on two cores) and visibly different from image to image.

use std::io::Cursor;

use harness_model::rng::Rng;
use harness_model::scenario::{Format, HostileKind};
use harness_model::workload::PlannedUpload;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ImageEncoder, RgbImage};

pub struct GeneratedImage {
    pub plan: PlannedUpload,
    pub bytes: Vec<u8>,
}

/// The `oversized` hostile input's size: 100 MB.
pub const OVERSIZED_BYTES: usize = 100_000_000;

pub fn generate(plan: &PlannedUpload) -> Result<GeneratedImage, image::ImageError> {
    let bytes = match plan.hostile {
        Some(HostileKind::NotAnImage) => b"This is not an image, whatever its name says.\n".repeat(20),
        Some(HostileKind::Empty) => Vec::new(),
        Some(HostileKind::TruncatedJpeg) => {
            let mut whole = encode(plan)?;
            whole.truncate(whole.len() / 2);
            whole
        }
        Some(HostileKind::Huge | HostileKind::LongKey) | None => encode(plan)?,
        Some(HostileKind::Oversized) => {
            // A JPEG's first marker, then zeros: a format sniffer says JPEG.
            let mut bytes = vec![0u8; OVERSIZED_BYTES];
            bytes[..4].copy_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
            bytes
        }
    };
    Ok(GeneratedImage { plan: plan.clone(), bytes })
}

fn encode(plan: &PlannedUpload) -> Result<Vec<u8>, image::ImageError> {
    let (w, h) = (plan.size.width, plan.size.height);
    let mut rng = Rng::new(plan.pixel_seed);
    let base = [rng.below(256) as u8, rng.below(256) as u8, rng.below(256) as u8];
    let mut img = RgbImage::from_fn(w, h, |x, y| {
        let fx = (x * 255 / w.max(1)) as u8;
        let fy = (y * 255 / h.max(1)) as u8;
        image::Rgb([base[0].wrapping_add(fx), base[1].wrapping_add(fy), base[2].wrapping_add(fx / 2 + fy / 2)])
    });
    for _ in 0..3 {
        let (rw, rh) = (1 + rng.below(u64::from(w / 3 + 1)) as u32, 1 + rng.below(u64::from(h / 3 + 1)) as u32);
        let (rx, ry) = (rng.below(u64::from(w)) as u32, rng.below(u64::from(h)) as u32);
        let colour = image::Rgb([rng.below(256) as u8, rng.below(256) as u8, rng.below(256) as u8]);
        for y in ry..(ry + rh).min(h) {
            for x in rx..(rx + rw).min(w) {
                img.put_pixel(x, y, colour);
            }
        }
    }
    let mut out = Cursor::new(Vec::with_capacity((w * h) as usize / 4));
    match plan.format {
        Format::Jpeg => JpegEncoder::new_with_quality(&mut out, 85).write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)?,
        Format::Png => PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub).write_image(
            img.as_raw(),
            w,
            h,
            image::ExtendedColorType::Rgb8,
        )?,
    }
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness_model::scenario::ImageSize;
    use std::time::Duration;

    fn plan(format: Format, seed: u64) -> PlannedUpload {
        PlannedUpload {
            index: 0,
            key: "k".into(),
            size: ImageSize { width: 64, height: 40 },
            format,
            pixel_seed: seed,
            due: Duration::ZERO,
            hostile: None,
        }
    }

    #[test]
    fn hostile_inputs_are_what_they_say() {
        let mut p = plan(Format::Jpeg, 5);
        let whole = generate(&p).unwrap().bytes;
        p.hostile = Some(HostileKind::TruncatedJpeg);
        let cut = generate(&p).unwrap().bytes;
        assert_eq!(cut.len(), whole.len() / 2);
        assert_eq!(cut[..], whole[..cut.len()], "a prefix of the real image");
        p.hostile = Some(HostileKind::Empty);
        assert!(generate(&p).unwrap().bytes.is_empty());
        p.hostile = Some(HostileKind::NotAnImage);
        assert!(image::load_from_memory(&generate(&p).unwrap().bytes).is_err());
    }

    #[test]
    fn images_decode_to_their_planned_size_and_are_deterministic() {
        for f in [Format::Jpeg, Format::Png] {
            let a = generate(&plan(f, 1)).unwrap();
            let img = image::load_from_memory(&a.bytes).unwrap();
            assert_eq!((img.width(), img.height()), (64, 40));
            assert_eq!(a.bytes, generate(&plan(f, 1)).unwrap().bytes);
            assert_ne!(a.bytes, generate(&plan(f, 2)).unwrap().bytes);
        }
    }
}
