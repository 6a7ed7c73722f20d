//! The AWS side of `takedown`, `erase`, `backfill` and `audit`: Step Functions executions
//! started by name (the request id, so a repeat never runs twice) and followed to their end
//! through `DescribeExecution`, `GetExecutionHistory` and, for the backfill's Distributed Map,
//! `ListMapRuns` and `DescribeMapRun`; audit records read from the DynamoDB audit table.

use super::progress::{BackfillProgress, Event, ItemCounts, Progress, TakedownProgress};
use super::{CliError, Target};
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use aws_sdk_sfn::Client;
use pixelfront_shared::removal::dynamo::DynamoAudit;
use pixelfront_shared::removal::{AuditStore, RemovalInput};
use pixelfront_shared::store::AssetId;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// Runs `fut` on a fresh Tokio runtime.
pub fn block_on<T>(fut: impl Future<Output = Result<T, CliError>>) -> Result<T, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Aws(format!("tokio runtime: {e}")))?
        .block_on(fut)
}

/// Checks the shape of a state machine ARN (`arn:…:states:…:stateMachine:{name}`).
pub fn check_state_machine_arn(arn: &str) -> Result<(), CliError> {
    let ok = arn.starts_with("arn:")
        && arn.contains(":states:")
        && arn
            .split_once(":stateMachine:")
            .is_some_and(|(_, name)| !name.is_empty() && !name.contains(':'));
    if ok {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "{arn:?} is not a state machine ARN (arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)"
        )))
    }
}

/// The ARN of execution `name` of the state machine `arn`.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// Checks `--region` and `--endpoint-url` (before anything is printed or sent).
pub fn check_flags(target: &Target) -> Result<(), CliError> {
    check_aws_flags(target.region.as_deref(), target.endpoint_url.as_deref())
}

/// Checks a region name and an endpoint URL (`--region`, `--endpoint-url` and the like).
pub fn check_aws_flags(region: Option<&str>, endpoint_url: Option<&str>) -> Result<(), CliError> {
    if let Some(region) = region {
        let ok = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(CliError::Usage(format!("bad --region {region:?}")));
        }
    }
    if let Some(url) = endpoint_url {
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        let rest = url.split_once("://").map_or("", |(_, r)| r);
        if !scheme_ok || rest.is_empty() || url.chars().any(char::is_whitespace) {
            return Err(CliError::Usage(format!(
                "bad --endpoint-url {url:?}: expected http(s)://host[:port]"
            )));
        }
    }
    Ok(())
}

/// The SDK configuration: the default chain, with `--region` and `--endpoint-url`.
async fn sdk_config(target: &Target) -> Result<aws_config::SdkConfig, CliError> {
    sdk_config_with(target.region.as_deref(), target.endpoint_url.as_deref()).await
}

/// The SDK configuration: the default chain, with a region and an endpoint URL when given.
pub async fn sdk_config_with(
    region: Option<&str>,
    endpoint_url: Option<&str>,
) -> Result<aws_config::SdkConfig, CliError> {
    check_aws_flags(region, endpoint_url)?;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(CliError::Usage(
            "no AWS region: pass --region or set AWS_REGION".into(),
        ));
    }
    Ok(config)
}

/// One line about a failed AWS call: the service's code and message, or the chain of
/// transport errors (`dispatch failure: io error: … Connection refused`).
pub fn aws_error<E, R>(what: &str, err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match (err.code(), err.message()) {
        (Some(code), Some(msg)) => format!("{what}: {code}: {msg}"),
        (Some(code), None) => format!("{what}: {code}"),
        _ => {
            let mut parts: Vec<String> = Vec::new();
            let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
            while let Some(e) = cur {
                let text = e.to_string();
                if !parts.iter().any(|p| p.contains(&text)) {
                    parts.push(text);
                }
                cur = e.source();
            }
            format!("{what}: {}", parts.join(": ")).replace('\n', " ")
        }
    }
}

