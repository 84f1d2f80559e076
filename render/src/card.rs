//! The citizen's printable licence card: one genuine credential drawn as an SVG of an
//! ID-1 card (85.6 × 54 mm), as an HTML page that prints exactly that card, and as a
//! 300 dpi PNG.
//!
//! A `Card` is made only from a `GenuineCredential`, which only a verification decision of
//! `huren_core::verify` hands out (origin proven by the issuer's key in genesis or by its
//! ledger, issuer allowed to issue that type in that region), together with the QR text
//! of exactly that credential: these functions cannot dress a forged QR up as an official
//! card, and check no trust themselves. Whether the licence is still good today (expiry,
//! suspension, revocation) is the caller's decision, from the same verdict, because only
//! the caller knows the time and, on a node, the ledger.
//!
//! Everything the credential carries is untrusted text. It is escaped for XML and HTML,
//! stripped of bidirectional-override characters (which could make a value read
//! differently from what was signed), and fitted to its box: shrunk a little, then cut
//! with "…". The card never has to show everything, because the QR, which is what a
//! service window scans, always carries the whole signed credential.
//!
//! No I/O here: the PNG renderer takes a `fontdb::Database` the caller filled (with
//! `crate::fonts::load`), so rendering itself never touches the disk.

use std::fmt::Write as _;
use std::sync::Arc;

use qrcode::Color;
use resvg::{tiny_skia, usvg};

use huren_core::credential::{qr_to_cose, Credential};
use huren_core::{GenuineCredential, Hash32};

use crate::fonts::{family_in, fontdb, FONT_FAMILIES};

use crate::qr::{self, QrError};

// ---------------------------------------------------------------------------------------
// Size and layout
//
// Why ID-1 rather than A6: it is the size of the resident identity card and of bank
// cards, so the printed licence fits a wallet, a card sleeve and a standard 65 × 95 mm
// laminating pouch, and a copy shop prints it on card stock without adjustment. It is
// also big enough for what matters: the QR gets a 38.5 mm square (quiet zone included),
// so the version-12 symbol of a typical driving licence has 0.53 mm modules, nearly twice
// what a phone camera or a window's handheld scanner needs from paper. A6 would double
// the paper without making the scan any better.

/// Card width and height in millimetres (ISO/IEC 7810 ID-1).
pub const CARD_WIDTH_MM: f32 = 85.6;
pub const CARD_HEIGHT_MM: f32 = 54.0;
/// ISO/IEC 7810 corner radius.
const CORNER_MM: f32 = 3.18;
/// The QR's square on the card, its 4-module quiet zone included.
pub const QR_SIZE_MM: f32 = 38.5;
// Scanning from paper needs at least 35 mm, quiet zone included.
const _: () = assert!(QR_SIZE_MM >= 35.0);
/// Below this module size a QR printed at home no longer scans reliably (ink spread on
/// plain paper, phone cameras at arm's length). 0.30 mm allows up to version 25, about
/// three times the text of a typical credential.
pub const QR_MODULE_MM_MIN: f32 = 0.30;
/// PNG resolution: what print shops and photo printers expect.
pub const PNG_DPI: f32 = 300.0;

/// Bound on an SVG handed to `png`: a card is about 30 KiB, so this is generous.
pub const SVG_BYTES_MAX: usize = 1024 * 1024;
/// Bound on either side of a rendered PNG, in pixels (a card at 300 dpi is 1011 × 638).
pub const PNG_SIDE_PX_MAX: u32 = 4096;

// Colours: a dark blue band and ink that photocopies well; nothing relies on colour.
const ACCENT: &str = "#17467a";
const INK: &str = "#15191e";
const MUTED: &str = "#5b6570";
const RULE: &str = "#c7cdd4";
const WHITE: &str = "#ffffff";
const PALE: &str = "#d6e2f0";

/// China Standard Time: the dates a citizen reads on the card are local dates. The
/// ledger and the verifier keep UTC seconds; only this rendering uses the offset.
const DISPLAY_UTC_OFFSET_HOURS: i8 = 8;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CardError {
    #[error("the QR text given for the card is not the credential that was verified")]
    QrMismatch,
    #[error("{0}")]
    Qr(#[from] QrError),
    #[error(
        "the credential needs a version-{version} QR whose modules would be {module_mm:.2} mm \
         on a card, too small to scan from paper (at least {QR_MODULE_MM_MIN} mm); print the \
         QR on its own, larger, instead"
    )]
    QrTooDense { version: i16, module_mm: f32 },
    #[error("the SVG is {bytes} bytes; at most {SVG_BYTES_MAX}")]
    SvgTooLarge { bytes: usize },
    #[error("the SVG cannot be rendered: {0}")]
    Svg(String),
    #[error("the SVG is {width} × {height} px at {PNG_DPI} dpi; at most {PNG_SIDE_PX_MAX} a side")]
    PngTooLarge { width: f32, height: f32 },
    #[error("the PNG cannot be encoded: {0}")]
    Png(String),
}

