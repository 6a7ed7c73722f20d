//! Progress on stderr while a takedown or a backfill runs: a redrawn bar when stderr is a
//! terminal, otherwise one plain line each time the progress changes (logs stay short).
//!
//! The workflow progress is read from the execution history of the state machines
//! (`statemachine/takedown.asl.json`, `statemachine/backfill.asl.json`): state names and the
//! outputs of `Begin`, `Plan` and `Count`.

use std::io::{IsTerminal, Write};

/// Width of the bar, characters.
const BAR_WIDTH: usize = 24;

/// The progress line on stderr.
#[derive(Debug)]
pub struct Progress {
    tty: bool,
    last: String,
    drawn: bool,
}

impl Progress {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            last: String::new(),
            drawn: false,
        }
    }

    /// Shows `text`, with a bar of `fraction` (0..=1) on a terminal when it is known.
    pub fn show(&mut self, fraction: Option<f64>, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let bar = fraction.map(bar).unwrap_or_default();
            let _ = write!(err, "\r\x1b[K{bar}{text}");
            let _ = err.flush();
            self.drawn = true;
        } else if text != self.last {
            let _ = writeln!(err, "{text}");
        }
        self.last = text.to_string();
    }

    /// Ends the bar's line (a terminal only), so that what follows starts on a new line.
    pub fn finish(&mut self) {
        if self.tty && self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// `[=======>       ]  45 % `.
fn bar(fraction: f64) -> String {
    let f = fraction.clamp(0.0, 1.0);
    let full = (f * BAR_WIDTH as f64).round() as usize;
    let mut s = String::with_capacity(BAR_WIDTH + 10);
    s.push('[');
    for i in 0..BAR_WIDTH {
        s.push(match i.cmp(&full) {
            std::cmp::Ordering::Less => '=',
            std::cmp::Ordering::Equal if full > 0 || f > 0.0 => '>',
            _ => ' ',
        });
    }
    s.push_str(&format!("] {:>3} % ", (f * 100.0).round() as u32));
    s
}

/// One history event, reduced to what the progress needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A state was entered.
    Entered {
        /// State name.
        name: String,
    },
    /// A state was left with `output` (JSON text, when the history includes data).
    Exited {
        /// State name.
        name: String,
        /// The state's output.
        output: Option<String>,
    },
    /// A task failed (and may be retried).
    TaskFailed {
        /// The error name, e.g. `TooManyInvalidationsInProgress`.
        error: Option<String>,
    },
}

/// The top-level states of the takedown state machine, in order.
pub const TAKEDOWN_STEPS: [&str; 5] = ["Begin", "PurgeAssets", "Plan", "Invalidate", "Finish"];

/// What a takedown execution has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TakedownProgress {
    /// The top-level state it is in.
    pub step: Option<String>,
    /// Assets named by `Begin`'s output.
    pub assets: Option<usize>,
    /// `Begin` found the request id already finished.
    pub already_done: bool,
    /// Purge tasks finished (3 per asset: originals, replica, derived).
    pub purged: usize,
    /// Invalidation batches planned by `Plan`.
    pub batches: Option<usize>,
    /// Invalidation batches completed.
    pub invalidated: usize,
    /// `TaskFailed` events with `TooManyInvalidationsInProgress` (each one retried).
    pub cdn_retries: usize,
    /// Other `TaskFailed` events (retried or fatal).
    pub other_failures: usize,
}

impl TakedownProgress {
    /// Applies one event.
    pub fn apply(&mut self, ev: &Event) {
        match ev {
            Event::Entered { name } => match name.as_str() {
                n if TAKEDOWN_STEPS.contains(&n) => self.step = Some(n.to_string()),
                "NothingToDo" => self.step = Some("already done".to_string()),
                // The Succeed state at the end of each invalidation batch.
                "Invalidated" => self.invalidated += 1,
                _ => {}
            },
            Event::Exited { name, output } => match name.as_str() {
                "Originals" | "Replica" | "Derived" => self.purged += 1,
                "Begin" => {
                    let begin = parse(output).and_then(|v| v.get("begin").cloned());
                    if let Some(b) = begin {
                        self.assets = b.get("assets").and_then(|a| a.as_array()).map(|a| a.len());
                        self.already_done = b
                            .get("already_done")
                            .and_then(|d| d.as_bool())
                            .unwrap_or(false);
                    }
                }
                "Plan" => {
                    self.batches = parse(output).and_then(|v| {
                        v.pointer("/plan/batches")
                            .and_then(|b| b.as_array())
                            .map(|b| b.len())
                    });
                }
                _ => {}
            },
            Event::TaskFailed { error } => {
                if error.as_deref() == Some("TooManyInvalidationsInProgress") {
                    self.cdn_retries += 1;
                } else {
                    self.other_failures += 1;
                }
            }
        }
    }