/// Starts execution `name` of `arn`; an execution of that name that already exists is
/// followed instead (returned with `true`).
async fn start(
    client: &Client,
    arn: &str,
    name: &str,
    input: &str,
) -> Result<(String, bool), CliError> {
    match client
        .start_execution()
        .state_machine_arn(arn)
        .name(name)
        .input(input)
        .send()
        .await
    {
        Ok(out) => Ok((out.execution_arn().to_string(), false)),
        Err(err) => {
            let what = format!("starting {name}");
            match err.as_service_error() {
                Some(e) if e.is_execution_already_exists() => {
                    let exec = execution_arn(arn, name);
                    same_input(client, &exec, name, input).await?;
                    eprintln!(
                        "pixelfront: execution {name} already exists (this request id ran \
                         before): following it"
                    );
                    Ok((exec, true))
                }
                Some(e)
                    if e.is_invalid_arn()
                        || e.is_invalid_name()
                        || e.is_invalid_execution_input()
                        || e.is_state_machine_does_not_exist()
                        || e.is_state_machine_deleting() =>
                {
                    Err(CliError::Rejected(aws_error(&what, &err)))
                }
                _ => Err(CliError::Aws(aws_error(&what, &err))),
            }
        }
    }
}

/// Checks that the existing execution `exec` removes what `input` removes (the same action,
/// tenant and keys or prefix; who asked and why may be restated): the same request id for
/// other assets or the other action is a conflict, never passed off as their removal.
async fn same_input(client: &Client, exec: &str, name: &str, input: &str) -> Result<(), CliError> {
    let d = client
        .describe_execution()
        .execution_arn(exec)
        .send()
        .await
        .map_err(|e| CliError::Aws(aws_error("describing the existing execution", &e)))?;
    let theirs = d.input().unwrap_or_default();
    if removes_the_same(theirs, input) {
        return Ok(());
    }
    Err(CliError::Rejected(format!(
        "request id conflict: {name} already names another request ({theirs}), not this one \
         ({input}): choose another --request-id"
    )))
}

/// Whether two execution inputs remove the same assets the same way
/// ([`Validated::fingerprint`](pixelfront_shared::removal::Validated::fingerprint)); inputs
/// that do not parse are compared as JSON.
pub fn removes_the_same(theirs: &str, ours: &str) -> bool {
    let fingerprint = |s: &str| {
        serde_json::from_str::<RemovalInput>(s)
            .ok()
            .and_then(|i| pixelfront_shared::removal::validate(&i).ok())
            .map(|v| v.fingerprint())
    };
    match (fingerprint(theirs), fingerprint(ours)) {
        (Some(a), Some(b)) => a == b,
        _ => {
            let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
            parse(theirs).is_some() && parse(theirs) == parse(ours)
        }
    }
}

/// Converts a history event to what the progress reads.
fn event_of(e: &HistoryEvent) -> Option<Event> {
    if let Some(d) = e.state_entered_event_details() {
        return Some(Event::Entered {
            name: d.name().to_string(),
        });
    }
    if let Some(d) = e.state_exited_event_details() {
        return Some(Event::Exited {
            name: d.name().to_string(),
            output: d.output().map(str::to_string),
        });
    }
    if let Some(d) = e.task_failed_event_details() {
        return Some(Event::TaskFailed {
            error: d.error().map(str::to_string),
        });
    }
    if let Some(d) = e.lambda_function_failed_event_details() {
        return Some(Event::TaskFailed {
            error: d.error().map(str::to_string),
        });
    }
    None
}

/// The execution's history events newer than `seen` (event id), oldest first. Pages are read
/// newest first and the reading stops at the first page that reaches an event already seen,
/// so a long execution costs about one page per poll. Events are filtered by id rather than
/// by position: an emulator may ignore `reverseOrder` (moto reverses its stored list in place,
/// so its order alternates between calls).
async fn new_events(client: &Client, arn: &str, seen: &mut i64) -> Result<Vec<Event>, CliError> {
    let mut fresh: Vec<HistoryEvent> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .get_execution_history()
            .execution_arn(arn)
            .reverse_order(true)
            .include_execution_data(true)
            .max_results(1000)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| CliError::Aws(aws_error("reading the execution history", &e)))?;
        let mut reached_seen = false;
        for e in out.events() {
            if e.id() > *seen {
                fresh.push(e.clone());
            } else {
                reached_seen = true;
            }
        }
        match out.next_token() {
            Some(t) if !t.is_empty() && !reached_seen => token = Some(t.to_string()),
            _ => break,
        }
    }
    fresh.sort_by_key(|e| e.id());
    fresh.dedup_by_key(|e| e.id());
    if let Some(last) = fresh.last() {
        *seen = last.id();
    }
    Ok(fresh.iter().filter_map(event_of).collect())
}

