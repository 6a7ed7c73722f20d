//! The Retry blocks of `statemachine/*.asl.json` against the error names Step Functions
//! reports for a Lambda task (docs/aws-deploy.md#retries): every Lambda task retries the
//! invoke-level errors and a crash a bounded number of times, an out-of-memory kill at most
//! once and a permanent image error never; every Express run fits in its 5 minutes.

use serde_json::Value;

/// The state machines, with whether the top level runs as an Express workflow.
const MACHINES: [(&str, &str, bool); 3] = [
    (
        "precompute",
        include_str!("../../../statemachine/precompute.asl.json"),
        true,
    ),
    (
        "backfill",
        include_str!("../../../statemachine/backfill.asl.json"),
        false,
    ),
    (
        "takedown",
        include_str!("../../../statemachine/takedown.asl.json"),
        false,
    ),
];

/// Invoke-level errors of the Lambda service (Step Functions' "Handle Lambda service
/// exceptions").
const INVOKE: [&str; 5] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
];

/// A function that exited (a panic aborts), ran out of its own time, or outlived the task's
/// `TimeoutSeconds`.
const CRASH: [&str; 3] = ["Runtime.ExitError", "Sandbox.Timedout", "States.Timeout"];

/// The names an out-of-memory kill surfaces as (`Lambda.Unknown`: an unhandled function error,
/// which may be one): retried at most once, a second try would run out of memory again.
const OOM: [&str; 2] = ["Runtime.OutOfMemory", "Lambda.Unknown"];

/// Most retries of a crash on any task.
const CRASH_MAX_RETRIES: u64 = 6;

/// An Express workflow's longest run, seconds.
const EXPRESS_LIMIT_S: f64 = 300.0;

/// The precompute pipeline's permanent errors: never retried.
const PERMANENT: [&str; 8] = [
    "ImageCorrupt",
    "ImageTooLarge",
    "ImageUnsupported",
    "ImageRenderFailed",
    "SourceGone",
    "StoreDenied",
    "InvalidInput",
    "ManifestInvalid",
];

/// One Lambda task state: its path (`Parent/Name`), the state, and whether it runs in an
/// Express workflow.
struct LambdaTask<'a> {
    path: String,
    state: &'a Value,
    express: bool,
    /// The Express workflow it belongs to (its tasks share the 5 minutes).
    run: String,
}

fn lambda_tasks<'a>(
    states: &'a Value,
    prefix: &str,
    express: bool,
    run: &str,
    out: &mut Vec<LambdaTask<'a>>,
) {
    let Some(states) = states.as_object() else {
        panic!("{prefix}: States is not an object");
    };
    for (name, state) in states {
        let path = format!("{prefix}/{name}");
        if state["Type"] == "Task"
            && state["Resource"]
                .as_str()
                .is_some_and(|r| r.starts_with("arn:aws:states:::lambda:invoke"))
        {
            out.push(LambdaTask {
                path: path.clone(),
                state,
                express,
                run: run.to_string(),
            });
        }
        for key in ["ItemProcessor", "Iterator"] {
            let processor = &state[key];
            if processor.is_object() {
                let child = processor["ProcessorConfig"]["ExecutionType"] == "EXPRESS";
                let child_run = if child { path.clone() } else { run.to_string() };
                lambda_tasks(
                    &processor["States"],
                    &path,
                    express || child,
                    &child_run,
                    out,
                );
            }
        }
        for branch in state["Branches"].as_array().into_iter().flatten() {
            lambda_tasks(&branch["States"], &path, express, run, out);
        }
    }
}

fn all_tasks() -> Vec<(String, Value)> {
    MACHINES
        .iter()
        .map(|(name, text, _)| {
            let asl: Value = serde_json::from_str(text).expect("ASL is JSON");
            (name.to_string(), asl)
        })
        .collect()
}

