//! The two halves: the worker runs cases and reports each on stdout (`start i`, then
//! `done i <outcome>`); the supervisor starts workers under the address-space limit, watches
//! for a worker that dies or hangs inside a case, saves that case's input and goes on.

use crate::{mutate, seeds, Args};
use fastrand::Rng;
use pixelfront_shared::render::{decode, probe};

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One generated input.
struct Case {
    seed_name: String,
    mutations: Vec<&'static str>,
    bytes: Vec<u8>,
    /// The fraction of full resolution asked of the decoder (JPEG's DCT scaling).
    scale: f64,
}

fn make_case(seeds: &[seeds::Seed], seed: u64, i: u64) -> Case {
    let mut rng = Rng::with_seed(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let s = &seeds[rng.usize(0..seeds.len())];
    let (bytes, mutations) = mutate::mutate(&mut rng, &s.bytes);
    Case {
        seed_name: s.name.clone(),
        mutations,
        bytes,
        scale: [1.0, 0.5, 0.25, 0.125][rng.usize(0..4)],
    }
}

/// Probe, then decode: the outcome is `image` or the typed error's type.
fn run_case(bytes: &[u8], scale: f64) -> &'static str {
    let limits = pixelfront_shared::Policy::get().limits;
    let _ = probe(bytes, &limits);
    match decode(bytes, &limits, scale) {
        Ok(_) => "image",
        Err(e) => e.error_type(),
    }
}

/// Worker side: run cases from `--from` until the time budget (or the one `--case`).
pub fn run(args: &Args) -> Result<bool, String> {
    let mut out = std::io::stdout().lock();
    let mut report = |line: String| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    if let Some(path) = &args.replay {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        report("start 0".into());
        report(format!("done 0 {}", run_case(&bytes, 1.0)));
        return Ok(true);
    }
    let seeds = seeds::load(&args.corpus)?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut i = args.from;
    while Instant::now() < deadline && args.case.is_none_or(|c| c == i) {
        let case = make_case(&seeds, args.seed, i);
        report(format!("start {i}"));
        report(format!("done {i} {}", run_case(&case.bytes, case.scale)));
        i += 1;
    }
    Ok(true)
}

/// Supervisor side: workers under the limit, failures saved and reported.
pub fn supervise(args: &Args) -> Result<bool, String> {
    let seeds = match args.replay {
        Some(_) => Vec::new(),
        None => seeds::load(&args.corpus)?,
    };
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(args.seconds);
    println!(
        "pixelfront-fuzz: seed {}, {} seed files, {} s, worker address space {} MiB",
        args.seed,
        seeds.len(),
        args.seconds,
        args.memory_mib
    );
    let single = args.case.is_some() || args.replay.is_some();
    let mut next = args.case.unwrap_or(0);
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut failures = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() && !single {
            break;
        }
        let mut cmd = Command::new(&exe);
        cmd.args(["--worker", "--seed", &args.seed.to_string()])
            .args(["--from", &next.to_string()])
            .args(["--seconds", &left.as_secs().max(1).to_string()]);
        for dir in &args.corpus {
            cmd.arg("--corpus").arg(dir);
        }
        if let Some(c) = args.case {
            cmd.args(["--case", &c.to_string()]);
        }
        if let Some(p) = &args.replay {
            cmd.arg("--replay").arg(p);
        }
        let limit = args.memory_mib << 20;
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start worker: {e}"))?;
        let stdout = child.stdout.take().ok_or("worker stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut running: Option<u64> = None;
        let mut hung = false;
        loop {
            match rx.recv_timeout(Duration::from_secs(args.case_timeout)) {
                Ok(line) => {
                    let mut parts = line.split(' ');
                    let (kind, i) = (parts.next(), parts.next().and_then(|n| n.parse().ok()));
                    match (kind, i) {
                        (Some("start"), Some(i)) => running = Some(i),
                        (Some("done"), Some(i)) => {
                            debug_assert_eq!(running, Some(i));
                            running = None;
                            let outcome = parts.next().unwrap_or("?").to_string();
                            *outcomes.entry(outcome).or_default() += 1;
                        }
                        _ => {}
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if running.is_some() => {
                    let _ = child.kill();
                    hung = true;
                    break;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        let Some(i) = running else {
            if !status.success() {
                return Err(format!("worker failed outside a case: {status}"));
            }
            break;
        };
        let how = match (hung, status.signal()) {
            (true, _) => format!("hung (over {} s)", args.case_timeout),
            (false, Some(sig)) => format!("killed by signal {sig} (abort = 6, segfault = 11)"),
            (false, None) => format!("exited with {status} (a panic exits 101)"),
        };
        failures.push(report_failure(args, &seeds, i, &how)?);
        next = i + 1;
        if single {
            break;
        }
    }
    let cases: u64 = outcomes.values().sum();
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "pixelfront-fuzz: {cases} cases in {secs:.0} s ({:.0}/s), outcomes {outcomes:?}",
        cases as f64 / secs.max(0.001)
    );
    if failures.is_empty() {
        println!("pixelfront-fuzz: no failures");
    } else {
        println!("pixelfront-fuzz: {} FAILURES:", failures.len());
        for f in &failures {
            println!("  {}", f.display());
        }
    }
    Ok(failures.is_empty())
}

/// Save the failing input (unless it is a replayed file already) and print how to reproduce it.
fn report_failure(
    args: &Args,
    seeds: &[seeds::Seed],
    i: u64,
    how: &str,
) -> Result<PathBuf, String> {
    if let Some(p) = &args.replay {
        println!("FAIL {}: {how}", p.display());
        return Ok(p.clone());
    }
    let case = make_case(seeds, args.seed, i);
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let b = &case.bytes;
    let ext = if b.starts_with(&[0xFF, 0xD8]) {
        "jpg"
    } else if b.starts_with(b"\x89PNG") {
        "png"
    } else if b.starts_with(b"GIF") {
        "gif"
    } else if b.starts_with(b"RIFF") {
        "webp"
    } else {
        "bin"
    };
    let path = args.out.join(format!("seed{}-case{i}.{ext}", args.seed));
    std::fs::write(&path, b).map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "FAIL case {i} (seed {}): {how}; from {} with {:?} at scale {}; input saved to {}; \
         reproduce: pixelfront-fuzz --replay {} (or --seed {} --case {i})",
        args.seed,
        case.seed_name,
        case.mutations,
        case.scale,
        path.display(),
        path.display(),
        args.seed
    );
    Ok(path)
}
