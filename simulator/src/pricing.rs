//! Prices (from `simulator/pricing.json`, or `--prices FILE`) and the monthly bill of a usage.
//!
//! The data file says where and when its numbers were read; this module only does arithmetic:
//! tiered egress per CloudFront geographic region, requests per region, and the per-request or
//! per-GB-second items of the other services.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The built-in price file, verbatim.
pub const PRICES_JSON: &str = include_str!("../pricing.json");

/// CloudFront's pricing regions, in the order of the price page; `REGIONS[i]` is region `i`.
pub const REGIONS: [&str; 8] = ["na", "eu", "za_me", "sa", "jp", "au", "ap", "in"];

/// Number of pricing regions.
pub const NREGIONS: usize = REGIONS.len();

/// The index of a region key (`na`, `eu`, ...).
pub fn region_index(key: &str) -> Option<usize> {
    REGIONS.iter().position(|r| *r == key)
}

/// The whole price file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// Free text for the reader of the file.
    #[serde(default)]
    #[allow(dead_code)]
    pub comment: String,
    /// Where and when the prices were read.
    pub source: String,
    /// When the prices were read (free text, e.g. `2025-06`).
    pub read: String,
    /// Currency of every price (only `USD` is printed correctly).
    pub currency: String,
    /// Days in the billed month (30: the seed's arithmetic).
    pub days_per_month: f64,
    /// Bytes in a billed GB (AWS bills data transfer in GB of 2^30 bytes).
    pub bytes_per_gb: f64,
    /// CloudFront.
    pub cloudfront: CloudFront,
    /// Lambda (the on-demand transformer and the precompute function).
    pub lambda: Lambda,
    /// S3 requests.
    pub s3: S3,
    /// DynamoDB on-demand (the manifest).
    pub dynamodb: DynamoDb,
    /// Step Functions Express (the precompute workflow).
    pub step_functions: StepFunctions,
}

/// CloudFront prices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudFront {
    /// Free text for the reader of the file.
    #[serde(default)]
    #[allow(dead_code)]
    pub comment: String,
    /// Cumulative upper bounds of the egress tiers, in GB per month.
    pub egress_tiers_gb: Vec<f64>,
    /// Egress USD per GB per tier, per region key (one more price than bounds).
    pub egress_usd_per_gb: BTreeMap<String, Vec<f64>>,
    /// HTTPS requests, USD per 10,000, per region key.
    pub https_requests_usd_per_10k: BTreeMap<String, f64>,
    /// CloudFront Functions, USD per million invocations.
    pub functions_usd_per_million: f64,
    /// The AWS region the shield price is for.
    pub origin_shield_region: String,
    /// Origin Shield, USD per 10,000 requests reaching the shield.
    pub origin_shield_usd_per_10k: f64,
    /// Invalidation paths free each month.
    pub invalidation_free_paths_per_month: f64,
    /// USD per invalidation path beyond the free ones.
    pub invalidation_usd_per_path: f64,
}

/// Lambda prices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lambda {
    /// Free text for the reader of the file.
    #[serde(default)]
    #[allow(dead_code)]
    pub comment: String,
    /// `arm64` or `x86_64` (informational).
    pub architecture: String,
    /// USD per million invocations.
    pub requests_usd_per_million: f64,
    /// Cumulative upper bounds of the duration tiers, GB-seconds per month.
    pub gb_s_tiers: Vec<f64>,
    /// USD per GB-second per tier (one more price than bounds).
    pub usd_per_gb_s: Vec<f64>,
}

/// S3 request prices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3 {
    /// Free text for the reader of the file.
    #[serde(default)]
    #[allow(dead_code)]
    pub comment: String,
    /// USD per 1,000 GET requests.
    pub get_usd_per_1000: f64,
    /// USD per 1,000 PUT requests.
    pub put_usd_per_1000: f64,
}

