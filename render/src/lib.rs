//! huren-render: how a licence looks. QR images of the `HZ1:` text (PNG, SVG, terminal)
//! and reading them back from a photo (`qr`), and the citizen's printable licence card
//! (`card`).
//!
//! Presentation, not protocol: nothing here decides whether a credential is genuine or
//! still valid; `huren_core::verify` does, and a card is made only from the
//! `GenuineCredential` a verification decision hands out. This crate is where the image,
//! QR and font crates live, so that `huren-core` has none of them.

pub mod card;
pub mod qr;
