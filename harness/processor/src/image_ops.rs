//! Thumbnails: decode an image, resize it to a fixed width, encode it in its own format.

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::FilterType;
use image::{ColorType, DynamicImage, ImageFormat};

/// JPEG quality of thumbnails.
const JPEG_QUALITY: u8 = 85;
/// Thumbnails above this many pixels are refused: a 1 px wide, very tall source would
/// otherwise ask for gigabytes.
const MAX_OUTPUT_PIXELS: u64 = 64 * 1024 * 1024;

/// An encoded thumbnail.
#[derive(Debug)]
pub(crate) struct Thumbnail {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub content_type: &'static str,
}

/// Why an object cannot become a thumbnail. None of these is worth a retry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ThumbnailError {
    #[error("not a JPEG or PNG image")]
    UnknownFormat,
    #[error("{format:?} images are not supported")]
    Unsupported { format: ImageFormat },
    #[error("cannot decode: {0}")]
    Decode(image::ImageError),
    #[error("{width}x{height} is too large for a thumbnail")]
    TooLarge { width: u32, height: u32 },
    #[error("cannot encode: {0}")]
    Encode(image::ImageError),
}

impl ThumbnailError {
    /// A one-word reason for the `skip` log line.
    pub fn reason(&self) -> &'static str {
        match self {
            ThumbnailError::UnknownFormat | ThumbnailError::Unsupported { .. } => "not-an-image",
            ThumbnailError::Decode(_) => "corrupt-image",
            ThumbnailError::TooLarge { .. } => "too-large",
            ThumbnailError::Encode(_) => "encode-failed",
        }
    }
}

/// The height that keeps the aspect ratio at `target_width`: round(h * W / w), at
/// least 1.
pub(crate) fn scaled_height(width: u32, height: u32, target_width: u32) -> u32 {
    if width == 0 {
        return 1;
    }
    let (w, h, t) = (u64::from(width), u64::from(height), u64::from(target_width));
    let scaled = (h * t + w / 2) / w;
    u32::try_from(scaled.max(1)).unwrap_or(u32::MAX)
}

