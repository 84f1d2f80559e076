//! QR symbols: render `HZ1:` text as PNG, SVG or terminal blocks, and read it back from an
//! image. Pure computation on bytes (no files): callers read and write them.
//!
//! Reading is bounded: the encoded image is at most `IMAGE_BYTES_MAX`, its decoded size at
//! most `IMAGE_PIXELS_MAX`, and the decoder's allocations are capped, so a hostile upload
//! (a PNG that claims to be 100k × 100k) is refused before it is inflated.

use std::io::Cursor;

use image::{ImageReader, Luma};
use qrcode::{EcLevel, QrCode, Version};

/// Uploaded photos of a QR on a phone are a few MB at most.
pub const IMAGE_BYTES_MAX: usize = 10 * 1024 * 1024;
/// No side longer than this: a panorama or a scan at 1200 dpi is not a QR photo.
pub const IMAGE_DIMENSION_MAX: u32 = 6000;
/// 16 megapixels: a 12 MP phone photo with room, refused above before decoding. Decoding
/// cost grows with the pixels; a QR needs far fewer.
pub const IMAGE_PIXELS_MAX: u64 = 16_000_000;
/// The decoder's allocations for one image (an RGBA buffer of `IMAGE_PIXELS_MAX` is 64 MB).
pub const IMAGE_ALLOC_BYTES_MAX: u64 = 96 * 1024 * 1024;
/// Photos with a longer side are searched for the QR at this size, never at full size: a
/// QR that fills a quarter of a 4000-pixel photo still has six pixels per module at 1600.
/// The bound matters more than the pixels saved: rqrr's finder search grows much faster
/// than the picture on noisy input (measured: a 1600 × 1333 noise picture 0.2 s, a
/// 2400 × 2000 one 224 s).
pub const SEARCH_SIDE_PX: u32 = 1600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    #[error("the text does not fit in a QR code: {0}")]
    TooLong(String),
    #[error("the image is {bytes} bytes; at most {IMAGE_BYTES_MAX}")]
    ImageTooLarge { bytes: usize },
    #[error("the file is not a readable PNG or JPEG image: {0}")]
    Image(String),
    #[error("no QR code was found in the image")]
    NotFound,
    #[error("a QR code was found but could not be read: {0}")]
    Unreadable(String),
}

/// The QR symbol Huren uses: error correction level M, the smallest version that fits.
pub fn encode(text: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| QrError::TooLong(e.to_string()))
}

/// The QR version (1-40) a text needs at level M.
pub fn version(text: &str) -> Result<i16, QrError> {
    Ok(match encode(text)?.version() {
        Version::Normal(v) | Version::Micro(v) => v,
    })
}

/// PNG bytes with `module_px` pixels per module and the standard 4-module quiet zone.
pub fn png(text: &str, module_px: u32) -> Result<Vec<u8>, QrError> {
    let code = encode(text)?;
    let img = code
        .render::<Luma<u8>>()
        .module_dimensions(module_px, module_px)
        .quiet_zone(true)
        .build();
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| QrError::Image(e.to_string()))?;
    Ok(out)
}

/// An SVG document of the QR, `size_px` wide at least.
pub fn svg(text: &str, size_px: u32) -> Result<String, QrError> {
    let code = encode(text)?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(size_px, size_px)
        .quiet_zone(true)
        .build())
}

