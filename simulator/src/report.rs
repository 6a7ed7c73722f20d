//! From counts to per-day volumes, monthly usage and the bill; the text table, the JSON and
//! the Origin Shield break-even table.

use super::engine::{Counts, Scenario};
use super::pricing::{Cost, MonthlyUsage, Prices, NREGIONS};
use serde_json::{json, Value};
use std::io::Write;

/// DynamoDB read units per on-demand render: the transformer reads the version item
/// (strongly consistent, under 4 KB) to map `v{N}` to the original's S3 version.
pub const DDB_RRU_PER_RENDER: f64 = 1.0;
/// DynamoDB write units per upload: the version-assignment transaction (3 items, 2 units
/// each) and the `ready` update (about 2 KB with the variant list).
pub const DDB_WRU_PER_UPLOAD: f64 = 8.0;
/// DynamoDB read units per upload: the asset's `latest` and the version item.
pub const DDB_RRU_PER_UPLOAD: f64 = 2.0;
/// Memory the Express workflow is billed for, GB (the 64 MB minimum step).
pub const WORKFLOW_GB: f64 = 0.0625;

/// The non-cache inputs of the cost model.
#[derive(Debug, Clone)]
pub struct CostInputs {
    /// Requests per day the counts are scaled to.
    pub daily_requests: f64,
    /// One on-demand render, ms.
    pub render_ms: f64,
    /// Memory of the on-demand transformer, MB.
    pub lambda_memory_mb: f64,
    /// One precompute invocation (decode + 8 variants + 8 PUTs), ms.
    pub precompute_ms: f64,
    /// Memory of the precompute function, MB.
    pub precompute_memory_mb: f64,
    /// New originals per day.
    pub uploads_per_day: f64,
    /// CloudFront invalidation paths per month (takedowns).
    pub invalidation_paths_per_month: f64,
}

impl CostInputs {
    fn render_gb_s(&self) -> f64 {
        self.render_ms / 1000.0 * self.lambda_memory_mb / 1024.0
    }

    fn precompute_gb_s(&self) -> f64 {
        self.precompute_ms / 1000.0 * self.precompute_memory_mb / 1024.0
    }
}

/// One row of the report: a scenario with Origin Shield on or off.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The cache-key design.
    pub scenario: Scenario,
    /// Origin Shield on.
    pub shield: bool,
    /// Edge hit ratio over cacheable requests.
    pub hit_ratio: f64,
    /// Shield hits over edge misses (shield on).
    pub shield_hit_ratio: Option<f64>,
    /// Viewer requests per day.
    pub requests_per_day: f64,
    /// Requests per day the normalizer rejects (400).
    pub rejected_per_day: f64,
    /// Requests per day reaching the origin.
    pub origin_requests_per_day: f64,
    /// Renders per day by the on-demand transformer.
    pub transforms_per_day: f64,
    /// Lambda GB-seconds per day (on-demand and precompute).
    pub lambda_gb_s_per_day: f64,
    /// What a month uses.
    pub usage: MonthlyUsage,
    /// The monthly bill.
    pub cost: Cost,
}

impl ScenarioResult {
    /// `naive`, `naive+shield`, ...
    pub fn name(&self) -> String {
        if self.shield {
            format!("{}+shield", self.scenario.name())
        } else {
            self.scenario.name().to_string()
        }
    }

    /// Egress per month in GB (of `bytes_per_gb`).
    pub fn egress_gb_per_month(&self, prices: &Prices) -> f64 {
        self.usage.egress_bytes.iter().sum::<f64>() / prices.bytes_per_gb
    }
}

/// Every scenario without and with Origin Shield.
pub fn results(
    counts: &[(Scenario, Counts)],
    inp: &CostInputs,
    prices: &Prices,
) -> Vec<ScenarioResult> {
    let mut out = Vec::new();
    for (scenario, c) in counts {
        for shield in [false, true] {
            out.push(result(*scenario, c, shield, inp, prices));
        }
    }
    out
}