/// One labelled line of the card.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    label_zh: String,
    label_en: String,
    value: String,
    /// A second, smaller line under the value (the issuer's region).
    note: Option<String>,
    /// Never cut (the licence id): squeezed as much as it takes instead.
    whole: bool,
}

/// A genuine credential, its QR and the genesis names, ready to draw.
#[derive(Debug, Clone)]
pub struct Card {
    qr_text: String,
    credential: Credential,
    /// The QR modules, row by row, without quiet zone; `qr_width` a side.
    modules: Vec<bool>,
    qr_width: usize,
    qr_version: i16,
    type_name: String,
    type_name_en: String,
    holder: Vec<Row>,
    issuer_name: String,
    region_name: String,
}

impl Card {
    /// Gathers what the card shows of `genuine`, whose QR text is `qr_text`. The text must
    /// be that very credential (its COSE bytes hash to the verified commitment), so the QR
    /// printed is the one verification accepted.
    pub fn new(genuine: &GenuineCredential<'_>, qr_text: &str) -> Result<Self, CardError> {
        let qr_text = qr_text.trim();
        let cose = qr_to_cose(qr_text).map_err(|_| CardError::QrMismatch)?;
        if Hash32::digest(&cose) != genuine.commitment() {
            return Err(CardError::QrMismatch);
        }
        let credential = genuine.credential().clone();
        let def = genuine.licence_type();

        let code = qr::encode(qr_text)?;
        let qr_width = code.width();
        let qr_version = match code.version() {
            qrcode::Version::Normal(v) | qrcode::Version::Micro(v) => v,
        };
        let module_mm = QR_SIZE_MM / (qr_width + 8) as f32;
        if module_mm < QR_MODULE_MM_MIN {
            return Err(CardError::QrTooDense {
                version: qr_version,
                module_mm,
            });
        }
        let modules = code
            .to_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect();

        // The holder fields genesis lists for the type, in its order, labelled as genesis
        // says (a field without a label by its name); a field the credential lacks shows
        // as a dash. Fields genesis does not list stay in the QR.
        let holder = def
            .holder_fields
            .iter()
            .map(|f| {
                let (label_zh, label_en) = match def.label(f) {
                    Some(l) => (clean(&l.zh), clean(&l.en)),
                    None => (String::new(), f.clone()),
                };
                Row {
                    label_zh,
                    label_en,
                    value: credential
                        .holder
                        .get(f)
                        .map(|v| clean(v.as_str()))
                        .filter(|v| !v.trim().is_empty())
                        .unwrap_or_else(|| "—".into()),
                    note: None,
                    whole: false,
                }
            })
            .collect();
        Ok(Self {
            qr_text: qr_text.to_owned(),
            modules,
            qr_width,
            qr_version,
            type_name: clean(&def.name),
            type_name_en: clean(&def.name_en),
            holder,
            issuer_name: clean(&genuine.issuer().name),
            region_name: clean(&genuine.region().name),
            credential,
        })
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The QR text the card carries, exactly as signed.
    pub fn qr_text(&self) -> &str {
        &self.qr_text
    }

    /// The QR version (1-40) on the card.
    pub fn qr_version(&self) -> i16 {
        self.qr_version
    }

    /// The printed size of one QR module, in millimetres.
    pub fn qr_module_mm(&self) -> f32 {
        QR_SIZE_MM / (self.qr_width + 8) as f32
    }

    /// A standalone SVG document of the card, 85.6 × 54 mm.
    pub fn svg(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        self.write_svg(&mut out);
        out
    }

    /// An HTML page that shows the card at its real size and prints exactly the card:
    /// the page is the card (`@page` 85.6 × 54 mm, no margins), the SVG inline.
    pub fn html(&self) -> String {
        let title = escape(&format!(
            "{} {} · {}",
            self.type_name, self.type_name_en, self.credential.licence_id
        ));
        let mut svg = String::new();
        self.write_svg(&mut svg);
        format!(
            r#"<!DOCTYPE html>
<html lang="zh-Hans">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
@page {{ size: {w}mm {h}mm; margin: 0; }}
html, body {{ margin: 0; padding: 0; }}
svg.card {{ display: block; width: {w}mm; height: {h}mm; }}
@media screen {{
  body {{ background: #e9ecef; font-family: {family}; color: {INK}; }}
  main {{ width: {w}mm; margin: 12mm auto; }}
  svg.card {{ border-radius: {CORNER_MM}mm; box-shadow: 0 0.6mm 3mm rgba(0, 0, 0, 0.25); }}
  p.hint {{ font-size: 13px; line-height: 1.5; color: {MUTED}; margin: 5mm 0 0; }}
}}
@media print {{
  html, body {{ width: {w}mm; height: {h}mm; overflow: hidden; }}
  main {{ margin: 0; }}
  svg.card {{ break-inside: avoid; }}
  p.hint {{ display: none; }}
}}
</style>
</head>
<body>
<main>
{svg}
<p class="hint">打印时请选择“实际大小（100%）”，不要缩放；纸张即卡片大小 {w} × {h} mm。<br>
Print at actual size (100%), no scaling: the page is the card, {w} × {h} mm.</p>
</main>
</body>
</html>
"#,
            w = CARD_WIDTH_MM,
            h = CARD_HEIGHT_MM,
            // Inside <style> entities are not decoded; the list is a constant without
            // any character that could end the element.
            family = css_font_list(),
        )
    }

    fn rows(&self) -> Vec<Row> {
        let c = &self.credential;
        let mut rows = self.holder.clone();
        rows.push(Row {
            label_zh: "有效期限".into(),
            label_en: "Valid".into(),
            // A dash rather than 至, so the dates read right even without a CJK font.
            value: format!(
                "{} – {}",
                display_date(c.not_before),
                // `expires_at` is the first second the licence is no longer valid, so the
                // last valid day is the day of the second before it.
                display_date(c.expires_at.saturating_sub(1))
            ),
            note: None,
            whole: false,
        });
        rows.push(Row {
            label_zh: "发证机关".into(),
            label_en: "Issuer".into(),
            value: self.issuer_name.clone(),
            note: Some(self.region_name.clone()),
            whole: false,
        });
        rows.push(Row {
            label_zh: "证照编号".into(),
            label_en: "Licence No.".into(),
            value: c.licence_id.to_string(),
            note: None,
            whole: true,
        });
        rows
    }

    fn write_svg(&self, out: &mut String) {
        let (w, h) = (CARD_WIDTH_MM, CARD_HEIGHT_MM);
        let family = escape(&css_font_list());
        let label = escape(&format!(
            "{} {} {}",
            self.type_name, self.type_name_en, self.credential.licence_id
        ));
        // `write!` to a String cannot fail; the results are ignored for that reason.
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="card" width="{w}mm" height="{h}mm" viewBox="0 0 {w} {h}" font-family="{family}" role="img" aria-label="{label}">
<title>{label}</title>
<rect x="0.1" y="0.1" width="{iw:.2}" height="{ih:.2}" rx="{CORNER_MM}" fill="white" stroke="{RULE}" stroke-width="0.2"/>
"#,
            iw = w - 0.2,
            ih = h - 0.2,
        );

        // Header band: the licence type in Chinese and English, and what the card is.
        let band = HEADER_MM;
        let r = CORNER_MM;
        let _ = writeln!(
            out,
            r#"<path d="M0 {band}V{r}A{r} {r} 0 0 1 {r} 0H{x1:.2}A{r} {r} 0 0 1 {w} {r}V{band}Z" fill="{ACCENT}"/>"#,
            x1 = w - r,
        );
        let x = MARGIN_MM + 0.6;
        let tag_x = w - MARGIN_MM - 0.4;
        let tag_w = 14.0;
        Text::at(tag_x, 4.9, 2.0, tag_w)
            .bold()
            .fill(WHITE)
            .end()
            .write(out, "电子证照");
        Text::at(tag_x, 8.3, 1.45, tag_w)
            .fill(PALE)
            .end()
            .write(out, "E-LICENCE");
        let names_w = tag_x - tag_w - 2.0 - x;
        Text::at(x, 5.7, 3.7, names_w)
            .bold()
            .fill(WHITE)
            .write(out, &self.type_name);
        Text::at(x, 9.2, 1.9, names_w)
            .fill(PALE)
            .write(out, &self.type_name_en);

        // The QR on the right, on white, its quiet zone inside the square.
        let qx = w - QR_MARGIN_MM - QR_SIZE_MM;
        self.write_qr(out, qx, band + 0.5);

        // The rows on the left; the QR's quiet zone is the gap between them and the QR.
        let col_x = x;
        let col_w = qx - col_x;
        let top = band + 2.6;
        let room = h - FOOTER_MM - top;
        let rows = fit_rows(self.rows(), room);
        let natural: f32 = rows.iter().map(Row::height).sum();
        let scale = (room / natural).min(1.0);
        let mut y = top;
        for row in &rows {
            row.write(out, col_x, y, col_w, scale);
            y += row.height() * scale;
        }

        // Footer: where to use it.
        let _ = writeln!(
            out,
            r#"<line x1="{col_x:.2}" y1="{ly:.2}" x2="{lx2:.2}" y2="{ly:.2}" stroke="{RULE}" stroke-width="0.15"/>"#,
            ly = h - FOOTER_MM + 0.9,
            lx2 = col_x + col_w - 1.5,
        );
        Text::at(col_x, h - 2.4, 1.75, col_w - 1.5)
            .bold()
            .fill(ACCENT)
            .write(out, "Scan at any service window · 任何窗口扫码核验");
        out.push_str("</svg>\n");
    }

    fn write_qr(&self, out: &mut String, x: f32, y: f32) {
        let n = self.qr_width;
        let module = QR_SIZE_MM / (n + 8) as f32;
        let _ = writeln!(
            out,
            r#"<rect x="{x:.2}" y="{y:.2}" width="{QR_SIZE_MM}" height="{QR_SIZE_MM}" fill="white"/>"#
        );
        // One path in module units, the dark run of a row one rectangle each;
        // crispEdges keeps the modules square when a renderer snaps them to pixels.
        let _ = write!(
            out,
            r##"<path transform="translate({x:.2} {y:.2}) scale({module:.5})" shape-rendering="crispEdges" fill="#000000" d=""##
        );
        for row in 0..n {
            let mut col = 0;
            while col < n {
                if !self.modules[row * n + col] {
                    col += 1;
                    continue;
                }
                let start = col;
                while col < n && self.modules[row * n + col] {
                    col += 1;
                }
                let run = col - start;
                let _ = write!(out, "M{} {}h{run}v1h-{run}z", start + 4, row + 4);
            }
        }
        out.push_str("\"/>\n");
    }
}

// Layout of the left column and the header, in millimetres.
const MARGIN_MM: f32 = 3.4;
const QR_MARGIN_MM: f32 = 1.4;
const HEADER_MM: f32 = 11.5;
const FOOTER_MM: f32 = 4.6;
const ROW_MM: f32 = 4.4;
const ROW_NOTE_MM: f32 = 2.2;
const LABEL_COL_MM: f32 = 12.4;
/// Rows shrink to fit more holder fields, down to this fraction of their size.
const ROW_SCALE_MIN: f32 = 0.8;
/// The rows after the holder fields: validity, issuer, licence id.
const FIXED_ROWS: usize = 3;

/// Keeps as many holder rows as fit in `room` at `ROW_SCALE_MIN`, and says where the
/// others are. The fixed rows (validity, issuer, licence id) always stay.
fn fit_rows(mut rows: Vec<Row>, room: f32) -> Vec<Row> {
    let height = |rows: &[Row]| rows.iter().map(Row::height).sum::<f32>();
    if room / height(&rows) >= ROW_SCALE_MIN {
        return rows;
    }
    let holder_rows = rows.len().saturating_sub(FIXED_ROWS);
    let fixed = rows.split_off(holder_rows);
    let budget = room / ROW_SCALE_MIN - height(&fixed) - ROW_MM;
    while !rows.is_empty() && height(&rows) > budget {
        rows.pop();
    }
    let more = holder_rows - rows.len();
    rows.push(Row {
        label_zh: "其余".into(),
        label_en: "More".into(),
        value: format!("另有 {more} 项见二维码 · {more} more in the QR"),
        note: None,
        whole: false,
    });
    rows.extend(fixed);
    rows
}

impl Row {
    fn height(&self) -> f32 {
        ROW_MM
            + if self.note.is_some() {
                ROW_NOTE_MM
            } else {
                0.0
            }
    }

    /// Label (Chinese over English) in the label column, value beside it, the note
    /// under the value; everything scaled by `k`.
    fn write(&self, out: &mut String, x: f32, y: f32, width: f32, k: f32) {
        let label_w = LABEL_COL_MM * k - 0.4;
        let label = |y_mm: f32, size: f32| Text::at(x, y + y_mm * k, size * k, label_w).fill(MUTED);
        if self.label_zh.is_empty() {
            // A field genesis gives no label: its name alone, on the first line.
            label(1.75, 1.5).write(out, &self.label_en);
        } else {
            label(1.75, 1.65).write(out, &self.label_zh);
            label(3.4, 1.3).write(out, &self.label_en);
        }
        let vx = x + LABEL_COL_MM * k;
        let vw = width - LABEL_COL_MM * k - 1.2;
        let value = Text::at(vx, y + 2.95 * k, 2.45 * k, vw).bold();
        if self.whole { value.whole() } else { value }.write(out, &self.value);
        if let Some(note) = &self.note {
            Text::at(vx, y + 5.15 * k, 1.6 * k, vw)
                .fill(MUTED)
                .write(out, note);
        }
    }
}

/// One line of text on the card and the box it must stay in.
#[derive(Debug, Clone, Copy)]
struct Text {
    x: f32,
    /// Baseline.
    y: f32,
    size: f32,
    /// The text shrinks to this size before it is squeezed.
    min_size: f32,
    /// The widest the text may be.
    max_w: f32,
    bold: bool,
    fill: &'static str,
    /// Anchored at its end (right-aligned) rather than its start.
    end: bool,
    /// May be cut with "…" when even squeezing cannot fit it; never for a licence id.
    may_cut: bool,
}

/// How much narrower than its estimated width a text may be squeezed (`textLength`)
/// before it is cut instead. The estimate errs wide, so real squeezing is milder.
const SQUEEZE_MAX: f32 = 1.3;

impl Text {
    /// Regular ink text at (`x`, `y`), `size` mm high, at most `max_w` mm wide.
    fn at(x: f32, y: f32, size: f32, max_w: f32) -> Self {
        Self {
            x,
            y,
            size,
            min_size: size * 0.75,
            max_w,
            bold: false,
            fill: INK,
            end: false,
            may_cut: true,
        }
    }

    fn bold(self) -> Self {
        Self { bold: true, ..self }
    }

    fn fill(self, fill: &'static str) -> Self {
        Self { fill, ..self }
    }

    fn end(self) -> Self {
        Self { end: true, ..self }
    }

    fn whole(self) -> Self {
        Self {
            may_cut: false,
            ..self
        }
    }

    fn write(&self, out: &mut String, s: &str) {
        if s.is_empty() {
            return;
        }
        let (s, size, squeeze) = fit(s, self);
        let _ = write!(
            out,
            r#"<text x="{:.2}" y="{:.2}" font-size="{size:.2}" fill="{}""#,
            self.x, self.y, self.fill
        );
        if self.bold {
            out.push_str(r#" font-weight="700""#);
        }
        if self.end {
            out.push_str(r#" text-anchor="end""#);
        }
        if let Some(len) = squeeze {
            let _ = write!(
                out,
                r#" textLength="{len:.2}" lengthAdjust="spacingAndGlyphs""#
            );
        }
        let _ = writeln!(out, ">{}</text>", escape(&s));
    }
}

/// Fits `s` into the text's box: at its size if it fits, else shrunk towards its
/// minimum size, else at the minimum size squeezed by the renderer to exactly the box
/// width (returned), cut with "…" first if even that would be too tight and the text may
/// be cut. Widths are estimates (core has no font metrics) that err wide, so text that is
/// not squeezed never overflows its box.
fn fit(s: &str, t: &Text) -> (String, f32, Option<f32>) {
    let w = width_em(s, t.bold);
    if w * t.size <= t.max_w {
        return (s.to_owned(), t.size, None);
    }
    if w * t.min_size <= t.max_w {
        return (s.to_owned(), t.max_w / w, None);
    }
    let room = t.max_w * SQUEEZE_MAX;
    if !t.may_cut || w * t.min_size <= room {
        return (s.to_owned(), t.min_size, Some(t.max_w));
    }
    let mut cut: String = s.to_owned();
    while !cut.is_empty() && width_em(&format!("{cut}…"), t.bold) * t.min_size > room {
        cut.pop();
    }
    (format!("{}…", cut.trim_end()), t.min_size, Some(t.max_w))
}

/// Estimated advance of `s` in ems: full width for CJK; for the rest, the widths of
/// DejaVu Sans (the widest of the Latin fallbacks), 10% more in bold.
fn width_em(s: &str, bold: bool) -> f32 {
    let latin = if bold { 1.1 } else { 1.0 };
    s.chars()
        .map(|c| match c {
            c if is_wide(c) => 1.0,
            ' ' | 'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 0.33 * latin,
            'f' | 't' | 'r' | '(' | ')' | '-' | '[' | ']' => 0.46 * latin,
            'm' | 'w' | 'M' | 'W' => 1.0 * latin,
            'A'..='Z' => 0.78 * latin,
            '0'..='9' => 0.64 * latin,
            'a'..='z' => 0.63 * latin,
            _ => 0.82 * latin,
        })
        .sum()
}

fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD)
}

/// The text of a credential or genesis field as the card shows it: without characters
/// that reorder or hide text (bidi controls, zero-width joiners), without anything XML
/// 1.0 forbids, with runs of white space as one space.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = match c {
            '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{061C}'
            | '\u{FEFF}' => continue,
            '\u{FFFE}' | '\u{FFFF}' => '\u{FFFD}',
            c if c.is_control() || c.is_whitespace() => ' ',
            c => c,
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    out.trim_end().to_owned()
}

/// Escapes text for XML and HTML, in content and in quoted attributes alike.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn css_font_list() -> String {
    let mut list: Vec<String> = FONT_FAMILIES.iter().map(|f| format!("\"{f}\"")).collect();
    list.push("sans-serif".into());
    list.join(",")
}

