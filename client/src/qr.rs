//! `huren qr render | decode`, and the QR image files other commands write.
//!
//! Rendering and decoding are `huren_render::qr`; this module only reads and writes the
//! files, with the image size bound checked before the image is read.

use std::path::Path;

use huren_core::credential::QR_TEXT_CHARS_MAX;
use huren_render::qr::{self, QrError, IMAGE_BYTES_MAX};

use crate::args::{DecodeArgs, QrFiles, RenderArgs};
use crate::exit::{fail, Exit};
use crate::files;

/// Pixels per module in PNGs written by `issue`: a version-12 QR comes out about 600 px
/// wide, sharp on a phone screen and on a 300 dpi print.
pub const PNG_MODULE_PX: u32 = 8;
/// Minimum SVG width; SVG scales, so this only sets the default display size.
pub const SVG_SIZE_PX: u32 = 512;

fn qr_error(e: QrError) -> anyhow::Error {
    fail(Exit::DATA, e)
}

/// Writes the PNG and SVG files asked for with `--png` / `--svg`.
pub fn write_files(text: &str, out: &QrFiles) -> anyhow::Result<()> {
    if let Some(p) = &out.png {
        let png = qr::png(text, PNG_MODULE_PX).map_err(qr_error)?;
        files::write_file(p, &png, out.force, "PNG")?;
    }
    if let Some(p) = &out.svg {
        let svg = qr::svg(text, SVG_SIZE_PX).map_err(qr_error)?;
        files::write_file(p, svg.as_bytes(), out.force, "SVG")?;
    }
    Ok(())
}

/// Fails early if an output file exists without `--force`, so that nothing irreversible
/// (issuing on a node) happens before the command discovers it cannot save its result.
pub fn check_files(out: &QrFiles) -> anyhow::Result<()> {
    for p in [&out.png, &out.svg].into_iter().flatten() {
        files::check_new(p, out.force)?;
    }
    Ok(())
}

/// Reads the QR text in an image file: unreadable file → 66, no QR in it → 65.
pub fn read_image(path: &Path) -> anyhow::Result<String> {
    let bytes = files::read_bounded(path, IMAGE_BYTES_MAX, "image")?;
    qr::decode_image(&bytes).map_err(|e| fail(Exit::DATA, format!("{}: {e}", path.display())))
}

pub fn render(a: RenderArgs) -> anyhow::Result<Exit> {
    let text = if a.text == "-" {
        files::read_stdin_line(QR_TEXT_CHARS_MAX)?
    } else {
        a.text
    };
    if let Some(p) = &a.png {
        let png = qr::png(&text, a.module_px).map_err(qr_error)?;
        files::write_file(p, &png, a.force, "PNG")?;
    }
    if let Some(p) = &a.svg {
        let svg = qr::svg(&text, SVG_SIZE_PX).map_err(qr_error)?;
        files::write_file(p, svg.as_bytes(), a.force, "SVG")?;
    }
    if a.terminal {
        files::print_line(&qr::terminal(&text).map_err(qr_error)?)?;
    }
    Ok(Exit::OK)
}

pub fn decode(a: DecodeArgs) -> anyhow::Result<Exit> {
    let text = read_image(&a.image)?;
    files::print_line(&text)?;
    Ok(Exit::OK)
}
