//! huren-render: how a licence looks. QR images of the `HZ1:` text (PNG, SVG, terminal)
//! and reading them back from a photo (`qr`), the citizen's printable licence card
//! (`card`), and the one font loader for its PNG (`fonts`), shared by node and client.
//!
//! Presentation, not protocol: nothing here decides whether a credential is genuine or
//! still valid; `huren_core::verify` does, and a card is made only from the
//! `GenuineCredential` a verification decision hands out. This crate is where the image,
//! QR and font crates live, so that `huren-core` has none of them. Only `fonts` reads
//! files (the installed fonts); everything else works on bytes and strings.

pub mod card;
pub mod fonts;
pub mod qr;