/// `YYYY-MM-DD` in China Standard Time, or the raw seconds if out of range.
fn display_date(secs: i64) -> String {
    let offset = time::UtcOffset::from_hms(DISPLAY_UTC_OFFSET_HOURS, 0, 0)
        .expect("+08:00 is a valid offset");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            let d = t.to_offset(offset).date();
            (0..=9999)
                .contains(&d.year())
                .then(|| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
        })
        .unwrap_or_else(|| secs.to_string())
}

// ---------------------------------------------------------------------------------------
// PNG

/// Renders an SVG (a card from `Card::svg`) to PNG at `PNG_DPI`, with the fonts in
/// `fonts`, on white. The PNG records its resolution, so it prints at its real size.
///
/// Images the SVG refers to are never loaded, neither files nor data URLs. Text whose
/// characters no font in `fonts` has is drawn as missing glyphs; everything else,
/// the QR above all, renders regardless.
pub fn png(svg: &str, fonts: &fontdb::Database) -> Result<Vec<u8>, CardError> {
    if svg.len() > SVG_BYTES_MAX {
        return Err(CardError::SvgTooLarge { bytes: svg.len() });
    }
    // usvg wants the database by Arc. Cloning copies face metadata only (font data is
    // shared), and lets the generic family point at a font that is really there.
    let mut db = fonts.clone();
    if let Some(family) = primary_family(&db) {
        db.set_sans_serif_family(family);
    }
    let options = usvg::Options {
        fontdb: Arc::new(db),
        font_family: "sans-serif".into(),
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: Box::new(|_, _, _| None),
            resolve_string: Box::new(|_, _| None),
        },
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| CardError::Svg(e.to_string()))?;
    let scale = PNG_DPI / options.dpi;
    let size = tree.size();
    let (width, height) = (size.width() * scale, size.height() * scale);
    let side_max = PNG_SIDE_PX_MAX as f32;
    if !(width >= 1.0 && height >= 1.0 && width <= side_max && height <= side_max) {
        return Err(CardError::PngTooLarge { width, height });
    }
    let (pw, ph) = (width.round() as u32, height.round() as u32);
    let mut pixmap =
        tiny_skia::Pixmap::new(pw, ph).ok_or(CardError::PngTooLarge { width, height })?;
    pixmap.fill(tiny_skia::Color::WHITE);
    let transform =
        tiny_skia::Transform::from_scale(pw as f32 / size.width(), ph as f32 / size.height());
    resvg::render(&tree, transform, &mut pixmap.as_mut());
    let png = pixmap
        .encode_png()
        .map_err(|e| CardError::Png(e.to_string()))?;
    Ok(with_resolution(png, PNG_DPI))
}

