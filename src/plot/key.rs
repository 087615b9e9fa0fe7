//! The legend of a line or bar chart, drawn in a band under the chart: the series names with
//! their swatches, centred and wrapped into as many rows as the width needs. Outside the
//! plotting area it never covers the data, however small the chart or many the series.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// What stands before a name: a line (line charts) or a filled box (bar charts).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Swatch {
    Line,
    Box,
}

const ROW: i32 = 18;
const PAD: i32 = 4;

/// Pixels one entry takes: swatch, gap, the name (about 7 px a character at 12 px), gap.
fn entry_width(name: &str) -> i32 {
    24 + 7 * name.chars().count() as i32 + 14
}

/// The entries of each row, filled greedily left to right.
fn rows(names: &[&str], width: u32) -> Vec<Vec<usize>> {
    let room = width as i32 - 2 * 10;
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut used = 0;
    for (i, name) in names.iter().enumerate() {
        let w = entry_width(name);
        if rows.is_empty() || used + w > room {
            rows.push(Vec::new());
            used = 0;
        }
        if let Some(row) = rows.last_mut() {
            row.push(i);
        }
        used += w;
    }
    rows
}

/// Height in pixels of the band for `names` under a chart `width` pixels wide (0 without names).
pub(crate) fn height(names: &[&str], width: u32) -> u32 {
    match rows(names, width).len() as i32 {
        0 => 0,
        n => (n * ROW + 2 * PAD) as u32,
    }
}

/// Draws the entries `(name, colour)` into `area` (the band, [`height`] pixels high).
pub(crate) fn draw(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    entries: &[(&str, RGBColor)],
    swatch: Swatch,
) -> Result<(), Box<dyn std::error::Error + 'static>> {
    let names: Vec<&str> = entries.iter().map(|e| e.0).collect();
    let (width, _) = area.dim_in_pixel();
    let style = TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (r, row) in rows(&names, width).iter().enumerate() {
        let total: i32 = row.iter().map(|&i| entry_width(names[i])).sum();
        let mut x = ((width as i32 - total) / 2).max(10);
        let y = PAD + r as i32 * ROW + ROW / 2;
        for &i in row {
            let (name, color) = entries[i];
            match swatch {
                Swatch::Line => area.draw(&PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)))?,
                Swatch::Box => area.draw(&Rectangle::new([(x + 3, y - 5), (x + 15, y + 5)], color.filled()))?,
            }
            area.draw(&Text::new(name.to_string(), (x + 24, y), style.clone()))?;
            x += entry_width(name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_wrap_to_the_width() {
        let names = ["CE", "W uniform", "W importance", "W severity, d", "W severity, d²", "W severity, Huber"];
        let rows = rows(&names, 330);
        assert!(rows.len() > 1, "{rows:?}");
        assert_eq!(rows.concat(), (0..names.len()).collect::<Vec<_>>());
        for row in &rows {
            let w: i32 = row.iter().map(|&i| entry_width(names[i])).sum();
            assert!(row.len() == 1 || w <= 330 - 20, "{row:?} is {w} px");
        }
        assert_eq!(height(&[], 330), 0);
        assert_eq!(height(&names, 330), rows.len() as u32 * 18 + 8);
    }
}
