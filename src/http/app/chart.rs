//! Bar charts as SVG drawn on the server: a title and a description for
//! screen readers, and each bar's exact figure as its own title (the page
//! also shows the figures in a table).

use maud::{html, Markup};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 8.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 16.0;

/// One bar: its label under the axis, and its exact value.
pub struct Bar {
    pub label: String,
    pub value: Decimal,
}

/// A bar chart of `bars` titled `title`; `unit` follows each value in the
/// bars' titles. Heights are drawn from the values scaled to the largest
/// (drawing may round; the figures shown are the exact ones).
pub fn bars(id: &str, title: &str, unit: &str, bars: &[Bar]) -> Markup {
    let max = bars
        .iter()
        .map(|b| b.value)
        .max()
        .filter(|m| *m > Decimal::ZERO);
    let slot = (WIDTH - LEFT) / bars.len().max(1) as f64;
    let plot = HEIGHT - BOTTOM - TOP;
    // Every label when they fit, else about ten of them.
    let label_every = (bars.len() / 10).max(1);
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    html! {
        svg class="chart" id=(id) role="img" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
            aria-labelledby={ (title_id) " " (desc_id) } xmlns="http://www.w3.org/2000/svg" {
            title id=(title_id) { (title) }
            desc id=(desc_id) {
                (bars.len()) " bars"
                @if let Some(max) = max { "; the largest is " (max) " " (unit) }
                "."
            }
            line x1=(LEFT) y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) stroke="#d5dbe3" {}
            @for (i, bar) in bars.iter().enumerate() {
                @let share = max.map_or(0.0, |m| (bar.value / m).to_f64().unwrap_or(0.0).clamp(0.0, 1.0));
                @let h = share * plot;
                @let x = LEFT + slot * i as f64;
                rect class="bar" x=(round(x + slot * 0.1)) y=(round(HEIGHT - BOTTOM - h))
                    width=(round(slot * 0.8)) height=(round(h)) {
                    title { (bar.label) ": " (bar.value) " " (unit) }
                }
                @if i % label_every == 0 {
                    text x=(round(x + slot / 2.0)) y=(HEIGHT - BOTTOM + 16.0) text-anchor="middle" {
                        (bar.label)
                    }
                }
            }
        }
    }
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tallest_bar_fills_the_plot_and_titles_carry_exact_figures() {
        let svg = bars(
            "c",
            "Revenue",
            "EUR",
            &[
                Bar {
                    label: "a".into(),
                    value: Decimal::new(1050, 2),
                },
                Bar {
                    label: "b".into(),
                    value: Decimal::new(2100, 2),
                },
            ],
        )
        .into_string();
        assert!(svg.contains("<title>b: 21.00 EUR</title>"), "{svg}");
        assert!(
            svg.contains(&format!("height=\"{}\"", HEIGHT - BOTTOM - TOP)),
            "{svg}"
        );
        assert!(svg.contains("role=\"img\""));
        let empty = bars("e", "None", "EUR", &[]).into_string();
        assert!(empty.contains("0 bars"));
    }
}