/// DynamoDB on-demand prices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamoDb {
    /// Free text for the reader of the file.
    #[serde(default)]
    #[allow(dead_code)]
    pub comment: String,
    /// USD per million read request units.
    pub read_usd_per_million_rru: f64,
    /// USD per million write request units.
    pub write_usd_per_million_wru: f64,
}

/// Step Functions Express prices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFunctions {
    /// Free text for the reader of the file.
    #[serde(default)]
    #[allow(dead_code)]
    pub comment: String,
    /// USD per million workflow requests.
    pub express_requests_usd_per_million: f64,
    /// USD per GB-second of workflow duration.
    pub express_usd_per_gb_s: f64,
}

impl Prices {
    /// The built-in prices.
    pub fn builtin() -> Result<Prices, String> {
        Prices::parse(PRICES_JSON)
    }

    /// Parse and check a price file.
    pub fn parse(text: &str) -> Result<Prices, String> {
        let p: Prices = serde_json::from_str(text).map_err(|e| format!("price file: {e}"))?;
        p.check()?;
        Ok(p)
    }

    fn check(&self) -> Result<(), String> {
        let bad = |what: &str| Err(format!("price file: {what}"));
        if !(self.days_per_month > 0.0 && self.bytes_per_gb > 0.0) {
            return bad("days_per_month and bytes_per_gb must be positive");
        }
        let cf = &self.cloudfront;
        check_tiers("cloudfront.egress_tiers_gb", &cf.egress_tiers_gb)?;
        for (region, prices) in &cf.egress_usd_per_gb {
            if region_index(region).is_none() {
                return bad(&format!("unknown region {region:?} (known: {REGIONS:?})"));
            }
            if prices.len() != cf.egress_tiers_gb.len() + 1 {
                return bad(&format!(
                    "egress_usd_per_gb.{region} needs {} prices (one per tier)",
                    cf.egress_tiers_gb.len() + 1
                ));
            }
        }
        for region in cf.https_requests_usd_per_10k.keys() {
            if region_index(region).is_none() {
                return bad(&format!("unknown region {region:?} (known: {REGIONS:?})"));
            }
        }
        check_tiers("lambda.gb_s_tiers", &self.lambda.gb_s_tiers)?;
        if self.lambda.usd_per_gb_s.len() != self.lambda.gb_s_tiers.len() + 1 {
            return bad("lambda.usd_per_gb_s needs one more price than gb_s_tiers has bounds");
        }
        let all = [
            cf.functions_usd_per_million,
            cf.origin_shield_usd_per_10k,
            cf.invalidation_free_paths_per_month,
            cf.invalidation_usd_per_path,
            self.lambda.requests_usd_per_million,
            self.s3.get_usd_per_1000,
            self.s3.put_usd_per_1000,
            self.dynamodb.read_usd_per_million_rru,
            self.dynamodb.write_usd_per_million_wru,
            self.step_functions.express_requests_usd_per_million,
            self.step_functions.express_usd_per_gb_s,
        ];
        let lists = cf
            .egress_usd_per_gb
            .values()
            .flatten()
            .chain(cf.https_requests_usd_per_10k.values())
            .chain(&self.lambda.usd_per_gb_s);
        if all
            .iter()
            .chain(lists)
            .any(|v| !(v.is_finite() && *v >= 0.0))
        {
            return bad("every price must be a finite number >= 0");
        }
        Ok(())
    }

    /// Whether the file prices region `i` (egress and requests).
    pub fn has_region(&self, i: usize) -> bool {
        let key = REGIONS[i];
        self.cloudfront.egress_usd_per_gb.contains_key(key)
            && self.cloudfront.https_requests_usd_per_10k.contains_key(key)
    }

    /// Monthly CloudFront egress cost of `gb` GB served in region `i` (0 if unpriced).
    pub fn egress_cost(&self, i: usize, gb: f64) -> f64 {
        match self.cloudfront.egress_usd_per_gb.get(REGIONS[i]) {
            Some(prices) => tiered(gb, &self.cloudfront.egress_tiers_gb, prices),
            None => 0.0,
        }
    }

