//! A small PDF 1.4 writer, pure: A4 pages with text in the standard Helvetica fonts (no font
//! files to ship) and filled rectangles and lines for charts. Enough for reports; nothing else.
//!
//! Text is encoded as WinAnsi; characters outside it are replaced by `?` rather than dropped
//! silently.

use std::fmt::Write;

/// A4 in PDF points.
pub const PAGE_W: f32 = 595.0;
/// A4 height.
pub const PAGE_H: f32 = 842.0;

/// An RGB colour, 0–255.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// A document being written.
#[derive(Debug, Default)]
pub struct Pdf {
    pages: Vec<String>,
    title: String,
}

impl Pdf {
    /// A document with a title (in its metadata).
    pub fn new(title: &str) -> Pdf {
        Pdf {
            pages: vec![String::new()],
            title: title.to_owned(),
        }
    }

    /// Starts a new page.
    pub fn page(&mut self) {
        self.pages.push(String::new());
    }

    /// Pages so far.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    fn cur(&mut self) -> &mut String {
        self.pages.last_mut().expect("a document always has a page")
    }

    /// Text with its baseline at (x, y) from the bottom-left, in points.
    pub fn text(&mut self, x: f32, y: f32, size: f32, bold: bool, colour: Rgb, s: &str) {
        let font = if bold { "F2" } else { "F1" };
        let (r, g, b) = rgb(colour);
        let esc = escape(s);
        let _ = writeln!(
            self.cur(),
            "BT {r} {g} {b} rg /{font} {size} Tf {x:.1} {y:.1} Td ({esc}) Tj ET"
        );
    }

    /// A filled rectangle.
    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, colour: Rgb) {
        let (r, g, b) = rgb(colour);
        let _ = writeln!(
            self.cur(),
            "{r} {g} {b} rg {x:.1} {y:.1} {w:.1} {h:.1} re f"
        );
    }

    /// A straight line.
    pub fn line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, width: f32, colour: Rgb) {
        let (r, g, b) = rgb(colour);
        let _ = writeln!(
            self.cur(),
            "{r} {g} {b} RG {width:.1} w {x1:.1} {y1:.1} m {x2:.1} {y2:.1} l S"
        );
    }

    /// The finished file.
    pub fn finish(self) -> Vec<u8> {
        let n = self.pages.len();
        // Objects: 1 catalog, 2 pages, 3 Helvetica, 4 Helvetica-Bold, 5 info, then per page
        // (page, contents).
        let mut objects: Vec<String> = Vec::new();
        objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
        let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 6 + 2 * i)).collect();
        objects.push(format!(
            "<< /Type /Pages /Kids [{}] /Count {n} >>",
            kids.join(" ")
        ));
        objects.push(
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .into(),
        );
        objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>".into());
        objects.push(format!(
            "<< /Title ({}) /Producer (Watchhouse) >>",
            escape(&self.title)
        ));
        for (i, content) in self.pages.iter().enumerate() {
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
                7 + 2 * i
            ));
            objects.push(format!(
                "<< /Length {} >>\nstream\n{content}endstream",
                content.len()
            ));
        }
        let mut out: Vec<u8> = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let mut offsets = Vec::with_capacity(objects.len());
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        let mut x = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
        for o in offsets {
            let _ = writeln!(x, "{o:010} 00000 n ");
        }
        let _ = write!(
            x,
            "trailer\n<< /Size {} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        );
        out.extend_from_slice(x.as_bytes());
        out
    }
}

fn rgb(c: Rgb) -> (String, String, String) {
    let f = |v: u8| format!("{:.3}", v as f32 / 255.0);
    (f(c.0), f(c.1), f(c.2))
}

/// Escapes a string for a PDF literal, mapping to WinAnsi (Latin-1 plus a few typographic
/// characters); anything else becomes `?`.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        let b: u32 = match ch {
            '–' => 0x96,
            '—' => 0x97,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '…' => 0x85,
            '€' => 0x80,
            c if (c as u32) < 0x20 => ' ' as u32,
            c if (c as u32) <= 0xff => c as u32,
            _ => '?' as u32,
        };
        match b {
            0x28 => out.push_str("\\("),
            0x29 => out.push_str("\\)"),
            0x5c => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from_u32(b).unwrap_or('?')),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_structure() {
        assert_eq!(escape("a(b)c\\"), "a\\(b\\)c\\\\");
        assert_eq!(escape("£5 – ok 漢"), "\\2435 \\226 ok ?");
        let mut p = Pdf::new("T");
        p.text(50.0, 800.0, 12.0, true, Rgb(0, 0, 0), "Hello");
        p.rect(50.0, 500.0, 100.0, 50.0, Rgb(29, 112, 184));
        p.page();
        p.line(0.0, 0.0, 10.0, 10.0, 1.0, Rgb(0, 0, 0));
        let b = p.finish();
        let s = String::from_utf8_lossy(&b);
        assert!(s.starts_with("%PDF-1.4"));
        assert!(s.contains("/Count 2"));
        assert!(s.trim_end().ends_with("%%EOF"));
        // Every xref offset points at its object.
        let xref = s.find("xref\n").unwrap();
        for (i, line) in s[xref..].lines().skip(3).take(8).enumerate() {
            let off: usize = line[..10].parse().unwrap();
            assert!(
                b[off..].starts_with(format!("{} 0 obj", i + 1).as_bytes()),
                "object {}",
                i + 1
            );
        }
    }
}