/// Makes the thumbnail of `source`: exactly `target_width` wide (scaling up if the
/// source is narrower), same aspect ratio, same format.
pub(crate) fn make_thumbnail(source: &[u8], target_width: u32) -> Result<Thumbnail, ThumbnailError> {
    let format = image::guess_format(source).map_err(|_| ThumbnailError::UnknownFormat)?;
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png) {
        return Err(ThumbnailError::Unsupported { format });
    }
    let img = image::load_from_memory_with_format(source, format).map_err(ThumbnailError::Decode)?;
    let height = scaled_height(img.width(), img.height(), target_width);
    if u64::from(target_width) * u64::from(height) > MAX_OUTPUT_PIXELS {
        return Err(ThumbnailError::TooLarge { width: target_width, height });
    }
    let resized = img.resize_exact(target_width, height, FilterType::Triangle);
    let mut bytes = Vec::new();
    let content_type = match format {
        ImageFormat::Png => {
            let encoder = PngEncoder::new_with_quality(&mut bytes, CompressionType::Fast, PngFilter::Adaptive);
            resized.write_with_encoder(encoder).map_err(ThumbnailError::Encode)?;
            "image/png"
        }
        _ => {
            // JPEG has no alpha and no 16-bit samples: keep grey as grey, else RGB.
            let jpeg_ready = match resized.color() {
                ColorType::L8 | ColorType::Rgb8 => resized,
                ColorType::L16 | ColorType::La8 | ColorType::La16 => DynamicImage::ImageLuma8(resized.to_luma8()),
                _ => DynamicImage::ImageRgb8(resized.to_rgb8()),
            };
            let encoder = JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY);
            jpeg_ready.write_with_encoder(encoder).map_err(ThumbnailError::Encode)?;
            "image/jpeg"
        }
    };
    Ok(Thumbnail { bytes, width: target_width, height, content_type })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GenericImageView, ImageBuffer, Rgb, Rgba};

    fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).expect("encode test image");
        out.into_inner()
    }

    fn gradient(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128])))
    }

    #[test]
    fn scaled_height_rounds_and_never_reaches_zero() {
        assert_eq!(scaled_height(640, 480, 128), 96);
        assert_eq!(scaled_height(300, 200, 128), 85); // 85.33
        assert_eq!(scaled_height(300, 202, 128), 86); // 86.19 -> 86
        assert_eq!(scaled_height(3, 2, 128), 85); // 85.33, upscaled
        assert_eq!(scaled_height(4, 3, 2), 2); // 1.5 rounds up
        assert_eq!(scaled_height(10_000, 1, 128), 1);
        assert_eq!(scaled_height(0, 5, 128), 1);
    }

    #[test]
    fn jpeg_keeps_aspect_exact_width_and_format() {
        let src = encode(&gradient(640, 480), ImageFormat::Jpeg);
        let t = make_thumbnail(&src, 128).expect("thumbnail");
        assert_eq!((t.width, t.height, t.content_type), (128, 96, "image/jpeg"));
        assert_eq!(image::guess_format(&t.bytes).expect("format"), ImageFormat::Jpeg);
        let back = image::load_from_memory(&t.bytes).expect("decodes");
        assert_eq!(back.dimensions(), (128, 96));
    }

    #[test]
    fn png_with_alpha_keeps_aspect_exact_width_and_format() {
        let img = DynamicImage::ImageRgba8(ImageBuffer::from_fn(301, 1000, |x, _| Rgba([0, 0, 0, (x % 256) as u8])));
        let src = encode(&img, ImageFormat::Png);
        let t = make_thumbnail(&src, 128).expect("thumbnail");
        assert_eq!((t.width, t.height, t.content_type), (128, 425, "image/png"));
        let back = image::load_from_memory_with_format(&t.bytes, ImageFormat::Png).expect("decodes");
        assert_eq!(back.dimensions(), (128, 425));
        assert!(back.color().has_alpha());
    }

    #[test]
    fn narrow_images_are_scaled_up_to_the_width() {
        let src = encode(&gradient(40, 30), ImageFormat::Png);
        let t = make_thumbnail(&src, 128).expect("thumbnail");
        assert_eq!((t.width, t.height), (128, 96));
    }

    #[test]
    fn grey_jpeg_stays_decodable() {
        let grey = DynamicImage::ImageLuma8(ImageBuffer::from_fn(200, 100, |x, _| image::Luma([(x % 256) as u8])));
        let t = make_thumbnail(&encode(&grey, ImageFormat::Jpeg), 50).expect("thumbnail");
        let back = image::load_from_memory(&t.bytes).expect("decodes");
        assert_eq!(back.dimensions(), (50, 25));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let err = make_thumbnail(b"definitely not an image", 128).expect_err("garbage");
        assert_eq!(err.reason(), "not-an-image");
        assert!(make_thumbnail(&[], 128).is_err());
    }

    #[test]
    fn truncated_images_are_errors_not_panics() {
        for format in [ImageFormat::Jpeg, ImageFormat::Png] {
            let src = encode(&gradient(320, 240), format);
            for cut in [8, 40] {
                let err = make_thumbnail(&src[..cut], 64).expect_err("truncated header");
                assert_eq!(err.reason(), "corrupt-image", "{format:?} cut at {cut}: {err}");
            }
            // Half a PNG is an error; the JPEG decoder pads missing scan data with
            // grey, so half a JPEG may decode. Neither may panic.
            let half = make_thumbnail(&src[..src.len() / 2], 64);
            if format == ImageFormat::Png {
                assert_eq!(half.expect_err("half a PNG").reason(), "corrupt-image");
            }
            // A corrupted middle decodes to something or fails; it must not panic.
            let mut bad = src.clone();
            let mid = bad.len() / 2;
            bad[mid..mid + 64].fill(0xFF);
            let _ = make_thumbnail(&bad, 64);
        }
    }

    #[test]
    fn huge_outputs_are_refused() {
        let src = encode(&gradient(1, 600_000), ImageFormat::Png);
        let err = make_thumbnail(&src, 16_384).expect_err("too large");
        assert_eq!(err.reason(), "too-large");
    }
}