    /// Purge tasks expected: 3 per asset once `Begin`'s output is known.
    pub fn purge_expected(&self) -> Option<usize> {
        self.assets.map(|a| a * 3)
    }

    /// The share done, once `Begin` is known (the plan counts as one unit until known).
    pub fn fraction(&self) -> Option<f64> {
        let expected = self.purge_expected()? + self.batches.unwrap_or(1);
        if expected == 0 {
            return Some(1.0);
        }
        Some((self.purged + self.invalidated) as f64 / expected as f64)
    }

    /// One line: step, purges, invalidations, retries.
    pub fn line(&self, name: &str) -> String {
        let known = |n: Option<usize>| n.map_or("?".to_string(), |n| n.to_string());
        let mut s = format!(
            "{name}: {} | purge {}/{} | invalidations {}/{} | CloudFront retries {}",
            self.step.as_deref().unwrap_or("starting"),
            self.purged,
            known(self.purge_expected()),
            self.invalidated,
            known(self.batches),
            self.cdn_retries
        );
        if self.other_failures > 0 {
            s.push_str(&format!(" | other task failures {}", self.other_failures));
        }
        s
    }
}

/// Item counts of the backfill's map runs, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ItemCounts {
    /// Items whose child execution succeeded.
    pub succeeded: i64,
    /// Items that failed.
    pub failed: i64,
    /// Items running.
    pub running: i64,
    /// Items not started yet.
    pub pending: i64,
    /// Items timed out or aborted.
    pub aborted: i64,
    /// Items of the map runs so far.
    pub total: i64,
}

impl ItemCounts {
    /// Adds another map run's counts.
    pub fn add(&mut self, o: &ItemCounts) {
        self.succeeded += o.succeeded;
        self.failed += o.failed;
        self.running += o.running;
        self.pending += o.pending;
        self.aborted += o.aborted;
        self.total += o.total;
    }
}

/// What a backfill execution has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillProgress {
    /// The top-level state it is in.
    pub step: Option<String>,
    /// Ready versions counted by `Count`.
    pub total: Option<u64>,
    /// Manifest pages listed.
    pub pages: usize,
    /// The map runs' item counts.
    pub items: ItemCounts,
}

impl BackfillProgress {
    /// Applies one event.
    pub fn apply(&mut self, ev: &Event) {
        match ev {
            Event::Entered { name } => {
                if matches!(name.as_str(), "Count" | "ListPage" | "RenderPage" | "Done") {
                    self.step = Some(name.clone());
                }
            }
            Event::Exited { name, output } => match name.as_str() {
                // `Start` follows the last `Count` slice and carries their sum.
                "Start" => {
                    self.total = parse(output)
                        .and_then(|v| v.pointer("/state/total").and_then(|t| t.as_u64()));
                }
                "ListPage" => self.pages += 1,
                _ => {}
            },
            Event::TaskFailed { .. } => {}
        }
    }

    /// Versions checked (succeeded, failed or aborted items).
    pub fn done(&self) -> i64 {
        self.items.succeeded + self.items.failed + self.items.aborted
    }

    /// The share done, once `Count` is known.
    pub fn fraction(&self) -> Option<f64> {
        match self.total? {
            0 => Some(1.0),
            t => Some(self.done() as f64 / t as f64),
        }
    }

    /// One line: step, versions checked of the total, failures, running.
    pub fn line(&self, name: &str) -> String {
        format!(
            "{name}: {} | {}/{} versions checked | failed {} | running {} | pages {}",
            self.step.as_deref().unwrap_or("starting"),
            self.done(),
            self.total.map_or("?".to_string(), |t| t.to_string()),
            self.items.failed + self.items.aborted,
            self.items.running,
            self.pages
        )
    }
}

/// The local stack's `GET /backfill` as one line, and its share done.
pub fn local_backfill_line(v: &serde_json::Value) -> (Option<f64>, String) {
    let n = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
    let (total, done) = (n("total"), n("done"));
    let fraction = if total == 0 {
        1.0
    } else {
        done as f64 / total as f64
    };
    (
        Some(fraction),
        format!(
            "backfill: {done}/{total} versions | rendered {} | current {} | skipped {} | failed {}",
            n("rendered"),
            n("current"),
            n("skipped"),
            n("failed")
        ),
    )
}

