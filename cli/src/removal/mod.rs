//! `pixelfront takedown`, `erase`, `backfill` and `audit` (docs/takedown.md): the operator's verbs for
//! removing assets for good, rendering every version again after a catalogue change, and
//! reading what a removal deleted.
//!
//! Each verb has two targets: the local stack (`pixelfront dev`, the default: its admin routes
//! over HTTP with the admin token) and AWS (`--aws`: the Step Functions state machines and the
//! audit table). Input is checked before anything is sent, with the shared validation the
//! takedown function applies ([`pixelfront_shared::removal::validate`]), so a bad reason, a missing
//! requester or a bad URL exits 2 with one line and changes nothing.

pub(crate) mod aws;
mod http;
mod progress;

use crate::Failure;
use pixelfront_shared::normalize::{valid_key, valid_tenant};
use pixelfront_shared::removal::{request_chunks, valid_request_id, validate, RemovalInput};
use std::time::Duration;

/// The local stack's default base URL (`pixelfront dev`'s default `--addr`).
const DEFAULT_LOCAL: &str = "http://127.0.0.1:8080";

/// `long_about` of `pixelfront takedown`.
pub const TAKEDOWN_HELP: &str = "\
Take assets down (a DMCA notice, a tenant's request): every version's original, its replica \
and every derivative deleted, the CDN purged, the manifest marked `taken_down` (nothing of the \
asset is served or rendered again), and an audit record written (docs/takedown.md).

The TENANT/KEY arguments are `<tenant>/<key>`, one or more (one tenant or several). With --prefix, a single \
`<tenant>/<key prefix>`: every asset of the tenant whose key starts with the prefix.

Both targets run the same steps with the same input and answer the same summary; over 500 \
keys or 64 KiB of keys (or several tenants) are split into requests `{id}-1`, `{id}-2`, …

Local stack (the default): `POST /takedown` to --local with the admin token and the input \
{request_id, tenant, key|keys|prefix, reason, requester}; the local stack runs every step \
in-process (its in-memory cache is its CDN) and answers the summary, printed as JSON.

AWS (--aws): starts the takedown state machine (--state-machine-arn, env \
PIXELFRONT_TAKEDOWN_ARN) with the execution name = the request id and input \
{tenant, key|keys|prefix, reason, requester, action}. It then follows the execution every 2 s with a \
progress line on stderr (step: Begin, PurgeAssets, Plan, Invalidate, Finish; purge tasks \
done/expected; invalidation batches done/planned; CloudFront TooManyInvalidationsInProgress \
retries) and prints the summary JSON on stdout. A request id that already ran is never run \
twice: the existing execution is followed instead. --no-wait prints the execution ARN only. Ctrl-C stops the following, not the execution: the \
same command (same --request-id) follows it again.

The request id (default: generated and printed first, on stderr) makes the request \
idempotent: the same id again changes nothing and answers the first record.

Exit codes: 0 done; 2 rejected input (unknown reason, missing requester, bad asset, bad URL, \
unknown asset, refused token); 1 the server or AWS unreachable or failing, or an execution \
that FAILED, TIMED_OUT or was ABORTED (error and cause on stderr).";

/// `long_about` of `pixelfront erase`.
pub const ERASE_HELP: &str = "\
Erase assets (GDPR Art. 17): like `takedown` (every version's original, replica and \
derivatives deleted, the CDN purged, an audit record written), with the manifest marked \
`erased`. --reason defaults to gdpr.

The TENANT/KEY arguments are `<tenant>/<key>`, one or more; with --prefix, a single `<tenant>/<key prefix>`. \
Local stack (the default): `POST /erase` with the input, as for takedown. AWS (--aws): the \
takedown state machine with action `erase`, followed to its end as for `takedown`.

Exit codes: 0 done; 2 rejected input; 1 unreachable, AWS error or failed execution.";

/// `long_about` of `pixelfront backfill`.
pub const BACKFILL_HELP: &str = "\
After a change of the variant catalogue, check every `ready` version and render again those \
whose recorded variants differ from the catalogue. A version already current is left alone, \
so a backfill can be repeated or resumed at no cost.

Local stack (the default): `POST /backfill` to --local with the admin token (the server \
works through the versions in the background, a few at a time), then polls `GET /backfill` \
and shows done/total, rendered, current, skipped and failed until it finishes; prints the \
final counts as JSON. A backfill already running on the server is followed.

