//! Charts as SVG drawn on the server: a title and a description for screen
//! readers, an axis with values and gridlines, and each bar's exact figure
//! as its own title (the page also shows the figures in a table). Labels
//! are placed so that none overlaps another or leaves the picture, however
//! many bars there are.

use maud::{html, Markup};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;

const WIDTH: f64 = 720.0;
/// Room for the value axis's labels.
const LEFT: f64 = 76.0;
const RIGHT: f64 = 28.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 30.0;
/// A generous width per character of a label (the stylesheet's 11px font),
/// for placing them.
const CHAR_WIDTH: f64 = 6.6;
/// Gridlines on the value axis, about.
const TICKS: u32 = 4;
/// Rows of the ranking; the rest are summed as "Others".
pub const RANKED: usize = 20;
/// Height of a ranking's row, and the width of its names.
const ROW: f64 = 22.0;
const NAME_WIDTH: f64 = 190.0;
/// Characters of a name shown in a ranking (the rest is cut with "…").
const NAME_CHARS: usize = 27;

/// One bar: its label, and its exact value.
pub struct Bar {
    pub label: String,
    pub value: Decimal,
}

/// How values read on the axis and in titles (the shop's money).
pub type Format<'a> = &'a dyn Fn(Decimal) -> String;

/// Vertical bars in order (days): a value axis on the left with
/// gridlines, and as many labels under the bars as fit side by side.
pub fn columns(id: &str, title: &str, bars: &[Bar], format: Format) -> Markup {
    let height = 240.0;
    let plot = height - TOP - BOTTOM;
    let ticks = ticks(bars.iter().map(|b| b.value).max());
    let top = ticks.last().copied().unwrap_or(Decimal::ONE);
    let slot = (WIDTH - LEFT - RIGHT) / bars.len().max(1) as f64;
    let widest = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0);
    let every = label_every(slot, widest);
    let y = |v: Decimal| height - BOTTOM - share(v, top) * plot;
    html! {
        svg class="chart" id=(id) role="img" viewBox={ "0 0 " (WIDTH) " " (height) }
            aria-labelledby={ (id) "-title " (id) "-desc" } xmlns="http://www.w3.org/2000/svg" {
            title id={ (id) "-title" } { (title) }
            desc id={ (id) "-desc" } { (describe(bars, format)) }
            @for t in &ticks {
                line class="grid" x1=(LEFT) y1=(round(y(*t))) x2=(WIDTH - RIGHT) y2=(round(y(*t))) {}
                text class="axis" x=(LEFT - 6.0) y=(round(y(*t) + 4.0)) text-anchor="end" { (axis(*t, format)) }
            }
            @for (i, bar) in bars.iter().enumerate() {
                @let x = LEFT + slot * i as f64;
                rect class="bar" x=(round(x + slot * 0.15)) y=(round(y(bar.value)))
                    width=(round(slot * 0.7)) height=(round(height - BOTTOM - y(bar.value))) {
                    title { (bar.label) ": " (format(bar.value)) }
                }
                // Counted from the last bar: today always has its label.
                @if (bars.len() - 1 - i).is_multiple_of(every) {
                    text x=(round(x + slot / 2.0)) y=(height - BOTTOM + 18.0) text-anchor="middle" { (bar.label) }
                }
            }
        }
    }
}