/// How an execution ended.
struct Ended {
    status: ExecutionStatus,
    output: Option<String>,
    error: Option<String>,
    cause: Option<String>,
}

/// `DescribeExecution`: `None` while it runs.
async fn ended(client: &Client, arn: &str) -> Result<Option<Ended>, CliError> {
    let d = client
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .map_err(|e| {
            let what = "describing the execution";
            match e.as_service_error() {
                Some(s) if s.is_execution_does_not_exist() || s.is_invalid_arn() => {
                    CliError::Rejected(aws_error(what, &e))
                }
                _ => CliError::Aws(aws_error(what, &e)),
            }
        })?;
    Ok(match d.status() {
        ExecutionStatus::Running | ExecutionStatus::PendingRedrive => None,
        status => Some(Ended {
            status: status.clone(),
            output: d.output().map(str::to_string),
            error: d.error().map(str::to_string),
            cause: d.cause().map(str::to_string),
        }),
    })
}

/// The output JSON of a succeeded execution, or the error its end means.
fn succeeded(name: &str, end: Ended) -> Result<serde_json::Value, CliError> {
    if end.status == ExecutionStatus::Succeeded {
        let text = end.output.unwrap_or_else(|| "null".into());
        return serde_json::from_str(&text)
            .map_err(|e| CliError::Aws(format!("execution {name}: malformed output JSON: {e}")));
    }
    Err(CliError::ExecutionEnded {
        name: name.to_string(),
        status: end.status.as_str().to_string(),
        error: end.error.unwrap_or_else(|| "no error".into()),
        cause: end
            .cause
            .unwrap_or_else(|| "no cause".into())
            .replace('\n', " "),
    })
}

/// `takedown` / `erase` on AWS: starts each execution (name = request id) and, unless
/// `no_wait`, follows it to its end and prints its summary.
pub async fn remove(
    target: &Target,
    arn: &str,
    executions: Vec<(RemovalInput, String)>,
    no_wait: bool,
    interval: Duration,
) -> Result<(), CliError> {
    let client = Client::new(&sdk_config(target).await?);
    if no_wait {
        for (input, name) in &executions {
            let json = serde_json::to_string(input)
                .map_err(|e| CliError::Usage(format!("execution input: {e}")))?;
            let (exec, _) = start(&client, arn, name, &json).await?;
            println!("{exec}");
        }
        return Ok(());
    }
    for (input, name) in &executions {
        let json = serde_json::to_string(input)
            .map_err(|e| CliError::Usage(format!("execution input: {e}")))?;
        let (exec, _) = start(&client, arn, name, &json).await?;
        eprintln!("pixelfront: following {exec}");
        let mut progress = Progress::new();
        let mut state = TakedownProgress::default();
        let mut seen = 0;
        let end = loop {
            // Describe first: a finished execution's history is then complete.
            let end = ended(&client, &exec).await?;
            for ev in new_events(&client, &exec, &mut seen).await? {
                state.apply(&ev);
            }
            progress.show(state.fraction(), &state.line(name));
            if let Some(end) = end {
                break end;
            }
            tokio::time::sleep(interval).await;
        };
        progress.finish();
        let summary = succeeded(name, end)?;
        if state.already_done || summary.get("already_done") == Some(&serde_json::Value::Bool(true))
        {
            eprintln!("pixelfront: request {name} had already finished: nothing changed");
        }
        println!("{summary:#}");
    }
    Ok(())
}

/// The backfill's map runs' item counts, summed. Finished map runs are described once.
async fn map_items(
    client: &Client,
    exec: &str,
    finished: &mut HashMap<String, ItemCounts>,
) -> Result<ItemCounts, CliError> {
    let mut runs: Vec<(String, bool)> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .list_map_runs()
            .execution_arn(exec)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| CliError::Aws(aws_error("listing the map runs", &e)))?;
        for r in out.map_runs() {
            runs.push((r.map_run_arn().to_string(), r.stop_date().is_some()));
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    let mut sum = ItemCounts::default();
    for (run, stopped) in runs {
        if let Some(counts) = finished.get(&run) {
            sum.add(counts);
            continue;
        }
        let d = client
            .describe_map_run()
            .map_run_arn(&run)
            .send()
            .await
            .map_err(|e| CliError::Aws(aws_error("describing a map run", &e)))?;
        let counts = d
            .item_counts()
            .map_or_else(ItemCounts::default, |c| ItemCounts {
                succeeded: c.succeeded(),
                failed: c.failed(),
                running: c.running(),
                pending: c.pending(),
                aborted: c.aborted() + c.timed_out(),
                total: c.total(),
            });
        if stopped {
            finished.insert(run, counts);
        }
        sum.add(&counts);
    }
    Ok(sum)
}