fn result(
    scenario: Scenario,
    c: &Counts,
    shield: bool,
    inp: &CostInputs,
    prices: &Prices,
) -> ScenarioResult {
    let measured = (c.requests + c.rejected).max(1) as f64;
    let f = inp.daily_requests / measured;
    let days = prices.days_per_month;
    let stores = scenario.stores_derivatives();
    let precompute = scenario == Scenario::Precompute;
    let edge_misses = c.origin_without_shield() as f64 * f;
    let origin = if shield {
        c.origin_with_shield as f64 * f
    } else {
        edge_misses
    };
    let transforms = if stores {
        c.first_renders as f64 * f
    } else {
        origin
    };
    let uploads = if precompute { inp.uploads_per_day } else { 0.0 };
    let manifest_uploads = if stores { inp.uploads_per_day } else { 0.0 };
    let gb_s = transforms * inp.render_gb_s() + uploads * inp.precompute_gb_s();
    let rejected_lambda = if stores { 0.0 } else { c.rejected as f64 * f };
    let per_day = MonthlyUsage {
        egress_bytes: c.bytes.map(|b| b * f),
        requests: c.region_requests.map(|r| r as f64 * f),
        function_invocations: if stores { measured * f } else { 0.0 },
        lambda_invocations: transforms + rejected_lambda + uploads,
        lambda_gb_s: gb_s,
        s3_gets: if stores { origin } else { 0.0 } + transforms + uploads,
        s3_puts: if stores { transforms } else { 0.0 }
            + uploads * pixelfront_shared::Policy::get().variants.len() as f64,
        dynamodb_rru: if stores {
            transforms * DDB_RRU_PER_RENDER + manifest_uploads * DDB_RRU_PER_UPLOAD
        } else {
            0.0
        },
        dynamodb_wru: manifest_uploads * DDB_WRU_PER_UPLOAD,
        shield_requests: if shield { edge_misses } else { 0.0 },
        invalidation_paths: 0.0,
        workflow_requests: uploads,
        workflow_gb_s: uploads * inp.precompute_ms / 1000.0 * WORKFLOW_GB,
    };
    let mut usage = scale(&per_day, days);
    usage.invalidation_paths = inp.invalidation_paths_per_month;
    let cost = prices.bill(&usage);
    ScenarioResult {
        scenario,
        shield,
        hit_ratio: c.edge_hits as f64 / c.requests.max(1) as f64,
        shield_hit_ratio: shield
            .then(|| c.shield_hits as f64 / c.origin_without_shield().max(1) as f64),
        requests_per_day: measured * f,
        rejected_per_day: c.rejected as f64 * f,
        origin_requests_per_day: origin,
        transforms_per_day: transforms,
        lambda_gb_s_per_day: gb_s,
        usage,
        cost,
    }
}

fn scale(u: &MonthlyUsage, k: f64) -> MonthlyUsage {
    MonthlyUsage {
        egress_bytes: u.egress_bytes.map(|v| v * k),
        requests: u.requests.map(|v| v * k),
        function_invocations: u.function_invocations * k,
        lambda_invocations: u.lambda_invocations * k,
        lambda_gb_s: u.lambda_gb_s * k,
        s3_gets: u.s3_gets * k,
        s3_puts: u.s3_puts * k,
        dynamodb_rru: u.dynamodb_rru * k,
        dynamodb_wru: u.dynamodb_wru * k,
        shield_requests: u.shield_requests * k,
        invalidation_paths: u.invalidation_paths * k,
        workflow_requests: u.workflow_requests * k,
        workflow_gb_s: u.workflow_gb_s * k,
    }
}

/// What Origin Shield costs per request and what one shield hit saves at the origin.
#[derive(Debug, Clone)]
pub struct ShieldEconomics {
    /// USD per request reaching the shield (every edge miss).
    pub per_request: f64,
    /// USD saved per shield hit when the origin is an S3 GET of a stored derivative.
    pub s3_saving: f64,
    /// USD saved per shield hit when the origin renders (Lambda invocation, duration at the
    /// first tier, and the GET of the original).
    pub render_saving: f64,
    /// Edge misses per month of the normalized+precompute design (S3 origin).
    pub s3_misses_per_month: f64,
    /// Edge misses per month of the naive design (render origin).
    pub render_misses_per_month: f64,
}

