//! Plot text: one system TrueType font, registered once.

use std::sync::OnceLock;

const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Register `$RSEQ_SLICE_FONT` or a common system sans font as plotters'
/// `sans-serif`, once. False when none was found: draw without text (a
/// line on stderr says so once).
pub fn text_ok() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        let env = std::env::var("RSEQ_SLICE_FONT").ok();
        for p in env.iter().map(String::as_str).chain(FONTS.iter().copied()) {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                let style = plotters::style::FontStyle::Normal;
                if plotters::style::register_font("sans-serif", style, bytes).is_ok() {
                    return true;
                }
            }
        }
        eprintln!("no TrueType font found (set RSEQ_SLICE_FONT): plots without text");
        false
    })
}