/// Horizontal bars, largest first: the top [`RANKED`] by value and the
/// rest summed as "Others", one row each, so names never collide.
pub fn ranking(id: &str, title: &str, bars: &[Bar], format: Format) -> Markup {
    let mut sorted: Vec<&Bar> = bars.iter().collect();
    sorted.sort_by_key(|b| std::cmp::Reverse(b.value));
    let rest: Decimal = sorted.iter().skip(RANKED).map(|b| b.value).sum();
    let others = Bar {
        label: format!("Others ({})", sorted.len().saturating_sub(RANKED)),
        value: rest,
    };
    let mut rows: Vec<&Bar> = sorted.into_iter().take(RANKED).collect();
    if bars.len() > RANKED {
        rows.push(&others);
    }
    let ticks = ticks(rows.iter().map(|b| b.value).max());
    let top = ticks.last().copied().unwrap_or(Decimal::ONE);
    let height = TOP + ROW * rows.len().max(1) as f64 + BOTTOM;
    // Room after the longest bar for its figure.
    let (start, end) = (NAME_WIDTH, WIDTH - RIGHT - 100.0);
    let x = |v: Decimal| start + share(v, top) * (end - start);
    html! {
        svg class="chart ranking" id=(id) role="img" viewBox={ "0 0 " (WIDTH) " " (height) }
            aria-labelledby={ (id) "-title " (id) "-desc" } xmlns="http://www.w3.org/2000/svg" {
            title id={ (id) "-title" } { (title) }
            desc id={ (id) "-desc" } { (describe(bars, format)) }
            @for (n, t) in ticks.iter().enumerate() {
                line class="grid" x1=(round(x(*t))) y1=(TOP) x2=(round(x(*t))) y2=(height - BOTTOM) {}
                // Every other value when they would crowd.
                @if n % 2 == 0 || ticks.len() <= 4 {
                    text class="axis" x=(round(x(*t))) y=(height - BOTTOM + 16.0) text-anchor="middle" { (axis(*t, format)) }
                }
            }
            @for (i, bar) in rows.iter().enumerate() {
                @let top_of_row = TOP + ROW * i as f64;
                @let width = x(bar.value) - start;
                text x=(start - 8.0) y=(round(top_of_row + ROW * 0.68)) text-anchor="end" { (cut(&bar.label)) }
                rect class="bar" x=(start) y=(round(top_of_row + ROW * 0.18)) width=(round(width)) height=(round(ROW * 0.64)) {
                    title { (bar.label) ": " (format(bar.value)) }
                }
                text class="value" x=(round(start + width + 6.0)) y=(round(top_of_row + ROW * 0.68)) { (format(bar.value)) }
            }
        }
    }
}

/// "30 bars; the largest is €1,234.50."
fn describe(bars: &[Bar], format: Format) -> String {
    match bars.iter().map(|b| b.value).max() {
        Some(max) if max > Decimal::ZERO => {
            format!("{} bars; the largest is {}.", bars.len(), format(max))
        }
        _ => format!("{} bars, all zero.", bars.len()),
    }
}

/// The value axis: 0 and about [`TICKS`] round steps up to at least `max`
/// (1, 2, 2.5 or 5 times a power of ten).
fn ticks(max: Option<Decimal>) -> Vec<Decimal> {
    let max = max.filter(|m| *m > Decimal::ZERO).unwrap_or(Decimal::ONE);
    let raw = (max / Decimal::from(TICKS))
        .to_f64()
        .unwrap_or(1.0)
        .max(0.01);
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    let step = Decimal::from_f64(step).unwrap_or(Decimal::ONE).round_dp(2);
    let mut out = vec![Decimal::ZERO];
    while out.last().is_some_and(|t| *t < max) && out.len() <= 12 {
        let next = out.last().copied().unwrap_or_default() + step;
        out.push(next);
    }
    out
}

/// An axis value: whole amounts without their cents.
fn axis(value: Decimal, format: Format) -> String {
    let text = format(value);
    if value.fract().is_zero() {
        text.replace(".00", "")
    } else {
        text
    }
}

fn share(value: Decimal, top: Decimal) -> f64 {
    if top <= Decimal::ZERO {
        return 0.0;
    }
    (value / top).to_f64().unwrap_or(0.0).clamp(0.0, 1.0)
}

/// Every how many bars a label fits, for labels of `chars` characters.
fn label_every(slot: f64, chars: usize) -> usize {
    let needed = chars as f64 * CHAR_WIDTH + 8.0;
    (needed / slot).ceil().max(1.0) as usize
}