AWS (--aws): starts the backfill state machine (--state-machine-arn, env \
PIXELFRONT_BACKFILL_ARN) with the execution name --request-id (default generated) and \
follows it: the total from the `Count` step, the progress from the Distributed Map runs' item \
counts (succeeded, failed, running). Prints {execution_arn, total, checked, succeeded, \
failed, map_runs, output} as JSON. Ctrl-C stops the following, not the execution: the same \
--request-id follows it again.

Exit codes: 0 finished (failed versions are counted in the output); 2 rejected input; 1 \
unreachable, AWS error, or an execution that did not succeed.";

/// `long_about` of `pixelfront audit`.
pub const AUDIT_HELP: &str = "\
Print the takedown and erasure records of one asset, oldest first: request id, action, \
reason, requester, start and end times, versions, every deleted original version, replica \
version and derivative, and the CDN invalidation ids.

Local stack (the default): `GET /audit/{tenant}/{key}` on --local with the admin token. AWS \
(--aws): the audit table (--audit-table, env PIXELFRONT_AUDIT_TABLE), one item per request.

Output: pretty JSON (an array); --summary prints a few lines per record instead.

Exit codes: 0 records printed; 2 rejected input or no record for the asset; 1 unreachable or \
AWS error.";

/// Why a verb failed; [`From<CliError> for Failure`] gives the exit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// Bad usage or input, found before anything was sent. Exit 2.
    #[error("{0}")]
    Usage(String),
    /// The server or AWS refused the request (4xx: unknown asset, bad token, …). Exit 2.
    #[error("{0}")]
    Rejected(String),
    /// The local stack cannot be reached. Exit 1.
    #[error("{0}")]
    Unreachable(String),
    /// The local stack failed (5xx, malformed answer). Exit 1.
    #[error("{0}")]
    Server(String),
    /// An AWS call failed. Exit 1.
    #[error("{0}")]
    Aws(String),
    /// A workflow execution ended without success. Exit 1.
    #[error("execution {name} {status}: {error}: {cause}")]
    ExecutionEnded {
        /// Execution name.
        name: String,
        /// `FAILED`, `TIMED_OUT` or `ABORTED`.
        status: String,
        /// The error name.
        error: String,
        /// The cause.
        cause: String,
    },
}

impl From<CliError> for Failure {
    fn from(e: CliError) -> Failure {
        match e {
            CliError::Usage(_) | CliError::Rejected(_) => Failure::rejected(e),
            _ => Failure::io(e),
        }
    }
}

/// Where a verb runs: the local stack (default) or AWS.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// The local stack's base URL (`pixelfront dev`), http:// only. The default target.
    #[arg(long, value_name = "URL", default_value = DEFAULT_LOCAL, conflicts_with = "aws")]
    local: String,
    /// The local stack's admin token (sent as `Authorization: Bearer`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "PIXELFRONT_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// Run on AWS (Step Functions, DynamoDB) with the SDK's credentials, instead of the local
    /// stack.
    #[arg(long)]
    aws: bool,
    /// AWS region (default: the SDK's, from AWS_REGION or the profile). With --aws.
    #[arg(long, value_name = "REGION", requires = "aws")]
    region: Option<String>,
    /// AWS endpoint URL, for emulators (e.g. moto: http://127.0.0.1:5000). With --aws.
    #[arg(long, value_name = "URL", requires = "aws")]
    endpoint_url: Option<String>,
}

impl Target {
    /// The admin token, or the one-line reason it is missing.
    fn token(&self) -> Result<&str, CliError> {
        self.admin_token
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                CliError::Usage(
                    "the local stack needs its admin token: pass --admin-token or set \
                     PIXELFRONT_ADMIN_TOKEN"
                        .into(),
                )
            })
    }

    /// The local endpoint, checked.
    fn endpoint(&self) -> Result<http::Endpoint, CliError> {
        http::Endpoint::parse(&self.local)
    }
}

/// The poll interval of `--poll`, checked.
fn interval(poll: f64) -> Result<Duration, CliError> {
    if poll.is_finite() && (0.05..=600.0).contains(&poll) {
        Ok(Duration::from_secs_f64(poll))
    } else {
        Err(CliError::Usage(format!(
            "--poll {poll} is not 0.05-600 seconds"
        )))
    }
}