    /// The monthly bill of `u`.
    pub fn bill(&self, u: &MonthlyUsage) -> Cost {
        let cf = &self.cloudfront;
        let egress = (0..NREGIONS)
            .map(|i| self.egress_cost(i, u.egress_bytes[i] / self.bytes_per_gb))
            .sum();
        let requests = (0..NREGIONS)
            .map(|i| {
                let price = cf
                    .https_requests_usd_per_10k
                    .get(REGIONS[i])
                    .copied()
                    .unwrap_or(0.0);
                u.requests[i] / 1e4 * price
            })
            .sum();
        Cost {
            egress,
            requests,
            functions: u.function_invocations / 1e6 * cf.functions_usd_per_million,
            lambda_requests: u.lambda_invocations / 1e6 * self.lambda.requests_usd_per_million,
            lambda_duration: tiered(
                u.lambda_gb_s,
                &self.lambda.gb_s_tiers,
                &self.lambda.usd_per_gb_s,
            ),
            s3_get: u.s3_gets / 1e3 * self.s3.get_usd_per_1000,
            s3_put: u.s3_puts / 1e3 * self.s3.put_usd_per_1000,
            dynamodb: u.dynamodb_rru / 1e6 * self.dynamodb.read_usd_per_million_rru
                + u.dynamodb_wru / 1e6 * self.dynamodb.write_usd_per_million_wru,
            origin_shield: u.shield_requests / 1e4 * cf.origin_shield_usd_per_10k,
            invalidations: (u.invalidation_paths - cf.invalidation_free_paths_per_month).max(0.0)
                * cf.invalidation_usd_per_path,
            step_functions: u.workflow_requests / 1e6
                * self.step_functions.express_requests_usd_per_million
                + u.workflow_gb_s * self.step_functions.express_usd_per_gb_s,
        }
    }
}

fn check_tiers(what: &str, bounds: &[f64]) -> Result<(), String> {
    let ascending = bounds.windows(2).all(|w| w[0] < w[1]);
    if !ascending || bounds.iter().any(|b| !(b.is_finite() && *b > 0.0)) {
        return Err(format!("price file: {what} must be positive and ascending"));
    }
    Ok(())
}

/// The cost of `amount` under tiered pricing: `bounds` are the cumulative upper limits of the
/// tiers, `prices` the price per unit within each tier (the last one unbounded).
pub fn tiered(amount: f64, bounds: &[f64], prices: &[f64]) -> f64 {
    let mut cost = 0.0;
    let mut lower = 0.0;
    for (i, price) in prices.iter().enumerate() {
        let upper = bounds.get(i).copied().unwrap_or(f64::INFINITY);
        if amount <= lower {
            break;
        }
        cost += (amount.min(upper) - lower) * price;
        lower = upper;
    }
    cost
}

/// What one month of a scenario uses; [`Prices::bill`] turns it into dollars.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MonthlyUsage {
    /// Bytes delivered to viewers, per pricing region.
    pub egress_bytes: [f64; NREGIONS],
    /// Viewer requests, per pricing region.
    pub requests: [f64; NREGIONS],
    /// CloudFront Function (viewer-request) invocations.
    pub function_invocations: f64,
    /// Lambda invocations (on-demand transformer and precompute).
    pub lambda_invocations: f64,
    /// Lambda GB-seconds.
    pub lambda_gb_s: f64,
    /// S3 GET requests (derived objects and originals).
    pub s3_gets: f64,
    /// S3 PUT requests (derived objects).
    pub s3_puts: f64,
    /// DynamoDB read request units.
    pub dynamodb_rru: f64,
    /// DynamoDB write request units.
    pub dynamodb_wru: f64,
    /// Requests that reach Origin Shield (the edge misses, when the shield is on).
    pub shield_requests: f64,
    /// CloudFront invalidation paths.
    pub invalidation_paths: f64,
    /// Step Functions Express workflow requests (one per upload).
    pub workflow_requests: f64,
    /// Step Functions Express GB-seconds.
    pub workflow_gb_s: f64,
}

