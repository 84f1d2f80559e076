//! The fonts card PNGs are drawn with: the one loader the node and the client share.
//!
//! `load` scans the installed fonts (and any extra directories) for metadata only, picks
//! the few files the card needs (regular and bold of the best CJK family and of one Latin
//! family, `FONT_FAMILIES` first), and reads just those into memory, each bounded by
//! `FONT_FILE_BYTES_MAX`. The caller keeps the result, so that rendering a card
//! (`card::png`) never touches the disk. This module is the only one in this crate that
//! reads files; it never decides anything about a licence.

use std::io::Read;
use std::path::{Path, PathBuf};

pub use resvg::usvg::fontdb;

/// Bound on one font file read for the card (Noto Sans CJK is about 20 MB).
pub const FONT_FILE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Fonts, best first: CJK families that also have good Latin, then Latin-only families
/// for a machine without any CJK font, then the generic family.
pub(crate) const FONT_FAMILIES: &[&str] = &[
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "PingFang SC",
    "Microsoft YaHei",
    "Noto Sans",
    "DejaVu Sans",
    "Liberation Sans",
    "Arial",
];
/// How many of `FONT_FAMILIES` can draw Chinese.
const CJK_FAMILIES: usize = 6;

/// What to tell someone whose machine has no font with Chinese characters.
pub const MISSING_CJK_FONT: &str = "no font with Chinese characters is installed, so the \
     Chinese text on the PNG card is missing (the QR and the Latin text are fine); install \
     the Debian package fonts-noto-cjk or fonts-wqy-microhei";

/// The fonts card PNGs are drawn with, read into memory once (`load`).
#[derive(Debug)]
pub struct Fonts {
    database: fontdb::Database,
    cjk_family: Option<String>,
    loaded: Vec<PathBuf>,
    skipped: Vec<FontFileError>,
}

impl Fonts {
    /// What `card::png` draws with: only the chosen files, in memory.
    pub fn database(&self) -> &fontdb::Database {
        &self.database
    }

    /// The family that draws the Chinese text; `None` means the Chinese text is missing
    /// from PNG cards, and the operator should be told `MISSING_CJK_FONT`.
    pub fn cjk_family(&self) -> Option<&str> {
        self.cjk_family.as_deref()
    }

    /// The font files read into memory.
    pub fn loaded(&self) -> &[PathBuf] {
        &self.loaded
    }

    /// Files chosen but not read, and why: cards are drawn without them.
    pub fn skipped(&self) -> &[FontFileError] {
        &self.skipped
    }
}

/// A chosen font file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FontFileError {
    #[error("cannot read font {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("font {} is larger than {bytes_max} bytes", path.display())]
    TooLarge { path: PathBuf, bytes_max: usize },
}

/// Scans the installed fonts and `extra_dirs` (metadata only), chooses the files the card
/// needs and reads them into memory. Never fails: a machine without fonts still gets
/// cards whose QR and layout render; what is missing is reported in the result.
pub fn load(extra_dirs: &[PathBuf]) -> Fonts {
    let mut scan = fontdb::Database::new();
    scan.load_system_fonts();
    for d in extra_dirs {
        scan.load_fonts_dir(d);
    }
    let choice = choose_fonts(&scan);
    let mut database = fontdb::Database::new();
    let (mut loaded, mut skipped) = (Vec::new(), Vec::new());
    for path in choice.files {
        match read_font(&path, FONT_FILE_BYTES_MAX) {
            Ok(bytes) => {
                database.load_font_data(bytes);
                loaded.push(path);
            }
            Err(e) => skipped.push(e),
        }
    }
    Fonts {
        database,
        cjk_family: choice.cjk_family,
        loaded,
        skipped,
    }
}