fn each_task(mut check: impl FnMut(&LambdaTask<'_>, &str)) {
    let machines = all_tasks();
    for ((name, asl), (_, _, express)) in machines.iter().zip(MACHINES) {
        let mut tasks = Vec::new();
        lambda_tasks(&asl["States"], name, express, name, &mut tasks);
        assert!(!tasks.is_empty(), "{name}: no Lambda task found");
        for task in &tasks {
            check(task, name);
        }
    }
}

/// The retrier Step Functions applies to `error`: the first whose `ErrorEquals` names it, or
/// names `States.ALL`, or `States.TaskFailed` (every task error but `States.Timeout`).
fn retrier_for<'a>(state: &'a Value, error: &str) -> Option<&'a Value> {
    state["Retry"].as_array()?.iter().find(|r| {
        r["ErrorEquals"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|e| {
                e == error
                    || e == "States.ALL"
                    || (e == "States.TaskFailed" && error != "States.Timeout")
            })
    })
}

/// A retrier's `MaxAttempts` (ASL default 3).
fn max_attempts(retrier: &Value) -> u64 {
    retrier["MaxAttempts"].as_u64().unwrap_or(3)
}

/// The longest a task can take when one cause of failure repeats: for each retrier, every try
/// it allows at the task's `TimeoutSeconds` plus its waits without jitter; the worst retrier.
fn worst_case_s(task: &LambdaTask<'_>) -> f64 {
    let timeout = task.state["TimeoutSeconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("{}: an Express task needs TimeoutSeconds", task.path));
    let mut worst = timeout;
    for r in task.state["Retry"].as_array().into_iter().flatten() {
        let interval = r["IntervalSeconds"].as_f64().unwrap_or(1.0);
        let backoff = r["BackoffRate"].as_f64().unwrap_or(2.0);
        let cap = r["MaxDelaySeconds"].as_f64().unwrap_or(f64::INFINITY);
        let retries = max_attempts(r);
        let waits: f64 = (0..retries)
            .map(|k| (interval * backoff.powi(k as i32)).min(cap))
            .sum();
        worst = worst.max((retries + 1) as f64 * timeout + waits);
    }
    worst
}

#[test]
fn every_lambda_task_retries_the_invoke_errors_and_a_crash_a_bounded_number_of_times() {
    each_task(|task, machine| {
        for name in INVOKE.iter().chain(&CRASH) {
            let r = retrier_for(task.state, name)
                .unwrap_or_else(|| panic!("{machine}: {}: {name} is not retried", task.path));
            let n = max_attempts(r);
            assert!(
                (1..=CRASH_MAX_RETRIES).contains(&n),
                "{machine}: {}: {name} retried {n} times",
                task.path
            );
        }
    });
}

#[test]
fn an_out_of_memory_kill_is_retried_once_and_no_more() {
    each_task(|task, machine| {
        for name in OOM {
            let r = retrier_for(task.state, name)
                .unwrap_or_else(|| panic!("{machine}: {}: {name} is not retried", task.path));
            assert_eq!(
                max_attempts(r),
                1,
                "{machine}: {}: {name} must be retried exactly once",
                task.path
            );
        }
    });
}

#[test]
fn permanent_image_errors_are_never_retried() {
    each_task(|task, machine| {
        if machine == "takedown" {
            return;
        }
        for name in PERMANENT {
            assert!(
                retrier_for(task.state, name).is_none(),
                "{machine}: {}: {name} is retried",
                task.path
            );
        }
    });
}

#[test]
fn every_express_run_fits_in_five_minutes() {
    let mut runs: Vec<(String, f64)> = Vec::new();
    each_task(|task, _| {
        if !task.express {
            return;
        }
        let cost = worst_case_s(task);
        match runs.iter_mut().find(|(run, _)| *run == task.run) {
            Some((_, total)) => *total += cost,
            None => runs.push((task.run.clone(), cost)),
        }
    });
    let names: Vec<&str> = runs.iter().map(|(run, _)| run.as_str()).collect();
    assert_eq!(names, ["precompute", "backfill/RenderPage"]);
    for (run, total) in runs {
        assert!(
            total <= EXPRESS_LIMIT_S,
            "{run}: worst case {total} s exceeds the Express limit of {EXPRESS_LIMIT_S} s"
        );
    }
}

#[test]
fn the_precompute_failure_still_reaches_mark_failed() {
    let asl: Value = serde_json::from_str(MACHINES[0].1).expect("ASL is JSON");
    let render = &asl["States"]["RenderVariants"];
    let catches = render["Catch"].as_array().expect("Catch");
    let last = catches.last().expect("a catch-all");
    assert_eq!(last["ErrorEquals"], serde_json::json!(["States.ALL"]));
    assert_eq!(last["Next"], "MarkFailed");
    assert_eq!(last["ResultPath"], "$.error");
    for c in catches {
        assert_eq!(c["Next"], "MarkFailed");
    }
}

#[test]
fn the_local_stack_retries_a_render_as_the_state_machine_does() {
    let asl: Value = serde_json::from_str(MACHINES[0].1).expect("ASL is JSON");
    let retrier = retrier_for(&asl["States"]["RenderVariants"], "StoreUnavailable")
        .expect("StoreUnavailable is retried");
    let local = super::Retry::STATE_MACHINE;
    assert_eq!(max_attempts(retrier), u64::from(local.retries));
    assert_eq!(
        retrier["IntervalSeconds"].as_u64(),
        Some(local.first_delay.as_secs())
    );
    assert_eq!(
        retrier["BackoffRate"].as_u64(),
        Some(u64::from(local.backoff))
    );
    assert_eq!(
        retrier["MaxDelaySeconds"].as_u64(),
        Some(local.max_delay.as_secs())
    );
}

/// The precompute run's announcement tasks (EventBridge `putEvents`): each is tried once (no
/// `Retry`), catches every error into the state it would have gone to anyway (a lost event
/// never fails an upload), and the longest path, every Lambda task at its worst plus one
/// announcement, still fits in the Express limit.
#[test]
fn asset_announcements_never_fail_an_upload_and_keep_the_express_budget() {
    let asl: Value = serde_json::from_str(MACHINES[0].1).expect("ASL is JSON");
    let states = asl["States"].as_object().expect("States");
    let announcements: Vec<(&String, &Value)> = states
        .iter()
        .filter(|(_, s)| s["Resource"] == "arn:aws:states:::events:putEvents")
        .collect();
    let mut names: Vec<&str> = announcements.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "AnnounceFailed",
            "AnnounceReady",
            "AnnounceRecovered",
            "AnnounceRejected"
        ]
    );
    let mut longest = 0.0f64;
    for (name, s) in &announcements {
        assert!(s["Retry"].is_null(), "{name}: tried once");
        let catch = &s["Catch"][0];
        assert_eq!(
            catch["ErrorEquals"],
            serde_json::json!(["States.ALL"]),
            "{name}"
        );
        assert_eq!(
            catch["Next"], s["Next"],
            "{name}: an error goes on as success does"
        );
        assert_eq!(s["Parameters"]["Entries"][0]["Source"], "pixelfront");
        longest = longest.max(s["TimeoutSeconds"].as_f64().expect("TimeoutSeconds"));
    }
    // Every terminal state is reached only through an announcement (but a repeated event's).
    for (name, s) in states {
        if matches!(s["Type"].as_str(), Some("Succeed" | "Fail")) && name != "AlreadyDone" {
            let from: Vec<&str> = announcements
                .iter()
                .filter(|(_, a)| a["Next"] == name.as_str())
                .map(|(n, _)| n.as_str())
                .collect();
            assert!(
                !from.is_empty(),
                "{name} is reached without an announcement"
            );
        }
    }
    let mut lambda = Vec::new();
    lambda_tasks(
        &asl["States"],
        "precompute",
        true,
        "precompute",
        &mut lambda,
    );
    let worst: f64 = lambda.iter().map(worst_case_s).sum::<f64>() + longest;
    assert!(
        worst <= EXPRESS_LIMIT_S,
        "precompute: worst case {worst} s with an announcement exceeds {EXPRESS_LIMIT_S} s"
    );
}