/// The QR as Unicode half blocks, two modules per character cell, for a terminal.
pub fn terminal(text: &str) -> Result<String, QrError> {
    let code = encode(text)?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// Reads the first QR code found in a PNG or JPEG image.
pub fn decode_image(bytes: &[u8]) -> Result<String, QrError> {
    if bytes.len() > IMAGE_BYTES_MAX {
        return Err(QrError::ImageTooLarge { bytes: bytes.len() });
    }
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| QrError::Image(e.to_string()))
    };
    // The header says how big the picture is: refuse a bomb before inflating it.
    let (w, h) = reader()?
        .into_dimensions()
        .map_err(|e| QrError::Image(e.to_string()))?;
    if u64::from(w) * u64::from(h) > IMAGE_PIXELS_MAX {
        return Err(QrError::Image(format!(
            "{w} × {h} pixels; at most {IMAGE_PIXELS_MAX} (a phone photo is about 12 million)"
        )));
    }
    let mut reader = reader()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(IMAGE_DIMENSION_MAX);
    limits.max_image_height = Some(IMAGE_DIMENSION_MAX);
    limits.max_alloc = Some(IMAGE_ALLOC_BYTES_MAX);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| QrError::Image(e.to_string()))?
        .to_luma8();
    // Large photos are searched at search size only (see SEARCH_SIDE_PX); small images as
    // they are.
    let (w, h) = img.dimensions();
    let side = w.max(h);
    if side > SEARCH_SIDE_PX {
        let scale = f64::from(SEARCH_SIDE_PX) / f64::from(side);
        let small = image::imageops::resize(
            &img,
            ((f64::from(w) * scale) as u32).max(1),
            ((f64::from(h) * scale) as u32).max(1),
            image::imageops::FilterType::Triangle,
        );
        return search(small);
    }
    search(img)
}

fn search(img: image::GrayImage) -> Result<String, QrError> {
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    let mut last_err = None;
    for g in grids {
        match g.decode() {
            Ok((_, content)) => return Ok(content),
            Err(e) => last_err = Some(e.to_string()),
        }
    }
    Err(last_err.map_or(QrError::NotFound, QrError::Unreadable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip() {
        let text = "HZ1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDEXWK G2EP4J0BGJLFX3R3VHXK.PJ:2DPF6R:5SVBHABVCNN95SWMPHQUHQN%A0SOE+QQAB-HQ/HQ7IR.SQEEOK9SAI4- 7Y15KBPD34  QWSP0WRGTQFNPLIR.KQJA3";
        let png = png(text, 4).expect("png");
        assert_eq!(decode_image(&png).expect("decode"), text);
        assert!(version(text).expect("version") <= 12);
    }

    #[test]
    fn bad_images_are_errors() {
        assert!(matches!(
            decode_image(b"not an image"),
            Err(QrError::Image(_))
        ));
        assert!(matches!(
            decode_image(&vec![0u8; IMAGE_BYTES_MAX + 1]),
            Err(QrError::ImageTooLarge { .. })
        ));
        // A blank white PNG has no QR in it.
        let blank = image::GrayImage::from_pixel(64, 64, Luma([255]));
        let mut out = Vec::new();
        blank
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .expect("png");
        assert_eq!(decode_image(&out), Err(QrError::NotFound));
        // A PNG header claiming a 100000 x 100000 image is refused by the limits.
        let mut bomb = out.clone();
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(decode_image(&bomb).is_err());
    }

    fn encode_png(img: &image::GrayImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .expect("png");
        out
    }

    #[test]
    fn a_picture_over_the_pixel_cap_is_refused_from_its_header() {
        // 4500 × 4000 = 18 MP: within the side limit, over the pixel cap. The PNG of a
        // white picture is small; only the header is read before refusing it.
        let big = image::GrayImage::from_pixel(4500, 4000, Luma([255]));
        let e = decode_image(&encode_png(&big)).expect_err("refused");
        assert!(e.to_string().contains("at most 16000000"), "{e}");
    }

    #[test]
    fn a_large_photo_is_read_at_search_size() {
        // A QR drawn at 8 px per module in the corner of a 3000 × 2400 picture.
        let text = "HZ1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDEXWK G2EP4J0BGJLFX3R3VHXK.PJ:2DPF6R:5SVBHABVCNN95SWMPHQUHQN%A0SOE+QQAB-HQ/HQ7IR.SQEEOK9SAI4- 7Y15KBPD34  QWSP0WRGTQFNPLIR.KQJA3";
        let qr = image::load_from_memory(&png(text, 8).expect("png"))
            .expect("decode")
            .to_luma8();
        let mut photo = image::GrayImage::from_pixel(3000, 2400, Luma([230]));
        image::imageops::overlay(&mut photo, &qr, 200, 300);
        assert_eq!(decode_image(&encode_png(&photo)).expect("read"), text);
    }
}