/// Arguments of `pixelfront takedown` and `pixelfront erase`.
#[derive(clap::Args, Debug)]
pub struct RemoveArgs {
    /// `<tenant>/<key>` of each asset; with --prefix, one `<tenant>/<key prefix>`.
    #[arg(value_name = "TENANT/KEY", required = true)]
    assets: Vec<String>,
    /// Why: dmca, gdpr or tenant (takedown: required; erase: default gdpr).
    #[arg(long, value_name = "dmca|gdpr|tenant")]
    reason: Option<String>,
    /// Who asked, kept in the audit record (an e-mail address, a ticket). Required.
    #[arg(long, value_name = "WHO")]
    requester: Option<String>,
    /// The request id: 1-80 of [A-Za-z0-9_-] (the execution name on AWS). Default: generated.
    #[arg(long, value_name = "ID")]
    request_id: Option<String>,
    /// The single argument is `<tenant>/<key prefix>`: every asset whose key starts with it
    /// (a manifest query).
    #[arg(long)]
    prefix: bool,
    /// The takedown state machine (with --aws).
    #[arg(long, value_name = "ARN", env = "PIXELFRONT_TAKEDOWN_ARN")]
    state_machine_arn: Option<String>,
    /// Print the execution ARN(s) and return without following them (with --aws).
    #[arg(long, requires = "aws")]
    no_wait: bool,
    /// Seconds between two progress polls of an execution (with --aws).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    poll: f64,
    #[command(flatten)]
    target: Target,
}

/// Arguments of `pixelfront backfill`.
#[derive(clap::Args, Debug)]
pub struct BackfillArgs {
    /// The backfill state machine (with --aws).
    #[arg(long, value_name = "ARN", env = "PIXELFRONT_BACKFILL_ARN")]
    state_machine_arn: Option<String>,
    /// The execution name on AWS: 1-80 of [A-Za-z0-9_-]. Default: generated.
    #[arg(long, value_name = "ID", requires = "aws")]
    request_id: Option<String>,
    /// Print the execution ARN and return without following it (with --aws).
    #[arg(long, requires = "aws")]
    no_wait: bool,
    /// Seconds between two progress polls (of the server, or of the execution).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    poll: f64,
    #[command(flatten)]
    target: Target,
}

/// Arguments of `pixelfront audit`.
#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// The asset, `<tenant>/<key>`.
    #[arg(value_name = "TENANT/KEY")]
    asset: String,
    /// A few lines per record instead of JSON: request id, action, reason, requester, times,
    /// counts of deleted originals, replica versions and derivatives, invalidation ids.
    #[arg(long)]
    summary: bool,
    /// The audit table (with --aws).
    #[arg(long, value_name = "TABLE", env = "PIXELFRONT_AUDIT_TABLE")]
    audit_table: Option<String>,
    #[command(flatten)]
    target: Target,
}

/// Takedown or erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `pixelfront takedown`.
    Takedown,
    /// `pixelfront erase`.
    Erase,
}

impl Verb {
    fn name(self) -> &'static str {
        match self {
            Verb::Takedown => "takedown",
            Verb::Erase => "erase",
        }
    }
}

/// A generated request id: `{verb}-{UTC time}-{8 random hex}`.
fn generated_id(verb: &str) -> Result<String, CliError> {
    let stamp: String = pixelfront_shared::pipeline::now_rfc3339()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let token =
        pixelfront_shared::sign::random_token().map_err(|e| CliError::Server(e.to_string()))?;
    Ok(format!("{verb}-{stamp}-{}", &token[..8.min(token.len())]))
}

/// The request id given (checked) or generated (printed on stderr first).
fn request_id(given: Option<&str>, verb: &str) -> Result<String, CliError> {
    match given {
        Some(id) if valid_request_id(id) => Ok(id.to_string()),
        Some(id) => Err(CliError::Usage(format!(
            "request id {id:?} must be 1-80 of [A-Za-z0-9_-]"
        ))),
        None => {
            let id = generated_id(verb)?;
            eprintln!("pixelfront: request id {id}");
            Ok(id)
        }
    }
}

/// `{id}` for one request, `{id}-1`, `{id}-2`, … for several; each checked.
fn numbered(id: &str, n: usize) -> Result<Vec<String>, CliError> {
    let names: Vec<String> = if n == 1 {
        vec![id.to_string()]
    } else {
        (1..=n).map(|i| format!("{id}-{i}")).collect()
    };
    match names.iter().find(|name| !valid_request_id(name)) {
        Some(bad) => Err(CliError::Usage(format!(
            "request id {bad:?} would be over 80 characters: use a shorter --request-id"
        ))),
        None => Ok(names),
    }
}