fn cut(name: &str) -> String {
    if name.chars().count() <= NAME_CHARS {
        return name.to_string();
    }
    let kept: String = name.chars().take(NAME_CHARS - 1).collect();
    format!("{kept}…")
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stylesheet's font size of every label.
    const FONT: f64 = 11.0;

    fn euros(v: Decimal) -> String {
        format!("€{v:.2}")
    }

    fn bar(label: String, cents: i64) -> Bar {
        Bar {
            label,
            value: Decimal::new(cents, 2),
        }
    }

    /// The text boxes of an SVG: (left, right, top, bottom) estimated from
    /// position, anchor and length, as a browser would lay them out.
    fn text_boxes(svg: &str) -> Vec<(f64, f64, f64, f64, String)> {
        let attr = |tag: &str, name: &str| -> Option<f64> {
            let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
            tag[at..].split('"').next()?.parse().ok()
        };
        svg.split("<text")
            .skip(1)
            .filter_map(|rest| {
                let (tag, after) = rest.split_once('>')?;
                let content = after.split("</text>").next()?.to_string();
                let (x, y) = (attr(tag, "x")?, attr(tag, "y")?);
                let width = content.chars().count() as f64 * CHAR_WIDTH;
                let left = if tag.contains("text-anchor=\"end\"") {
                    x - width
                } else if tag.contains("text-anchor=\"middle\"") {
                    x - width / 2.0
                } else {
                    x
                };
                Some((left, left + width, y - FONT, y + 2.0, content))
            })
            .collect()
    }

    fn assert_no_overlap(svg: &str) {
        let boxes = text_boxes(svg);
        assert!(!boxes.is_empty());
        for (i, a) in boxes.iter().enumerate() {
            assert!(a.0 >= 0.0 && a.1 <= WIDTH, "{:?} leaves the picture", a.4);
            for b in &boxes[i + 1..] {
                let apart = a.1 <= b.0 || b.1 <= a.0 || a.3 <= b.2 || b.3 <= a.2;
                assert!(apart, "{:?} overlaps {:?}", a.4, b.4);
            }
        }
    }

    #[test]
    fn at_200_products_no_two_labels_of_the_ranking_overlap() {
        let bars: Vec<Bar> = (0..200)
            .map(|i| {
                bar(
                    format!("Product with a rather long name number {i}"),
                    100 + i * 37,
                )
            })
            .collect();
        let svg = ranking("p", "Revenue by product", &bars, &euros).into_string();
        assert_no_overlap(&svg);
        // The top 20 by revenue, then the rest as one row.
        assert!(svg.contains("Others (180)"), "{svg}");
        assert!(svg.contains(&format!(
            "<title>Product with a rather long name number 199: {}</title>",
            euros(Decimal::new(100 + 199 * 37, 2))
        )));
        assert!(
            !svg.contains("number 0:"),
            "the smallest is among the others"
        );
    }

    #[test]
    fn a_year_of_days_has_readable_labels_and_an_axis_with_values() {
        for days in [1, 7, 30, 90, 400] {
            let bars: Vec<Bar> = (0..days)
                .map(|i| bar(format!("{} Nov", i % 28 + 1), 1000 * (i % 9) + 5))
                .collect();
            let svg = columns("d", "Revenue per day", &bars, &euros).into_string();
            assert_no_overlap(&svg);
            assert!(svg.contains("class=\"grid\""), "gridlines");
            assert!(svg.contains(">€0<"), "the axis starts at zero: {svg}");
        }
    }

    #[test]
    fn the_axis_reaches_past_the_largest_value_in_round_steps() {
        let t = ticks(Some(Decimal::new(123_456, 2)));
        assert_eq!(t.first(), Some(&Decimal::ZERO));
        assert!(t.last().is_some_and(|l| *l >= Decimal::new(123_456, 2)));
        assert!(t.len() <= 7, "{t:?}");
        assert_eq!(t[1], Decimal::new(500, 0), "{t:?}");
        assert_eq!(ticks(None), ticks(Some(Decimal::ONE)));
    }
}