impl ShieldEconomics {
    /// From the prices and this run's volumes.
    pub fn new(rows: &[ScenarioResult], inp: &CostInputs, prices: &Prices) -> ShieldEconomics {
        let misses = |s: Scenario| {
            rows.iter()
                .find(|r| r.scenario == s && !r.shield)
                .map_or(0.0, |r| r.origin_requests_per_day * prices.days_per_month)
        };
        let s3_get = prices.s3.get_usd_per_1000 / 1e3;
        let gb_s_price = prices.lambda.usd_per_gb_s.first().copied().unwrap_or(0.0);
        ShieldEconomics {
            per_request: prices.cloudfront.origin_shield_usd_per_10k / 1e4,
            s3_saving: s3_get,
            render_saving: prices.lambda.requests_usd_per_million / 1e6
                + inp.render_gb_s() * gb_s_price
                + s3_get,
            s3_misses_per_month: misses(Scenario::Precompute),
            render_misses_per_month: misses(Scenario::Naive),
        }
    }

    /// The shield hit ratio above which the shield saves more than it costs, if any.
    pub fn break_even(&self, saving: f64) -> Option<f64> {
        let h = self.per_request / saving;
        (saving > 0.0 && h <= 1.0).then_some(h)
    }

    /// Net monthly USD of the shield (positive: it costs more than it saves) for `misses`
    /// edge misses a month at shield hit ratio `h`.
    pub fn net(&self, misses: f64, h: f64, saving: f64) -> f64 {
        misses * (self.per_request - h * saving)
    }
}

/// Shield hit ratios of the break-even table.
pub const SHIELD_TABLE_RATIOS: [f64; 12] = [
    0.0, 0.05, 0.10, 0.15, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.95,
];

/// `1234567.8` -> `1,234,568`.
pub fn thousands(v: f64) -> String {
    let neg = v < 0.0;
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if neg && out != "0" {
        out.insert(0, '-');
    }
    out
}

/// Money for tables: whole dollars with separators from $100, cents below.
pub fn money(v: f64) -> String {
    if v.abs() >= 100.0 {
        thousands(v)
    } else {
        format!("{v:.2}")
    }
}

fn pct(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

/// Print the report as text.
pub fn print_text(
    out: &mut impl Write,
    preamble: &[String],
    rows: &[ScenarioResult],
    shield: &ShieldEconomics,
    prices: &Prices,
) -> std::io::Result<()> {
    for line in preamble {
        writeln!(out, "{line}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<28} {:>8} {:>10} {:>15} {:>15} {:>15} {:>12} {:>13}",
        "scenario",
        "edge hit",
        "shield hit",
        "origin req/day",
        "transforms/day",
        "Lambda GB-s/day",
        "egress TB/mo",
        "total $/month"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<28} {:>8} {:>10} {:>15} {:>15} {:>15} {:>12} {:>13}",
            r.name(),
            pct(r.hit_ratio),
            r.shield_hit_ratio.map_or("-".to_string(), pct),
            thousands(r.origin_requests_per_day),
            thousands(r.transforms_per_day),
            thousands(r.lambda_gb_s_per_day),
            format!("{:.1}", r.egress_gb_per_month(prices) / 1024.0),
            thousands(r.cost.total()),
        )?;
    }
    writeln!(out)?;
    writeln!(out, "monthly cost by line item ({})", prices.currency)?;
    let items = Cost::default().items();
    write!(out, "{:<28}", "scenario")?;
    for (_, header, _) in items {
        write!(out, " {:>9}", header)?;
    }
    writeln!(out, " {:>9}", "total")?;
    for r in rows {
        write!(out, "{:<28}", r.name())?;
        for (_, _, v) in r.cost.items() {
            write!(out, " {:>9}", money(v))?;
        }
        writeln!(out, " {:>9}", money(r.cost.total()))?;
    }
    writeln!(out)?;
    print_shield(out, rows, shield, prices)
}