/// A monthly bill by line item, in USD.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    /// CloudFront data transfer out to the internet (tiered per region).
    pub egress: f64,
    /// CloudFront HTTPS requests.
    pub requests: f64,
    /// CloudFront Functions invocations.
    pub functions: f64,
    /// Lambda invocations.
    pub lambda_requests: f64,
    /// Lambda duration (GB-seconds).
    pub lambda_duration: f64,
    /// S3 GET requests.
    pub s3_get: f64,
    /// S3 PUT requests.
    pub s3_put: f64,
    /// DynamoDB reads and writes.
    pub dynamodb: f64,
    /// Origin Shield requests.
    pub origin_shield: f64,
    /// Invalidation paths beyond the free ones.
    pub invalidations: f64,
    /// Step Functions Express (the precompute workflow).
    pub step_functions: f64,
}

impl Cost {
    /// The line items as (JSON name, short table header, amount), in bill order.
    pub fn items(&self) -> [(&'static str, &'static str, f64); 11] {
        [
            ("egress", "egress", self.egress),
            ("requests", "requests", self.requests),
            ("functions", "CF fn", self.functions),
            ("lambda_requests", "λ req", self.lambda_requests),
            ("lambda_duration", "λ GB-s", self.lambda_duration),
            ("s3_get", "S3 GET", self.s3_get),
            ("s3_put", "S3 PUT", self.s3_put),
            ("dynamodb", "DynamoDB", self.dynamodb),
            ("origin_shield", "shield", self.origin_shield),
            ("invalidations", "invalid.", self.invalidations),
            ("step_functions", "SFN", self.step_functions),
        ]
    }