/// Splits `<tenant>/<key>`.
fn split_asset(arg: &str) -> Result<(String, String), CliError> {
    match arg.split_once('/') {
        Some((t, k)) if !t.is_empty() && !k.is_empty() => {
            if !valid_tenant(t) {
                return Err(CliError::Usage(format!(
                    "bad tenant {t:?} in {arg:?}: expected [a-z0-9][a-z0-9-]{{0,62}}"
                )));
            }
            Ok((t.to_string(), k.to_string()))
        }
        _ => Err(CliError::Usage(format!(
            "expected <tenant>/<key>, got {arg:?}"
        ))),
    }
}

/// The execution inputs of a removal: one per tenant and per request-sized list of keys
/// ([`request_chunks`]: at most 500 keys and 64 KiB of them), each checked with the shared
/// validation.
fn removal_inputs(args: &RemoveArgs, verb: Verb) -> Result<Vec<RemovalInput>, CliError> {
    let reason = match (&args.reason, verb) {
        (Some(r), _) => Some(r.trim().to_string()),
        (None, Verb::Erase) => Some("gdpr".to_string()),
        (None, Verb::Takedown) => None,
    };
    let base = RemovalInput {
        reason,
        requester: args.requester.clone(),
        action: Some(verb.name().to_string()),
        ..RemovalInput::default()
    };
    let mut inputs = Vec::new();
    if args.prefix {
        let [one] = args.assets.as_slice() else {
            return Err(CliError::Usage(
                "--prefix takes exactly one <tenant>/<key prefix>".into(),
            ));
        };
        let (tenant, prefix) = split_asset(one)?;
        inputs.push(RemovalInput {
            tenant: Some(tenant),
            prefix: Some(prefix),
            ..base.clone()
        });
    } else {
        // Per tenant, keys sorted and deduplicated: the same assets in any order make the
        // same inputs, so a repeated request id finds the same executions.
        let mut groups: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            Default::default();
        for arg in &args.assets {
            let (tenant, key) = split_asset(arg)?;
            groups.entry(tenant).or_default().insert(key);
        }
        for (tenant, keys) in groups {
            let keys: Vec<String> = keys.into_iter().collect();
            for chunk in request_chunks(&tenant, &keys) {
                let (key, keys) = match chunk.as_slice() {
                    [one] => (Some(one.clone()), None),
                    _ => (None, Some(chunk)),
                };
                inputs.push(RemovalInput {
                    tenant: Some(tenant.clone()),
                    key,
                    keys,
                    ..base.clone()
                });
            }
        }
    }
    for input in &inputs {
        validate(input).map_err(|e| CliError::Usage(e.to_string()))?;
    }
    Ok(inputs)
}