fn print_shield(
    out: &mut impl Write,
    rows: &[ScenarioResult],
    s: &ShieldEconomics,
    prices: &Prices,
) -> std::io::Result<()> {
    writeln!(
        out,
        "Origin Shield: ${} per 10,000 requests reaching it ({}), i.e. every edge miss; each shield hit saves one origin request:",
        prices.cloudfront.origin_shield_usd_per_10k, prices.cloudfront.origin_shield_region
    )?;
    let verdict = |saving: f64| match s.break_even(saving) {
        Some(h) => format!("pays above a {} shield hit ratio", pct(h)),
        None => format!(
            "never pays (a hit saves at most {:.0} % of what the request to the shield costs)",
            saving / s.per_request * 100.0
        ),
    };
    writeln!(
        out,
        "  S3 origin (normalized designs, derivative already stored): ${:.7} per hit -> {}",
        s.s3_saving,
        verdict(s.s3_saving)
    )?;
    writeln!(
        out,
        "  render origin (naive designs, every origin request renders): ${:.7} per hit -> {}",
        s.render_saving,
        verdict(s.render_saving)
    )?;
    writeln!(
        out,
        "{:>17} {:>26} {:>26}",
        "shield hit ratio", "S3 origin, net $/month", "render origin, net $/month"
    )?;
    for h in SHIELD_TABLE_RATIOS {
        writeln!(
            out,
            "{:>17} {:>26} {:>26}",
            pct(h),
            signed(s.net(s.s3_misses_per_month, h, s.s3_saving)),
            signed(s.net(s.render_misses_per_month, h, s.render_saving)),
        )?;
    }
    writeln!(
        out,
        "  (at this run's edge misses: {} a month for normalized+precompute, {} for naive; positive = the shield costs more than it saves)",
        thousands(s.s3_misses_per_month),
        thousands(s.render_misses_per_month)
    )?;
    let measured: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            r.shield_hit_ratio
                .map(|h| format!("{} {}", r.scenario.name(), pct(h)))
        })
        .collect();
    writeln!(out, "  measured shield hit ratio: {}", measured.join(", "))
}

fn signed(v: f64) -> String {
    if v > 0.5 {
        format!("+{}", money(v))
    } else {
        money(v)
    }
}