    /// The sum of every line item.
    pub fn total(&self) -> f64 {
        self.items().iter().map(|(_, _, v)| v).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices() -> Prices {
        Prices::builtin().unwrap()
    }

    #[test]
    fn builtin_file_parses_and_prices_every_region() {
        let p = prices();
        assert!(
            p.source.contains("as of"),
            "the file must say when prices were read"
        );
        assert!((0..NREGIONS).all(|i| p.has_region(i)));
        assert_eq!(p.days_per_month, 30.0);
    }

    #[test]
    fn tiered_hand_computed() {
        let bounds = [10.0, 50.0];
        let prices = [3.0, 2.0, 1.0];
        assert_eq!(tiered(0.0, &bounds, &prices), 0.0);
        assert_eq!(tiered(5.0, &bounds, &prices), 15.0);
        assert_eq!(tiered(10.0, &bounds, &prices), 30.0);
        assert_eq!(tiered(20.0, &bounds, &prices), 30.0 + 20.0);
        assert_eq!(tiered(60.0, &bounds, &prices), 30.0 + 80.0 + 10.0);
    }

    #[test]
    fn north_america_egress_tiers() {
        let p = prices();
        let na = region_index("na").unwrap();
        // 20 TB: the first 10 TB at $0.085, the next 10 TB at $0.080.
        let want = 10_240.0 * 0.085 + 10_240.0 * 0.080;
        assert!((p.egress_cost(na, 20_480.0) - want).abs() < 1e-6);
        // 1 PB (1,048,576 GB) fills the first five tiers exactly.
        let want = 10_240.0 * 0.085
            + 40_960.0 * 0.080
            + 102_400.0 * 0.060
            + 358_400.0 * 0.040
            + 536_576.0 * 0.030;
        assert!((p.egress_cost(na, 1_048_576.0) - want).abs() < 1e-6);
    }

    #[test]
    fn seed_egress_flat_and_global() {
        // The seed's arithmetic: 1e9 requests/day x 40 KB x 30 days = 1.2e15 bytes, i.e.
        // 1.2 million decimal GB at a blended $0.06/GB = $72k. Billed in GB of 2^30 bytes and
        // tiered per region with the seed preset's global mix it lands at about $72.7k; all in
        // North America it would be far less.
        let p = prices();
        let bytes: f64 = 1e9 * 40_000.0 * 30.0;
        assert!((bytes / 1e9 * 0.06 - 72_000.0).abs() < 1e-6);
        let gb = bytes / p.bytes_per_gb;
        let mix = [0.42, 0.28, 0.02, 0.05, 0.05, 0.03, 0.11, 0.04];
        let global: f64 = (0..NREGIONS).map(|i| p.egress_cost(i, gb * mix[i])).sum();
        assert!((72_000.0..73_500.0).contains(&global), "{global}");
        let na_only = p.egress_cost(0, gb);
        assert!((40_000.0..45_000.0).contains(&na_only), "{na_only}");
    }

    #[test]
    fn bill_line_items_hand_computed() {
        let p = prices();
        let mut u = MonthlyUsage {
            function_invocations: 30e9,
            lambda_invocations: 10e6,
            lambda_gb_s: 1e6,
            s3_gets: 1e6,
            s3_puts: 1e6,
            dynamodb_rru: 8e6,
            dynamodb_wru: 8e6,
            shield_requests: 1e8,
            invalidation_paths: 3000.0,
            workflow_requests: 1e6,
            workflow_gb_s: 1e4,
            ..MonthlyUsage::default()
        };
        u.requests[region_index("eu").unwrap()] = 1e8;
        let c = p.bill(&u);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b.abs().max(1.0);
        assert!(close(c.requests, 1e8 / 1e4 * 0.012));
        assert!(close(c.functions, 3000.0));
        assert!(close(c.lambda_requests, 2.0));
        assert!(close(c.lambda_duration, 13.3334));
        assert!(close(c.s3_get, 0.4));
        assert!(close(c.s3_put, 5.0));
        assert!(close(c.dynamodb, 8.0 * 0.125 + 8.0 * 0.625));
        assert!(close(c.origin_shield, 75.0));
        assert!(close(c.invalidations, 10.0));
        assert!(close(c.step_functions, 1.0 + 0.1667));
        assert_eq!(c.egress, 0.0);
        let sum: f64 = c.items().iter().map(|i| i.2).sum();
        assert!(close(c.total(), sum));
        // Invalidations within the free allowance cost nothing.
        u.invalidation_paths = 999.0;
        assert_eq!(p.bill(&u).invalidations, 0.0);
    }

    #[test]
    fn lambda_duration_is_tiered() {
        let p = prices();
        let u = MonthlyUsage {
            lambda_gb_s: 10e9,
            ..MonthlyUsage::default()
        };
        let want = 7.5e9 * 0.0000133334 + 2.5e9 * 0.0000120001;
        assert!((p.bill(&u).lambda_duration - want).abs() < 1e-3);
    }

    #[test]
    fn bad_price_files_are_rejected() {
        let base: serde_json::Value = serde_json::from_str(PRICES_JSON).unwrap();
        let mut v = base.clone();
        v["cloudfront"]["egress_usd_per_gb"]["na"] = serde_json::json!([0.1]);
        assert!(Prices::parse(&v.to_string()).unwrap_err().contains("na"));
        let mut v = base.clone();
        v["cloudfront"]["egress_usd_per_gb"]["mars"] = serde_json::json!(vec![0.1; 7]);
        assert!(Prices::parse(&v.to_string()).unwrap_err().contains("mars"));
        let mut v = base.clone();
        v["s3"]["get_usd_per_1000"] = serde_json::json!(-1.0);
        assert!(Prices::parse(&v.to_string()).is_err());
        let mut v = base;
        v["lambda"]["gb_s_tiers"] = serde_json::json!([2.0, 1.0]);
        assert!(Prices::parse(&v.to_string()).is_err());
        assert!(Prices::parse("{").is_err());
    }
}
