//! `--plot FILE.svg`: hit ratios and monthly cost per scenario, as a hand-written SVG (no
//! plotting dependency). Left: the edge hit ratio of each design and the share of requests
//! that never reach the origin with Origin Shield on. Right: the monthly bill of every
//! scenario, stacked by line item.

use super::report::{thousands, ScenarioResult};
use std::fmt::Write;

const WIDTH: f64 = 1100.0;
const HEIGHT: f64 = 640.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 420.0;

/// Line-item colours, in bill order.
const COLOURS: [&str; 11] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#86bcb6",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round axis maximum at or above `v`.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powi(v.log10().floor() as i32);
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|m| *m >= v)
        .unwrap_or(10.0 * mag)
}

/// The SVG document for `rows` (as from [`super::report::results`]).
pub fn svg(title: &str, rows: &[ScenarioResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" font-size="16" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        esc(title)
    );
    hit_panel(&mut s, rows, 60.0, 420.0);
    cost_panel(&mut s, rows, 530.0, 1080.0);
    s.push_str("</svg>\n");
    s
}

fn y_axis(s: &mut String, x0: f64, x1: f64, max: f64, label: impl Fn(f64) -> String) {
    for i in 0..=5 {
        let v = max * f64::from(i) / 5.0;
        let y = BOTTOM - (BOTTOM - TOP) * f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0 - 6.0,
            y + 4.0,
            esc(&label(v))
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{x0}" y1="{TOP}" x2="{x0}" y2="{BOTTOM}" stroke="black"/><line x1="{x0}" y1="{BOTTOM}" x2="{x1}" y2="{BOTTOM}" stroke="black"/>"#
    );
}

fn x_label(s: &mut String, x: f64, text: &str) {
    let y = BOTTOM + 14.0;
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="end" transform="rotate(-35 {x:.1} {y:.1})">{}</text>"#,
        esc(text)
    );
}

fn hit_panel(s: &mut String, rows: &[ScenarioResult], x0: f64, x1: f64) {
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="55" text-anchor="middle" font-size="14">cache hit ratio</text>"#,
        (x0 + x1) / 2.0
    );
    y_axis(s, x0, x1, 1.0, |v| format!("{:.0} %", v * 100.0));
    let designs: Vec<&ScenarioResult> = rows.iter().filter(|r| !r.shield).collect();
    let group = (x1 - x0) / designs.len().max(1) as f64;
    let bar = group * 0.32;
    for (i, r) in designs.iter().enumerate() {
        let gx = x0 + group * i as f64 + group * 0.15;
        let offload = rows
            .iter()
            .find(|o| o.scenario == r.scenario && o.shield)
            .map(|o| {
                let cacheable = o.requests_per_day - o.rejected_per_day;
                if cacheable > 0.0 {
                    1.0 - o.origin_requests_per_day / cacheable
                } else {
                    0.0
                }
            })
            .unwrap_or(0.0);
        for (j, (v, colour)) in [(r.hit_ratio, "#4e79a7"), (offload, "#a0cbe8")]
            .iter()
            .enumerate()
        {
            let h = (BOTTOM - TOP) * v.clamp(0.0, 1.0);
            let x = gx + bar * j as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{h:.1}" fill="{colour}"><title>{:.1} %</title></rect><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{:.0}</text>"#,
                BOTTOM - h,
                v * 100.0,
                x + bar / 2.0,
                BOTTOM - h - 3.0,
                v * 100.0
            );
        }
        x_label(s, gx + bar, r.scenario.name());
    }
    let ly = HEIGHT - 60.0;
    for (j, (text, colour)) in [
        ("edge hit ratio", "#4e79a7"),
        ("never reaches the origin, with Origin Shield", "#a0cbe8"),
    ]
    .iter()
    .enumerate()
    {
        let y = ly + 16.0 * j as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x0}" y="{:.1}" width="10" height="10" fill="{colour}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            y - 9.0,
            x0 + 14.0,
            y,
            esc(text)
        );
    }
}

fn cost_panel(s: &mut String, rows: &[ScenarioResult], x0: f64, x1: f64) {
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="55" text-anchor="middle" font-size="14">monthly cost (USD) by line item</text>"#,
        (x0 + x1) / 2.0
    );
    let max = nice_max(rows.iter().map(|r| r.cost.total()).fold(0.0, f64::max));
    y_axis(s, x0, x1, max, |v| format!("${}", thousands(v)));
    let slot = (x1 - x0) / rows.len().max(1) as f64;
    let bar = slot * 0.6;
    let mut used = [false; COLOURS.len()];
    for (i, r) in rows.iter().enumerate() {
        let x = x0 + slot * i as f64 + slot * 0.2;
        let mut y = BOTTOM;
        for (k, (name, _, v)) in r.cost.items().iter().enumerate() {
            if *v <= 0.0 {
                continue;
            }
            used[k] = true;
            let h = (BOTTOM - TOP) * v / max;
            y -= h;
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y:.2}" width="{bar:.1}" height="{h:.2}" fill="{}"><title>{} {}: ${}</title></rect>"#,
                COLOURS[k % COLOURS.len()],
                esc(&r.name()),
                name,
                thousands(*v)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}k</text>"#,
            x + bar / 2.0,
            y - 3.0,
            thousands(r.cost.total() / 1000.0)
        );
        x_label(s, x + bar / 2.0, &r.name());
    }
    let names = rows
        .first()
        .map(|r| r.cost.items().map(|i| i.0))
        .unwrap_or_default();
    let mut n = 0;
    for (k, name) in names.iter().enumerate() {
        if !used[k] {
            continue;
        }
        let lx = x0 + 130.0 * (n % 4) as f64;
        let ly = HEIGHT - 60.0 + 16.0 * (n / 4) as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{ly:.1}">{}</text>"#,
            ly - 9.0,
            COLOURS[k % COLOURS.len()],
            lx + 14.0,
            esc(name)
        );
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axis_maxima() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(0.7), 1.0);
        assert_eq!(nice_max(130_000.0), 200_000.0);
        assert_eq!(nice_max(72_000.0), 100_000.0);
        assert_eq!(nice_max(2_400.0), 2_500.0);
    }

    #[test]
    fn escapes_text() {
        assert_eq!(esc("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