/// The report as JSON: `{"scenarios":[{"name", "hit_ratio", "transforms_per_day",
/// "monthly_cost_usd":{"egress", ..., "total"}, ...}], ...}`.
pub fn json(
    settings: Value,
    rows: &[ScenarioResult],
    s: &ShieldEconomics,
    prices: &Prices,
) -> Value {
    let scenarios: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut cost = serde_json::Map::new();
            for (name, _, v) in r.cost.items() {
                cost.insert(name.to_string(), json!(round2(v)));
            }
            cost.insert("total".into(), json!(round2(r.cost.total())));
            let egress_by_region: serde_json::Map<String, Value> = (0..NREGIONS)
                .filter(|&i| r.usage.egress_bytes[i] > 0.0)
                .map(|i| {
                    (
                        super::pricing::REGIONS[i].to_string(),
                        json!(round2(r.usage.egress_bytes[i] / prices.bytes_per_gb)),
                    )
                })
                .collect();
            json!({
                "name": r.name(),
                "keys": r.scenario.name(),
                "origin_shield": r.shield,
                "hit_ratio": round6(r.hit_ratio),
                "shield_hit_ratio": r.shield_hit_ratio.map(round6),
                "requests_per_day": r.requests_per_day.round(),
                "rejected_per_day": r.rejected_per_day.round(),
                "origin_requests_per_day": r.origin_requests_per_day.round(),
                "transforms_per_day": r.transforms_per_day.round(),
                "lambda_gb_s_per_day": r.lambda_gb_s_per_day.round(),
                "egress_gb_per_month": round2(r.egress_gb_per_month(prices)),
                "egress_gb_per_month_by_region": egress_by_region,
                "monthly_cost_usd": cost,
            })
        })
        .collect();
    json!({
        "settings": settings,
        "prices": {"source": prices.source, "read": prices.read, "currency": prices.currency},
        "scenarios": scenarios,
        "origin_shield": {
            "usd_per_request": s.per_request,
            "s3_origin": {
                "usd_saved_per_hit": s.s3_saving,
                "break_even_hit_ratio": s.break_even(s.s3_saving).map(round6),
            },
            "render_origin": {
                "usd_saved_per_hit": s.render_saving,
                "break_even_hit_ratio": s.break_even(s.render_saving).map(round6),
            },
            "table": SHIELD_TABLE_RATIOS.iter().map(|&h| json!({
                "shield_hit_ratio": h,
                "s3_origin_net_usd_per_month": round2(s.net(s.s3_misses_per_month, h, s.s3_saving)),
                "render_origin_net_usd_per_month": round2(s.net(s.render_misses_per_month, h, s.render_saving)),
            })).collect::<Vec<_>>(),
        },
    })
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> CostInputs {
        CostInputs {
            daily_requests: 1000.0,
            render_ms: 200.0,
            lambda_memory_mb: 1024.0,
            precompute_ms: 500.0,
            precompute_memory_mb: 2048.0,
            uploads_per_day: 10.0,
            invalidation_paths_per_month: 0.0,
        }
    }

    fn counts() -> Counts {
        let mut c = Counts {
            requests: 90,
            rejected: 10,
            edge_hits: 60,
            shield_hits: 20,
            origin_with_shield: 10,
            first_renders: 5,
            ..Counts::default()
        };
        c.region_requests[0] = 100;
        c.bytes[0] = 100.0 * 40_000.0;
        c
    }

    #[test]
    fn per_day_volumes_hand_computed() {
        let p = Prices::builtin().unwrap();
        let rows = results(
            &[
                (Scenario::Naive, counts()),
                (Scenario::Precompute, counts()),
            ],
            &inputs(),
            &p,
        );
        let names: Vec<String> = rows.iter().map(ScenarioResult::name).collect();
        assert_eq!(
            names,
            [
                "naive",
                "naive+shield",
                "normalized+precompute",
                "normalized+precompute+shield"
            ]
        );
        // 100 measured requests stand for 1000 a day: factor 10.
        let naive = &rows[0];
        assert!((naive.hit_ratio - 60.0 / 90.0).abs() < 1e-12);
        assert_eq!(naive.origin_requests_per_day, 300.0);
        assert_eq!(naive.transforms_per_day, 300.0);
        assert!((naive.lambda_gb_s_per_day - 300.0 * 0.2).abs() < 1e-9);
        // Rejected requests reach the naive transformer (one invocation each, no render).
        assert!((naive.usage.lambda_invocations - (300.0 + 100.0) * 30.0).abs() < 1e-6);
        assert_eq!(naive.usage.function_invocations, 0.0);
        let naive_shield = &rows[1];
        assert_eq!(naive_shield.origin_requests_per_day, 100.0);
        assert_eq!(naive_shield.shield_hit_ratio, Some(20.0 / 30.0));
        assert!((naive_shield.usage.shield_requests - 300.0 * 30.0).abs() < 1e-6);
        // Precompute: 50 renders/day, with or without shield; uploads add 10 invocations of
        // 0.5 s x 2 GB, 8 PUTs each.
        for r in &rows[2..] {
            assert_eq!(r.transforms_per_day, 50.0);
            assert!((r.lambda_gb_s_per_day - (50.0 * 0.2 + 10.0 * 1.0)).abs() < 1e-9);
            assert!((r.usage.s3_puts - (50.0 + 80.0) * 30.0).abs() < 1e-6);
            assert!((r.usage.function_invocations - 1000.0 * 30.0).abs() < 1e-6);
            assert!((r.usage.dynamodb_wru - 80.0 * 30.0).abs() < 1e-6);
        }
        assert!((rows[2].usage.s3_gets - (300.0 + 50.0 + 10.0) * 30.0).abs() < 1e-6);
        assert!((rows[3].usage.s3_gets - (100.0 + 50.0 + 10.0) * 30.0).abs() < 1e-6);
        // Egress: 4 MB measured x 10 x 30 days.
        assert!((naive.usage.egress_bytes[0] - 4e6 * 10.0 * 30.0).abs() < 1e-3);
    }

    #[test]
    fn shield_break_even() {
        let p = Prices::builtin().unwrap();
        let rows = results(&[(Scenario::Naive, counts())], &inputs(), &p);
        let s = ShieldEconomics::new(&rows, &inputs(), &p);
        assert!((s.per_request - 0.0075 / 1e4).abs() < 1e-15);
        // An S3 GET ($0.0004 / 1000) is cheaper than a shield request ($0.0075 / 10,000).
        assert_eq!(s.break_even(s.s3_saving), None);
        // A render at 1 GB for 0.2 s: $0.2/M + 0.2 GB-s + $0.0004/1000.
        let render = 0.2e-6 + 0.2 * 0.0000133334 + 0.4e-6;
        assert!((s.render_saving - render).abs() < 1e-15);
        let h = s.break_even(s.render_saving).unwrap();
        assert!((h - 0.75e-6 / render).abs() < 1e-12);
        assert!(s.net(1e6, h, s.render_saving).abs() < 1e-9);
        assert!(s.net(1e6, 0.0, s.render_saving) > 0.0);
        assert!(s.net(1e6, 1.0, s.render_saving) < 0.0);
    }

    #[test]
    fn number_formats() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(-1234.0), "-1,234");
        assert_eq!(money(3.456), "3.46");
        assert_eq!(money(72_683.2), "72,683");
    }
}