/// The family `sans-serif` should mean in `db`: the first of `FONT_FAMILIES` it has,
/// else the first face's family.
fn primary_family(db: &fontdb::Database) -> Option<String> {
    FONT_FAMILIES
        .iter()
        .find_map(|want| family_in(db, want))
        .or_else(|| {
            db.faces()
                .next()
                .and_then(|f| f.families.first())
                .map(|f| f.0.clone())
        })
}

/// Adds a pHYs chunk (pixels per metre) right after IHDR, so that image viewers and
/// print dialogs use the card's real size. tiny-skia writes no pHYs of its own.
fn with_resolution(png: Vec<u8>, dpi: f32) -> Vec<u8> {
    // Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 CRC).
    const IHDR_END: usize = 8 + 25;
    if png.len() < IHDR_END || &png[12..16] != b"IHDR" {
        return png;
    }
    let ppm = (dpi / 0.0254).round() as u32;
    let mut body = Vec::with_capacity(13);
    body.extend_from_slice(b"pHYs");
    body.extend_from_slice(&ppm.to_be_bytes());
    body.extend_from_slice(&ppm.to_be_bytes());
    body.push(1); // unit: metre
    let mut crc = flate2::Crc::new();
    crc.update(&body);
    let mut out = Vec::with_capacity(png.len() + 21);
    out.extend_from_slice(&png[..IHDR_END]);
    out.extend_from_slice(&9u32.to_be_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc.sum().to_be_bytes());
    out.extend_from_slice(&png[IHDR_END..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use huren_core::credential::{cose_to_qr, DecodeError, UnverifiedCredential, SALT_BYTES};
    use huren_core::verify::{self, LedgerFacts, VerifyContext};
    use huren_core::{DepartmentId, LicenceId, LicenceType, Network, RegionCode, SecretKey};

    /// The example network (genesis/example.toml), founded with fresh keys.
    fn founded() -> (huren_testkit::Founded, Network) {
        let f = huren_testkit::Founded::example().expect("example network");
        let net = f.network().expect("genesis");
        (f, net)
    }

    fn issuer_key(f: &huren_testkit::Founded, department: &str) -> SecretKey {
        huren_genesis::keys::read_issuer_key(&f.issuer_key(department))
            .expect("issuer key")
            .1
    }

    /// The example network and gd.transport's issuer key.
    fn network() -> (Network, SecretKey) {
        let (f, net) = founded();
        let key = issuer_key(&f, "gd.transport");
        (net, key)
    }

    /// A driving licence of gd.transport.
    fn driving_licence(serial: u64) -> Credential {
        let gd = DepartmentId::parse("gd.transport").expect("id");
        let holder = [
            ("name", "张三"),
            ("id_number", "44010619900101123X"),
            ("class", "C1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Credential {
            issuer: gd.clone(),
            licence_id: LicenceId::new(gd, LicenceType::parse("mvdl").expect("type"), serial),
            region: RegionCode::parse("440000").expect("region"),
            issued_at: 1_750_000_000,
            not_before: 1_750_000_000,
            expires_at: 1_750_000_000 + 6 * 365 * 86400,
            holder,
            fields: BTreeMap::new(),
            salt: [7; SALT_BYTES],
        }
    }

    /// What an offline verification of `qr_text` proves genuine, whatever the date.
    fn genuine<'n>(net: &'n Network, qr_text: &str) -> Option<GenuineCredential<'n>> {
        let ctx = VerifyContext {
            now: 1_750_000_000,
            region: None,
        };
        verify::decide_text(net, qr_text, &|_, _| LedgerFacts::Offline, &ctx).into_genuine(net)
    }

    /// The card of `qr_text`, verified first.
    fn card_of(net: &Network, qr_text: &str) -> Result<Card, CardError> {
        Card::new(&genuine(net, qr_text).expect("genuine"), qr_text)
    }

    fn card_for(c: &Credential) -> Card {
        let (net, key) = network();
        let signed = c.sign(&key).expect("sign");
        card_of(&net, &signed.qr_text).expect("card")
    }

    /// The installed fonts, loaded the way the node and the client load them; empty
    /// where there are none.
    fn test_fonts() -> fontdb::Database {
        crate::fonts::load(&[]).database().clone()
    }

    #[test]
    fn svg_has_every_part_and_the_qr_is_big_enough() {
        let card = card_for(&driving_licence(42));
        let svg = card.svg();
        for part in [
            "机动车驾驶证",
            "Motor vehicle driving licence",
            "张三",
            "44010619900101123X",
            "C1",
            "姓名",
            "广东省公安厅交通管理局",
            "广东省 Guangdong",
            "gd.transport:mvdl:00000042",
            "Scan at any service window · 任何窗口扫码核验",
            "2025-06-15 – 2031-06-14",
            "Noto Sans CJK SC",
        ] {
            assert!(svg.contains(part), "{part} missing from the SVG");
        }
        assert!(svg.contains(r#"width="85.6mm" height="54mm""#));
        assert!(card.qr_module_mm() >= 0.5, "{}", card.qr_module_mm());
        assert!(svg.len() < 64 * 1024, "{} bytes", svg.len());
    }

    #[test]
    fn holder_fields_are_labelled_as_genesis_says() {
        let (f, net) = founded();
        let key = issuer_key(&f, "gd.transport");
        let mut doc = net.document().clone();
        let mvdl = &mut doc.licence_types[0];
        assert_eq!(mvdl.code.as_str(), "mvdl");
        mvdl.labels.insert(
            "name".into(),
            huren_core::genesis::FieldLabel {
                zh: "持证人".into(),
                en: "Holder".into(),
            },
        );
        mvdl.labels.remove("class");
        let net = Network::from_document(doc).expect("genesis");
        let signed = driving_licence(1).sign(&key).expect("sign");
        let svg = card_of(&net, &signed.qr_text).expect("card").svg();
        for part in [">持证人<", ">Holder<", ">身份证号<", ">ID No.<", ">class<"] {
            assert!(svg.contains(part), "{part} missing from the SVG");
        }
        for gone in ["姓名", "准驾车型"] {
            assert!(!svg.contains(gone), "{gone} is not in genesis any more");
        }
    }

    #[test]
    fn untrusted_text_is_escaped() {
        let mut c = driving_licence(1);
        c.holder.insert(
            "name".into(),
            "<script>alert(1)</script>&\"'\u{202E}evil".into(),
        );
        let card = card_for(&c);
        for doc in [card.svg(), card.html()] {
            assert!(!doc.contains("<script>"), "{doc}");
            assert!(!doc.contains('\u{202E}'));
            assert!(doc.contains("&lt;script&gt;"));
        }
        // The SVG is well-formed XML whatever the holder fields say.
        let fonts = fontdb::Database::new();
        png(&card.svg(), &fonts).expect("renders");
    }

    #[test]
    fn long_values_are_fitted() {
        let value = |max_w| Text::at(0.0, 0.0, 2.4, max_w).bold();
        // Fits as it is.
        assert_eq!(fit("张三", &value(20.0)), ("张三".into(), 2.4, None));
        // Shrinks a little.
        let (s, size, squeeze) = fit("44010619900101123X", &value(28.0));
        assert_eq!((s.as_str(), squeeze), ("44010619900101123X", None));
        assert!((1.8..2.4).contains(&size), "{size}");
        // Squeezed by the renderer.
        let id = "gd.transport:mvdl:123456789012";
        let (s, size, squeeze) = fit(id, &value(28.0));
        assert_eq!((s.as_str(), squeeze), (id, Some(28.0)));
        assert!((size - 1.8).abs() < 1e-3, "{size}");
        // Cut, and only what may be cut.
        let long = "长".repeat(40);
        let (s, size, squeeze) = fit(&long, &value(20.0));
        assert!(s.ends_with('…') && s.chars().count() < 20, "{s}");
        assert!(width_em(&s, true) * size <= 20.0 * SQUEEZE_MAX, "{s}");
        assert_eq!(squeeze, Some(20.0));
        assert_eq!(fit(&long, &value(20.0).whole()).0, long);
    }

    #[test]
    fn many_holder_fields_still_fit() {
        let (f, net) = founded();
        let key = issuer_key(&f, "gd.transport");
        let mut doc = net.document().clone();
        let names: Vec<String> = (0..16).map(|i| format!("field_{i}")).collect();
        doc.licence_types[0].holder_fields = names.clone();
        doc.licence_types[0].labels.clear();
        let net = Network::from_document(doc).expect("genesis");
        let mut c = driving_licence(7);
        // Values zlib cannot shrink, as real names and numbers are.
        let value = |i: u32| -> String {
            (0..80)
                .filter_map(|j| char::from_u32(0x4E00 + (i * 7919 + j * 104_729) % 20_000))
                .collect()
        };
        c.holder = (0u32..)
            .zip(&names)
            .map(|(i, n)| (n.clone(), value(i)))
            .collect();
        let signed = c.sign(&key).expect("sign");
        // Sixteen long fields do not fit in any QR (the text is refused before it is
        // verified, so there is nothing to make a card of); five make one too dense for a
        // card, which is refused. Sixteen short ones give a card with a "more in the QR"
        // line.
        assert!(matches!(
            UnverifiedCredential::from_qr(&signed.qr_text),
            Err(DecodeError::TooLong { .. })
        ));
        assert!(genuine(&net, &signed.qr_text).is_none());
        c.holder = (0u32..)
            .zip(&names[..5])
            .map(|(i, n)| (n.clone(), value(i)))
            .collect();
        let signed = c.sign(&key).expect("sign");
        let dense = card_of(&net, &signed.qr_text).map(|c| c.svg());
        assert!(
            matches!(dense, Err(CardError::QrTooDense { .. })),
            "{dense:?}"
        );
        let mut c = driving_licence(8);
        c.holder = names.iter().map(|n| (n.clone(), "x".into())).collect();
        let signed = c.sign(&key).expect("sign");
        let card = card_of(&net, &signed.qr_text).expect("card");
        let svg = card.svg();
        assert!(svg.contains("more in the QR"), "{svg}");
        assert!(svg.contains("gd.transport:mvdl:00000008"));
    }

    #[test]
    fn a_card_carries_exactly_the_credential_verification_accepted() {
        let (f, net) = founded();
        let key = issuer_key(&f, "gd.transport");
        let signed = driving_licence(3).sign(&key).expect("sign");
        let other = driving_licence(4).sign(&key).expect("sign");
        let accepted = genuine(&net, &signed.qr_text).expect("genuine");
        let card = Card::new(&accepted, &format!(" {}\n", signed.qr_text)).expect("card");
        assert_eq!(card.qr_text(), signed.qr_text);
        // Another genuine credential's QR, or no credential at all, is not this one.
        for text in [other.qr_text.as_str(), "HZ1:not base45!", ""] {
            assert!(
                matches!(Card::new(&accepted, text), Err(CardError::QrMismatch)),
                "{text}"
            );
        }

        // What verification does not accept never becomes a `GenuineCredential`, so it
        // has no card: a key genesis does not know, gd.market's key claiming
        // gd.transport, and bytes altered after signing (class C1 → C2).
        let stranger = driving_licence(3)
            .sign(&SecretKey::from_seed(&[99; 32]))
            .expect("sign");
        let mismatch = driving_licence(3)
            .sign(&issuer_key(&f, "gd.market"))
            .expect("sign");
        let mut cose = signed.cose.clone();
        let at = cose
            .windows(3)
            .position(|w| w == b"\x62C1")
            .expect("class in payload");
        cose[at + 2] = b'2';
        let tampered = cose_to_qr(&cose);
        for text in [&stranger.qr_text, &mismatch.qr_text, &tampered] {
            assert!(genuine(&net, text).is_none(), "{text}");
        }
    }

    #[test]
    fn png_is_300_dpi_and_scans_back_even_without_fonts() {
        let card = card_for(&driving_licence(5));
        for fonts in [fontdb::Database::new(), test_fonts()] {
            let png = png(&card.svg(), &fonts).expect("png");
            let img = image::load_from_memory(&png).expect("decodes");
            assert_eq!((img.width(), img.height()), (1011, 638));
            assert_eq!(qr::decode_image(&png).expect("scans"), card.qr_text());
            let phys = png.windows(4).position(|w| w == b"pHYs").expect("pHYs");
            assert_eq!(&png[phys + 4..phys + 8], &11811u32.to_be_bytes());
        }
    }

    #[test]
    fn png_bounds() {
        let fonts = fontdb::Database::new();
        assert!(matches!(
            png(&" ".repeat(SVG_BYTES_MAX + 1), &fonts),
            Err(CardError::SvgTooLarge { .. })
        ));
        assert!(matches!(png("<svg", &fonts), Err(CardError::Svg(_))));
        let huge = r#"<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="10"/>"#;
        assert!(matches!(
            png(huge, &fonts),
            Err(CardError::PngTooLarge { .. })
        ));
        // Images are never fetched, from disk or elsewhere.
        let img = r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10"><image xlink:href="/etc/passwd" width="10" height="10"/></svg>"#;
        assert!(png(img, &fonts).is_ok());
    }

    #[test]
    fn html_prints_exactly_the_card() {
        let card = card_for(&driving_licence(9));
        let html = card.html();
        assert!(
            html.contains("@page { size: 85.6mm 54mm; margin: 0; }"),
            "{html}"
        );
        assert!(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(!html.contains("<?xml"));
        assert!(html.contains("default-src 'none'"));
    }

    #[test]
    fn dates_are_local_and_the_last_valid_day() {
        // 2025-06-15T16:00:00Z is midnight 16 June in Beijing.
        assert_eq!(display_date(1_750_003_200), "2025-06-16");
        assert_eq!(display_date(1_750_003_199), "2025-06-15");
        assert_eq!(display_date(i64::MAX), i64::MAX.to_string());
    }
}