fn parse(output: &Option<String>) -> Option<serde_json::Value> {
    output.as_deref().and_then(|o| serde_json::from_str(o).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entered(name: &str) -> Event {
        Event::Entered { name: name.into() }
    }

    fn exited(name: &str, output: &str) -> Event {
        Event::Exited {
            name: name.into(),
            output: Some(output.into()),
        }
    }

    #[test]
    fn takedown_history() {
        let mut p = TakedownProgress::default();
        assert_eq!(p.fraction(), None);
        assert_eq!(
            p.line("R1"),
            "R1: starting | purge 0/? | invalidations 0/? | CloudFront retries 0"
        );
        p.apply(&entered("Begin"));
        p.apply(&exited(
            "Begin",
            r#"{"begin":{"already_done":false,"assets":[{"tenant":"t","key":"a","versions":[1]},{"tenant":"t","key":"b","versions":[1,2]}]}}"#,
        ));
        p.apply(&entered("AlreadyDone"));
        p.apply(&entered("PurgeAssets"));
        for name in ["Originals", "Replica", "Derived", "Originals"] {
            p.apply(&entered(name));
            p.apply(&exited(name, "{}"));
        }
        assert_eq!((p.purged, p.purge_expected()), (4, Some(6)));
        assert_eq!(
            p.line("R1"),
            "R1: PurgeAssets | purge 4/6 | invalidations 0/? | CloudFront retries 0"
        );
        p.apply(&entered("Plan"));
        p.apply(&exited("Plan", r#"{"plan":{"batches":[{},{}]}}"#));
        p.apply(&entered("Invalidate"));
        p.apply(&Event::TaskFailed {
            error: Some("TooManyInvalidationsInProgress".into()),
        });
        p.apply(&Event::TaskFailed {
            error: Some("Lambda.Unknown".into()),
        });
        p.apply(&entered("Invalidated"));
        assert_eq!(
            p.line("R1"),
            "R1: Invalidate | purge 4/6 | invalidations 1/2 | CloudFront retries 1 | other task failures 1"
        );
        assert_eq!(p.fraction(), Some(5.0 / 8.0));
        p.apply(&entered("Finish"));
        assert_eq!(p.step.as_deref(), Some("Finish"));
        assert!(!p.already_done);
    }

    #[test]
    fn takedown_already_done() {
        let mut p = TakedownProgress::default();
        p.apply(&entered("Begin"));
        p.apply(&exited(
            "Begin",
            r#"{"begin":{"already_done":true,"assets":[]}}"#,
        ));
        p.apply(&entered("NothingToDo"));
        assert!(p.already_done);
        assert_eq!(p.fraction(), Some(0.0));
        assert_eq!(p.step.as_deref(), Some("already done"));
        // Malformed outputs are ignored.
        p.apply(&exited("Plan", "not json"));
        assert_eq!(p.batches, None);
    }

    #[test]
    fn backfill_history() {
        let mut p = BackfillProgress::default();
        p.apply(&entered("Count"));
        p.apply(&exited("Count", r#"{"counted":{"n":25}}"#));
        assert_eq!(p.total, None);
        p.apply(&exited("Start", r#"{"state":{"total":40,"cursor":null}}"#));
        p.apply(&entered("ListPage"));
        p.apply(&exited("ListPage", "{}"));
        p.apply(&entered("RenderPage"));
        p.items.add(&ItemCounts {
            succeeded: 9,
            failed: 1,
            running: 20,
            total: 30,
            ..ItemCounts::default()
        });
        assert_eq!(p.fraction(), Some(0.25));
        assert_eq!(
            p.line("bf"),
            "bf: RenderPage | 10/40 versions checked | failed 1 | running 20 | pages 1"
        );
    }

    #[test]
    fn bars_and_local_lines() {
        assert_eq!(bar(0.0), format!("[{}]   0 % ", " ".repeat(BAR_WIDTH)));
        assert_eq!(bar(1.0), format!("[{}] 100 % ", "=".repeat(BAR_WIDTH)));
        assert!(bar(0.5).starts_with(&format!("[{}>", "=".repeat(BAR_WIDTH / 2))));
        assert_eq!(bar(7.0), bar(1.0));
        let v = serde_json::json!({"total": 4, "done": 2, "rendered": 1, "current": 1});
        assert_eq!(
            local_backfill_line(&v),
            (
                Some(0.5),
                "backfill: 2/4 versions | rendered 1 | current 1 | skipped 0 | failed 0".into()
            )
        );
    }
}