/// Runs `pixelfront takedown` or `pixelfront erase`.
pub fn run_remove(args: RemoveArgs, verb: Verb) -> Result<(), Failure> {
    let inputs = removal_inputs(&args, verb)?;
    if args.target.aws {
        let arn = args.state_machine_arn.clone().ok_or_else(|| {
            CliError::Usage(
                "--aws needs the takedown state machine: --state-machine-arn or \
                 PIXELFRONT_TAKEDOWN_ARN"
                    .into(),
            )
        })?;
        aws::check_state_machine_arn(&arn)?;
        aws::check_flags(&args.target)?;
        let interval = interval(args.poll)?;
        let id = request_id(args.request_id.as_deref(), verb.name())?;
        let names = numbered(&id, inputs.len())?;
        return aws::block_on(aws::remove(
            &args.target,
            &arn,
            inputs.into_iter().zip(names).collect(),
            args.no_wait,
            interval,
        ))
        .map_err(Failure::from);
    }
    for key in inputs
        .iter()
        .flat_map(|i| i.key.iter().chain(i.keys.iter().flatten()))
    {
        if !valid_key(key) {
            return Err(CliError::Usage(format!(
                "key {key:?}: the local stack stores only keys of [A-Za-z0-9._~-] segments \
                 joined by /"
            ))
            .into());
        }
    }
    let ep = args.target.endpoint()?;
    let token = args.target.token()?;
    let id = request_id(args.request_id.as_deref(), verb.name())?;
    let names = numbered(&id, inputs.len())?;
    let several = inputs.len() > 1;
    let mut first_error: Option<CliError> = None;
    for (input, name) in inputs.iter().zip(names) {
        let what = match (&input.key, &input.prefix) {
            (Some(key), _) => format!("{}/{key}", input.tenant.as_deref().unwrap_or_default()),
            (None, Some(prefix)) => {
                format!("{}/{prefix}*", input.tenant.as_deref().unwrap_or_default())
            }
            _ => format!("request {name}"),
        };
        let mut body = serde_json::json!(input);
        body["request_id"] = serde_json::json!(name);
        let path = format!("/{}", verb.name());
        let result = http::request(&ep, "POST", &path, token, Some(body.to_string().as_bytes()))
            .and_then(|r| answer(r, &what))
            .and_then(|summary| same_request(summary, &name, verb, input));
        match result {
            Ok(summary) => println!("{summary:#}"),
            Err(e @ (CliError::Unreachable(_) | CliError::Usage(_))) => return Err(e.into()),
            Err(e) if !several => return Err(e.into()),
            Err(e) => {
                // The other requests still run; the exit code tells that one did not.
                eprintln!("pixelfront: {e}");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err(Failure::from(match e {
            CliError::Rejected(_) => CliError::Rejected("some assets were not removed".into()),
            _ => CliError::Server("some assets were not removed".into()),
        })),
    }
}

/// Checks that the summary the server returned is about this request's assets and action: a
/// repeated request id answers the first request's summary, whatever it was about.
fn same_request(
    summary: serde_json::Value,
    name: &str,
    verb: Verb,
    input: &RemovalInput,
) -> Result<serde_json::Value, CliError> {
    let action = summary
        .get("action")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let assets: Vec<&str> = summary
        .get("assets")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let tenant = input.tenant.as_deref().unwrap_or_default();
    let named = input.key.iter().chain(input.keys.iter().flatten());
    let covered = named
        .map(|k| format!("{tenant}/{k}"))
        .all(|id| assets.contains(&id.as_str()));
    let prefix_ok = input.prefix.as_ref().is_none_or(|p| {
        assets
            .iter()
            .all(|a| a.starts_with(&format!("{tenant}/{p}")))
    });
    if action == verb.name() && covered && prefix_ok {
        return Ok(summary);
    }
    Err(CliError::Rejected(format!(
        "request id {name} was already used for the {action} of {}: choose another --request-id",
        assets.join(", ")
    )))
}

/// The JSON of a 2xx answer, or the error its status means.
fn answer(r: http::Response, what: &str) -> Result<serde_json::Value, CliError> {
    match r.status {
        200..=299 => r.json(),
        401 | 403 => Err(CliError::Rejected(
            "the local stack refused the admin token (--admin-token, PIXELFRONT_ADMIN_TOKEN)"
                .into(),
        )),
        404 => Err(CliError::Rejected(format!("{what}: {}", r.text()))),
        400..=499 => Err(CliError::Rejected(format!(
            "{what}: HTTP {}: {}",
            r.status,
            r.text()
        ))),
        s => Err(CliError::Server(format!("{what}: HTTP {s}: {}", r.text()))),
    }
}

/// Runs `pixelfront backfill`.
pub fn run_backfill(args: BackfillArgs) -> Result<(), Failure> {
    let interval = interval(args.poll)?;
    if args.target.aws {
        let arn = args.state_machine_arn.clone().ok_or_else(|| {
            CliError::Usage(
                "--aws needs the backfill state machine: --state-machine-arn or \
                 PIXELFRONT_BACKFILL_ARN"
                    .into(),
            )
        })?;
        aws::check_state_machine_arn(&arn)?;
        aws::check_flags(&args.target)?;
        let id = request_id(args.request_id.as_deref(), "backfill")?;
        return aws::block_on(aws::backfill(
            &args.target,
            &arn,
            &id,
            args.no_wait,
            interval,
        ))
        .map_err(Failure::from);
    }
    let ep = args.target.endpoint()?;
    let token = args.target.token()?;
    let started = http::request(&ep, "POST", "/backfill", token, None)?;
    let run = match started.status {
        409 => {
            eprintln!("pixelfront: a backfill is already running on the server: following it");
            started.json()?.get("run").and_then(|r| r.as_u64())
        }
        _ => answer(started, "backfill")?
            .get("run")
            .and_then(|r| r.as_u64()),
    };
    let mut progress = progress::Progress::new();
    let state = loop {
        let state = answer(
            http::request(&ep, "GET", "/backfill", token, None)?,
            "backfill",
        )?;
        let (fraction, line) = progress::local_backfill_line(&state);
        progress.show(fraction, &line);
        let same_run = run.is_none() || state.get("run").and_then(|r| r.as_u64()) == run;
        if !same_run || state.get("running") != Some(&serde_json::Value::Bool(true)) {
            break state;
        }
        std::thread::sleep(interval);
    };
    progress.finish();
    if state.get("interrupted") == Some(&serde_json::Value::Bool(true)) {
        return Err(CliError::Server(
            "the server stopped before the backfill finished: run it again to resume".into(),
        )
        .into());
    }
    println!("{state:#}");
    Ok(())
}

/// Runs `pixelfront audit`.
pub fn run_audit(args: AuditArgs) -> Result<(), Failure> {
    let (tenant, key) = split_asset(&args.asset)?;
    let records: Vec<serde_json::Value> = if args.target.aws {
        let table = args.audit_table.clone().ok_or_else(|| {
            CliError::Usage(
                "--aws needs the audit table: --audit-table or PIXELFRONT_AUDIT_TABLE".into(),
            )
        })?;
        aws::block_on(aws::audit(&args.target, &table, &tenant, &key))?
    } else {
        if !valid_key(&key) {
            return Err(CliError::Usage(format!(
                "key {key:?}: the local stack stores only keys of [A-Za-z0-9._~-] segments \
                 joined by /"
            ))
            .into());
        }
        let ep = args.target.endpoint()?;
        let token = args.target.token()?;
        let r = http::request(&ep, "GET", &format!("/audit/{tenant}/{key}"), token, None)?;
        match answer(r, &args.asset)? {
            serde_json::Value::Array(records) => records,
            other => vec![other],
        }
    };
    if records.is_empty() {
        return Err(CliError::Rejected(format!("{}: no audit record", args.asset)).into());
    }
    if args.summary {
        for r in &records {
            print!("{}", summary_lines(r));
        }
    } else {
        println!("{:#}", serde_json::Value::Array(records));
    }
    Ok(())
}

/// A few lines about one audit record (the same shape on AWS and on the local stack).
fn summary_lines(r: &serde_json::Value) -> String {
    let s = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_string();
    let count = |k: &str| r.get(k).and_then(|v| v.as_array()).map_or(0, Vec::len);
    let versions: Vec<String> = r
        .get("versions")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().map(|v| v.to_string()).collect())
        .unwrap_or_default();
    let invalidations: Vec<String> = r
        .get("invalidation_ids")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut out = format!(
        "{}  {} ({}) requested by {}: {}/{} versions [{}], status {}\n",
        s("request_id"),
        s("action"),
        s("reason"),
        s("requester"),
        s("tenant"),
        s("key"),
        versions.join(","),
        s("status")
    );
    out.push_str(&format!(
        "  started {}  finished {}\n",
        s("started_at"),
        r.get("finished_at")
            .and_then(|v| v.as_str())
            .unwrap_or("(in progress)")
    ));
    out.push_str(&format!(
        "  deleted: {} original versions, {} replica versions, {} derivatives\n",
        count("deleted_originals"),
        count("deleted_replica"),
        count("deleted_derivatives")
    ));
    if invalidations.is_empty() {
        out.push_str("  invalidations: none\n");
    } else {
        out.push_str(&format!("  invalidations: {}\n", invalidations.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct T {
        #[command(flatten)]
        args: RemoveArgs,
    }

    fn args(argv: &[&str]) -> RemoveArgs {
        let mut full = vec!["t"];
        full.extend_from_slice(argv);
        T::try_parse_from(full).expect("parse").args
    }

    #[test]
    fn inputs_follow_the_execution_input_contract() {
        let a = args(&["acme/a.jpg", "--reason", "dmca", "--requester", "x"]);
        let inputs = removal_inputs(&a, Verb::Takedown).expect("ok");
        assert_eq!(
            serde_json::to_value(&inputs).expect("json"),
            serde_json::json!([{"tenant": "acme", "key": "a.jpg", "reason": "dmca",
                                "requester": "x", "action": "takedown"}])
        );
        let a = args(&["zed/c", "acme/b", "acme/a", "acme/b", "--requester", "x"]);
        let inputs = removal_inputs(&a, Verb::Erase).expect("ok");
        assert_eq!(
            serde_json::to_value(&inputs).expect("json"),
            serde_json::json!([
                {"tenant": "acme", "keys": ["a", "b"], "reason": "gdpr", "requester": "x", "action": "erase"},
                {"tenant": "zed", "key": "c", "reason": "gdpr", "requester": "x", "action": "erase"}
            ])
        );
        let a = args(&[
            "acme/ugc/",
            "--prefix",
            "--reason",
            "tenant",
            "--requester",
            "x",
        ]);
        let inputs = removal_inputs(&a, Verb::Takedown).expect("ok");
        assert_eq!(inputs[0].prefix.as_deref(), Some("ugc/"));
        // A gdpr takedown stays a takedown.
        let a = args(&["acme/a", "--reason", "gdpr", "--requester", "x"]);
        let inputs = removal_inputs(&a, Verb::Takedown).expect("ok");
        assert_eq!(inputs[0].action.as_deref(), Some("takedown"));
    }

    #[test]
    fn over_500_keys_are_split() {
        let keys: Vec<String> = (0..1203).map(|i| format!("acme/k{i}")).collect();
        let mut argv: Vec<&str> = keys.iter().map(String::as_str).collect();
        argv.extend(["--reason", "dmca", "--requester", "x"]);
        let inputs = removal_inputs(&args(&argv), Verb::Takedown).expect("ok");
        let sizes: Vec<usize> = inputs
            .iter()
            .map(|i| i.keys.as_ref().map_or(0, Vec::len))
            .collect();
        assert_eq!(sizes, vec![500, 500, 203]);
        assert_eq!(
            numbered("R", 3).expect("ok"),
            vec!["R-1".to_string(), "R-2".into(), "R-3".into()]
        );
        assert_eq!(numbered("R", 1).expect("ok"), vec!["R".to_string()]);
        assert!(numbered(&"x".repeat(79), 2).is_err());
    }

    #[test]
    fn bad_input_is_one_line() {
        for (argv, verb, needle) in [
            (
                &["acme/a", "--reason", "nope", "--requester", "x"][..],
                Verb::Takedown,
                "not one of dmca, gdpr, tenant",
            ),
            (
                &["acme/a", "--reason", "dmca"][..],
                Verb::Takedown,
                "requester required",
            ),
            (
                &["acme/a", "--requester", "x"][..],
                Verb::Takedown,
                "reason required",
            ),
            (
                &["acme", "--requester", "x"][..],
                Verb::Erase,
                "expected <tenant>/<key>",
            ),
            (
                &["Acme/a", "--requester", "x"][..],
                Verb::Erase,
                "bad tenant",
            ),
            (
                &["acme/a", "acme/b", "--prefix", "--requester", "x"][..],
                Verb::Erase,
                "exactly one",
            ),
        ] {
            let err = removal_inputs(&args(argv), verb).expect_err(needle);
            let text = err.to_string();
            assert!(text.contains(needle), "{argv:?}: {text}");
            assert!(!text.contains('\n'));
            assert!(matches!(err, CliError::Usage(_)));
        }
        assert!(request_id(Some("bad id"), "takedown").is_err());
        assert!(request_id(Some("R1"), "takedown").is_ok());
        let generated = generated_id("takedown").expect("random");
        assert!(valid_request_id(&generated), "{generated}");
    }

    #[test]
    fn audit_summaries() {
        let aws = serde_json::json!({
            "request_id": "R1", "action": "takedown", "reason": "dmca", "requester": "x",
            "tenant": "acme", "key": "a.jpg", "status": "taken_down", "versions": [1, 2],
            "started_at": "2025-01-01T00:00:00Z", "finished_at": "2025-01-01T00:01:00Z",
            "deleted_originals": [{}, {}], "deleted_replica": [{}],
            "deleted_derivatives": [{}, {}, {}], "invalidation_ids": ["I1", "I2"]
        });
        let text = summary_lines(&aws);
        assert!(text.starts_with("R1  takedown (dmca) requested by x: acme/a.jpg versions [1,2], status taken_down\n"), "{text}");
        assert!(text.contains("2 original versions, 1 replica versions, 3 derivatives"));
        assert!(text.contains("invalidations: I1, I2"));
        let none = serde_json::json!({"request_id": "R2", "deleted_originals": [{}]});
        assert!(summary_lines(&none).contains("invalidations: none"));
    }
}
