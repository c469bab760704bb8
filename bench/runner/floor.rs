//! Two helpers for bench/runner/paired.py, built with `rustc -O`:
//!   floor JOBS COUNT PROGRAM ARGS…   runs COUNT processes, at most JOBS at once, each
//!                                    `PROGRAM ARGS` with `{}` in an argument replaced by the
//!                                    job's number: the spawn floor, with no scheduler at all.
//!   stamp FILE                       writes the wall clock (ns since the epoch) to FILE: the
//!                                    first and last jobs of the latency pipelines run it.
use std::process::{Child, Command};
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("stamp") if args.len() == 2 => stamp(&args[1]),
        Some("floor") if args.len() >= 4 => floor(&args[1..]),
        _ => {
            eprintln!("usage: floor floor JOBS COUNT PROGRAM ARGS… | floor stamp FILE");
            std::process::exit(2);
        }
    }
}

fn stamp(file: &str) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    std::fs::write(file, now.as_nanos().to_string()).expect("write stamp");
}

fn floor(args: &[String]) {
    let jobs: usize = args[0].parse().expect("JOBS");
    let count: usize = args[1].parse().expect("COUNT");
    let (program, rest) = (&args[2], &args[3..]);
    let mut running: Vec<Child> = Vec::new();
    for n in 0..count {
        if running.len() == jobs {
            // Wait for the oldest: with identical jobs it is the first to end.
            let status = running.remove(0).wait().expect("wait");
            assert!(status.success(), "a job failed");
        }
        let job_args = rest.iter().map(|a| a.replace("{}", &n.to_string()));
        running.push(Command::new(program).args(job_args).spawn().expect("spawn"));
    }
    for mut child in running {
        assert!(child.wait().expect("wait").success(), "a job failed");
    }
}