/// Reads a font file of at most `bytes_max` bytes.
fn read_font(path: &Path, bytes_max: usize) -> Result<Vec<u8>, FontFileError> {
    let read = |source| FontFileError::Read {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    // `take` keeps the bound even if the file grows while it is read.
    std::fs::File::open(path)
        .map_err(read)?
        .take(bytes_max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() > bytes_max {
        return Err(FontFileError::TooLarge {
            path: path.to_owned(),
            bytes_max,
        });
    }
    Ok(bytes)
}

/// Which installed font files the card needs, from a scan of the installed fonts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FontChoice {
    /// Files to read (at most `FONT_FILE_BYTES_MAX` each) into the database, best first,
    /// without duplicates.
    pub files: Vec<PathBuf>,
    /// The family that draws the Chinese text; `None` means warn with `MISSING_CJK_FONT`.
    pub cjk_family: Option<String>,
}

/// Picks, from `scan` (typically `Database::load_system_fonts`, which reads only font
/// metadata), the regular and bold faces of the best CJK family and of one Latin family.
/// A CJK font not in `FONT_FAMILIES` counts when it names itself in Chinese. Only
/// metadata is looked at here; `load` reads the files.
pub(crate) fn choose_fonts(scan: &fontdb::Database) -> FontChoice {
    let has_chinese_name = |f: &fontdb::FaceInfo| {
        f.families.iter().any(|(_, lang)| {
            matches!(
                lang,
                fontdb::Language::Chinese_PeoplesRepublicOfChina
                    | fontdb::Language::Chinese_Singapore
                    | fontdb::Language::Chinese_Taiwan
                    | fontdb::Language::Chinese_HongKongSAR
                    | fontdb::Language::Chinese_MacaoSAR
            )
        })
    };
    let cjk_family = FONT_FAMILIES[..CJK_FAMILIES]
        .iter()
        .find_map(|want| family_in(scan, want))
        .or_else(|| {
            scan.faces()
                .find(|f| has_chinese_name(f))
                .and_then(|f| f.families.first())
                .map(|f| f.0.clone())
        });
    let latin_family = FONT_FAMILIES[CJK_FAMILIES..]
        .iter()
        .find_map(|want| family_in(scan, want))
        .or_else(|| {
            // Any font at all, so that at least the Latin text renders.
            scan.faces()
                .find(|f| f.style == fontdb::Style::Normal)
                .and_then(|f| f.families.first())
                .map(|f| f.0.clone())
        });
    let mut files = Vec::new();
    for family in cjk_family.iter().chain(latin_family.iter()) {
        for weight in [fontdb::Weight::NORMAL, fontdb::Weight::BOLD] {
            let query = fontdb::Query {
                families: &[fontdb::Family::Name(family)],
                weight,
                ..fontdb::Query::default()
            };
            let path = scan
                .query(&query)
                .and_then(|id| scan.face(id))
                .and_then(|f| match &f.source {
                    fontdb::Source::File(p) | fontdb::Source::SharedFile(p, _) => Some(p.clone()),
                    fontdb::Source::Binary(_) => None,
                });
            if let Some(p) = path {
                if !files.contains(&p) {
                    files.push(p);
                }
            }
        }
    }
    FontChoice { files, cjk_family }
}

/// The name `db` knows family `want` by (case aside), if it has it.
pub(crate) fn family_in(db: &fontdb::Database, want: &str) -> Option<String> {
    db.faces()
        .flat_map(|f| f.families.iter())
        .find(|(name, _)| name.eq_ignore_ascii_case(want))
        .map(|(name, _)| name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fonts_are_chosen_from_metadata() {
        let face = |family: &str, lang, weight, path: &str| fontdb::FaceInfo {
            id: fontdb::ID::dummy(),
            source: fontdb::Source::File(path.into()),
            index: 0,
            families: vec![(family.into(), lang)],
            post_script_name: family.replace(' ', ""),
            style: fontdb::Style::Normal,
            weight,
            stretch: fontdb::Stretch::Normal,
            monospaced: false,
        };
        let en = fontdb::Language::English_UnitedStates;
        let mut latin_only = fontdb::Database::new();
        latin_only.push_face_info(face("DejaVu Sans", en, fontdb::Weight::NORMAL, "/f/dv.ttf"));
        latin_only.push_face_info(face("DejaVu Sans", en, fontdb::Weight::BOLD, "/f/dvb.ttf"));
        latin_only.push_face_info(face("DejaVu Serif", en, fontdb::Weight::NORMAL, "/f/s.ttf"));
        let choice = choose_fonts(&latin_only);
        assert_eq!(choice.cjk_family, None);
        assert_eq!(
            choice.files,
            vec![PathBuf::from("/f/dv.ttf"), PathBuf::from("/f/dvb.ttf")]
        );

        let mut with_cjk = latin_only.clone();
        with_cjk.push_face_info(face(
            "WenQuanYi Micro Hei",
            en,
            fontdb::Weight::NORMAL,
            "/f/wqy.ttc",
        ));
        let choice = choose_fonts(&with_cjk);
        assert_eq!(choice.cjk_family.as_deref(), Some("WenQuanYi Micro Hei"));
        assert_eq!(choice.files[0], PathBuf::from("/f/wqy.ttc"));
        assert_eq!(choice.files.len(), 3);

        // A CJK font not in the list, known by its Chinese name.
        let mut other = fontdb::Database::new();
        other.push_face_info(face(
            "楷体",
            fontdb::Language::Chinese_PeoplesRepublicOfChina,
            fontdb::Weight::NORMAL,
            "/f/kai.ttf",
        ));
        let choice = choose_fonts(&other);
        assert_eq!(choice.cjk_family.as_deref(), Some("楷体"));
        assert_eq!(choice.files, vec![PathBuf::from("/f/kai.ttf")]);

        assert_eq!(
            choose_fonts(&fontdb::Database::new()),
            FontChoice::default()
        );
    }

    #[test]
    fn font_files_are_read_bounded_and_failures_reported() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("big.ttf");
        std::fs::write(&path, [0u8; 100]).expect("write");
        assert_eq!(read_font(&path, 100).expect("fits").len(), 100);
        assert!(matches!(
            read_font(&path, 99),
            Err(FontFileError::TooLarge { bytes_max: 99, .. })
        ));
        let missing = dir.path().join("missing.ttf");
        let err = read_font(&missing, 100).expect_err("missing");
        assert!(err.to_string().contains("missing.ttf"), "{err}");

        // A directory of things that are not fonts adds nothing, and breaks nothing.
        let fonts = load(&[dir.path().to_owned()]);
        assert!(fonts.loaded().iter().all(|p| !p.starts_with(dir.path())));
        assert_eq!(fonts.database().is_empty(), fonts.loaded().is_empty());
    }
}