/// `backfill` on AWS: starts the execution and, unless `no_wait`, follows it.
pub async fn backfill(
    target: &Target,
    arn: &str,
    name: &str,
    no_wait: bool,
    interval: Duration,
) -> Result<(), CliError> {
    let client = Client::new(&sdk_config(target).await?);
    let (exec, _) = start(&client, arn, name, "{}").await?;
    if no_wait {
        println!("{exec}");
        return Ok(());
    }
    eprintln!("pixelfront: following {exec}");
    let mut progress = Progress::new();
    let mut state = BackfillProgress::default();
    let mut seen = 0;
    let mut finished_runs = HashMap::new();
    let end = loop {
        let end = ended(&client, &exec).await?;
        for ev in new_events(&client, &exec, &mut seen).await? {
            state.apply(&ev);
        }
        state.items = map_items(&client, &exec, &mut finished_runs).await?;
        progress.show(state.fraction(), &state.line(name));
        if let Some(end) = end {
            break end;
        }
        tokio::time::sleep(interval).await;
    };
    progress.finish();
    let output = succeeded(name, end)?;
    let report = serde_json::json!({
        "execution_arn": exec,
        "total": state.total.or_else(|| output.get("total").and_then(|t| t.as_u64())),
        "checked": state.done(),
        "succeeded": state.items.succeeded,
        "failed": state.items.failed + state.items.aborted,
        "map_runs": finished_runs.len(),
        "output": output,
    });
    println!("{report:#}");
    Ok(())
}

/// `audit` on AWS: the asset's records from the audit table, as JSON values.
pub async fn audit(
    target: &Target,
    table: &str,
    tenant: &str,
    key: &str,
) -> Result<Vec<serde_json::Value>, CliError> {
    if table.is_empty() {
        return Err(CliError::Usage("--audit-table is empty".into()));
    }
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(target).await?);
    let asset = AssetId {
        tenant: tenant.to_string(),
        key: key.to_string(),
    };
    let records = DynamoAudit::new(client, table)
        .records(&asset)
        .await
        .map_err(|e| CliError::Aws(format!("reading the audit table {table}: {e}")))?;
    records
        .iter()
        .map(|r| serde_json::to_value(r).map_err(|e| CliError::Aws(e.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_conflicts_when_the_input_removes_something_else() {
        let k = r#"{"tenant":"acme","key":"a/K","reason":"dmca","requester":"legal@x"}"#;
        let restated = r#"{"tenant":"acme","key":"a/K","reason":"dmca","requester":"legal (2)"}"#;
        let other = r#"{"tenant":"acme","key":"a/K/x","reason":"dmca","requester":"legal@x"}"#;
        let erase = r#"{"tenant":"acme","key":"a/K","reason":"gdpr","requester":"legal@x"}"#;
        assert!(removes_the_same(k, k));
        assert!(removes_the_same(k, restated));
        assert!(!removes_the_same(k, other));
        assert!(!removes_the_same(k, erase));
        // Backfill inputs are not removal requests: compared as JSON.
        assert!(removes_the_same(r#"{"a": 1}"#, r#"{ "a":1 }"#));
        assert!(!removes_the_same(r#"{"a": 1}"#, r#"{"a": 2}"#));
        assert!(!removes_the_same("", ""));
    }

    #[test]
    fn arns() {
        let sm = "arn:aws:states:eu-west-1:123456789012:stateMachine:pixelfront-takedown";
        assert!(check_state_machine_arn(sm).is_ok());
        assert_eq!(
            execution_arn(sm, "R1"),
            "arn:aws:states:eu-west-1:123456789012:execution:pixelfront-takedown:R1"
        );
        for bad in [
            "",
            "pixelfront-takedown",
            "arn:aws:states:eu-west-1:1:execution:x:y",
            "arn:aws:states:eu-west-1:1:stateMachine:",
            "arn:aws:lambda:eu-west-1:1:stateMachine:x",
        ] {
            assert!(check_state_machine_arn(bad).is_err(), "{bad}");
        }
    }
}
