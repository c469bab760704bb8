//! The step runner: runs a block of steps as `/bin/sh -ec` processes in their own process
//! groups, with the clean environment, redacted logs, timeouts, retries and interrupts. Jobs
//! and delivery (deploy, smoke, rollback, probes) both run their commands through it.

use crate::compile::plan::Step;
use crate::run::console::{Console, Stream};
use crate::run::direct_exec::direct_command;
use crate::run::eval::{self, Bindings};
use crate::run::interrupt::{Interrupt, InterruptLevel};
use crate::run::redact::{MergedStream, Pieces, Redactor};
use crate::run::shell_quote;
use crate::run::supervisor;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// Host variables every process gets (SPEC §10); anything else only through `inherit_env`.
pub const BASE_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LANG", "LC_ALL", "TERM", "TMPDIR", "CI",
];

/// How long a process group has between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(10);

/// Default first retry delay when a block sets `retries` without `backoff`.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

/// Shared by every node of a run.
pub struct StepRunner {
    pub run_id: String,
    /// `.pipe/runs/RUN/logs`; `None` writes no log files.
    pub logs_dir: Option<PathBuf>,
    pub redactor: Redactor,
    pub console: Arc<Console>,
    pub interrupt: Interrupt,
    pub kill_grace: Duration,
    /// The host environment `pipe` was started with (the source of `BASE_ENV`/`inherit_env`).
    pub host_env: BTreeMap<String, String>,
}

/// One block of steps to run: a job's `run`s, or a deploy/smoke/rollback/migrate block.
#[derive(Debug, Clone, Default)]
pub struct BlockRequest {
    /// The node id: `PIPE_NODE`, the log file and the console prefix.
    pub node: String,
    pub steps: Vec<Step>,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub backoff: Option<Duration>,
    /// The `shell` attribute; `None`: `/bin/sh -ec`.
    pub shell: Option<String>,
    pub workdir: PathBuf,
    /// Already evaluated `env` (pipeline's then the item's).
    pub env: BTreeMap<String, String>,
    /// Extra `PIPE_*` variables (`PIPE_ENVIRONMENT`, `PIPE_ARTIFACT`, …).
    pub pipe_env: BTreeMap<String, String>,
    /// Declared secrets: name → value; each becomes the upper-case variable `NAME`.
    pub secrets: BTreeMap<String, String>,
    pub inherit_env: Vec<String>,
    /// For the `${{ }}` holes of the steps.
    pub bindings: Bindings,
    /// Keep the (redacted) stdout of the last step, e.g. a probe's reading. A captured stream is
    /// a reading, not a log: it goes to the log file and the result, never to the console
    /// (a watch samples its probes many times a second).
    pub capture_stdout: bool,
}

/// How a block ended.
#[derive(Debug, Clone, PartialEq)]
pub enum BlockOutcome {
    Succeeded,
    /// Redacted: `step 2 \`./coverage.sh\` exited 1`.
    Failed(String),
    Interrupted,
}

#[derive(Debug, Clone)]
pub struct BlockResult {
    pub outcome: BlockOutcome,
    /// The last step's exit code (128+N for a signal).
    pub exit_code: Option<i32>,
    pub duration: Duration,
    /// Attempts of all steps together.
    pub attempts: u32,
    /// Raw `$PIPE_OUTPUT` contents. May hold secret values: redact before storing.
    pub output_file: String,
    /// Redacted stdout of the last step when `capture_stdout` was set.
    pub stdout: String,
    pub log_path: Option<PathBuf>,
}

enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut(Duration),
    Interrupted,
    SpawnFailed(String),
}

impl Exit {
    fn code(&self) -> Option<i32> {
        match self {
            Exit::Code(code) => Some(*code),
            Exit::Signal(signal) => Some(128 + signal),
            _ => None,
        }
    }

    fn failure(&self) -> Option<String> {
        match self {
            Exit::Code(0) | Exit::Interrupted => None,
            Exit::Code(code) => Some(format!("exited {code}")),
            Exit::Signal(signal) => Some(format!("was killed by signal {signal}")),
            Exit::TimedOut(after) => Some(format!(
                "timed out after {}",
                eval::format_duration_ms(after.as_millis() as u64)
            )),
            Exit::SpawnFailed(why) => Some(format!("could not start: {why}")),
        }
    }
}

/// `$PIPE_OUTPUT`, removed when the block ends, whatever happens.
struct OutputFile(PathBuf);

impl Drop for OutputFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The per-node log file, and the first write that failed (a full disk): a log that lost
/// bytes fails its node rather than passing for complete.
#[derive(Default)]
struct LogSink {
    file: Option<File>,
    path: PathBuf,
    failure: Option<String>,
}

type LogFile = Arc<Mutex<LogSink>>;

/// A multi-line script is named by its first line (with `…`), so a failure message stays one
/// line in the console and the summary table.
fn first_line(command: &str) -> std::borrow::Cow<'_, str> {
    let trimmed = command.trim();
    match trimmed.split_once('\n') {
        Some((first, _)) => format!("{} …", first.trim_end()).into(),
        None => trimmed.into(),
    }
}

impl StepRunner {
    /// Runs every step in order, stopping at the first that fails after its retries.
    pub async fn run_block(&self, request: &BlockRequest) -> BlockResult {
        let started = Instant::now();
        let log_path = self
            .logs_dir
            .as_ref()
            .map(|dir| dir.join(super::state::log_file_name(&request.node)));
        let log = open_log(log_path.as_deref());
        let failed_write = |log: &LogFile| lock_log(log).failure.clone();
        let mut result = BlockResult {
            outcome: BlockOutcome::Succeeded,
            exit_code: None,
            duration: Duration::ZERO,
            attempts: 0,
            output_file: String::new(),
            stdout: String::new(),
            log_path: log_path.clone(),
        };
        // PIPE_TMP is the fresh directory itself. $PIPE_OUTPUT is a path beside it, created by
        // the job's first `>>` (one file-system create per job instead of three), outside
        // `.pipe/` because a job may write a secret into it. The mkdir in a shared `$TMPDIR`
        // can take milliseconds: it runs on the blocking pool, so the scheduler's thread goes
        // on starting and reaping other jobs meanwhile.
        let scratch = match create_scratch().await {
            Ok(scratch) => scratch,
            Err(e) => {
                result.outcome = BlockOutcome::Failed(format!("could not create PIPE_TMP: {e}"));
                return result;
            }
        };
        if let Some(why) = failed_write(&log) {
            result.outcome = BlockOutcome::Failed(why);
            return result;
        }
        let tmp_path = scratch.path().to_path_buf();
        let output_path = OutputFile(tmp_path.with_extension("output"));
        let output_path = &output_path.0;
        let env = self.environment(request, output_path, &tmp_path);
        for (index, step) in request.steps.iter().enumerate() {
            let shell = request.shell.as_deref();
            let command = match shell_quote::render_command(&step.run, &request.bindings, shell) {
                Ok(command) => command,
                Err(e) => {
                    result.outcome = BlockOutcome::Failed(
                        self.redactor
                            .text(&format!("step {} could not be resolved: {e}", index + 1)),
                    );
                    break;
                }
            };
            let (exit, attempts, stdout) = self.run_step(request, &env, &log, &command).await;
            result.attempts += attempts;
            result.exit_code = exit.code();
            result.stdout = stdout;
            if matches!(exit, Exit::Interrupted) {
                result.outcome = BlockOutcome::Interrupted;
                break;
            }
            if let Some(why) = exit.failure() {
                let shown = self.redactor.text(&first_line(&command));
                result.outcome =
                    BlockOutcome::Failed(format!("step {} `{shown}` {why}", index + 1));
                break;
            }
        }
        if let Some(why) = failed_write(&log) {
            result.outcome = match result.outcome {
                BlockOutcome::Failed(step) => BlockOutcome::Failed(format!("{step}; {why}")),
                _ => BlockOutcome::Failed(why),
            };
        }
        result.output_file = std::fs::read_to_string(output_path).unwrap_or_default();
        result.duration = started.elapsed();
        // Removing PIPE_TMP (maybe a large tree) is blocking work: off the scheduler's thread.
        tokio::task::spawn_blocking(move || drop(scratch));
        result
    }

    /// One step with its retries: D, 2D, 4D… between attempts.
    async fn run_step(
        &self,
        request: &BlockRequest,
        env: &BTreeMap<String, String>,
        log: &LogFile,
        command: &str,
    ) -> (Exit, u32, String) {
        let mut delay = request.backoff.unwrap_or(DEFAULT_BACKOFF);
        let mut attempt = 1;
        loop {
            write_log(
                log,
                format!("$ {}\n", self.redactor.text(command)).as_bytes(),
            );
            let (exit, stdout) = self.run_process(request, env, log, command).await;
            let Some(why) = exit.failure() else {
                return (exit, attempt, stdout);
            };
            if attempt > request.retries || self.interrupt.is_set() {
                return (exit, attempt, stdout);
            }
            let human = format!(
                "[{}] attempt {attempt}/{} {why}; retrying in {}",
                request.node,
                request.retries + 1,
                eval::format_duration_ms(delay.as_millis() as u64)
            );
            let human = self.redactor.text(&human);
            write_log(log, format!("{human}\n").as_bytes());
            let fields =
                serde_json::json!({"attempt": attempt, "delay_ms": delay.as_millis() as u64});
            self.console
                .notice("retry", Some(&request.node), &human, fields);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.interrupt.reached(InterruptLevel::Graceful) => {
                    return (Exit::Interrupted, attempt, stdout);
                }
            }
            delay = delay.saturating_mul(2);
            attempt += 1;
        }
    }

    /// The clean environment of SPEC §10.
    fn environment(
        &self,
        request: &BlockRequest,
        output: &Path,
        tmp: &Path,
    ) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let inherited = BASE_ENV
            .iter()
            .copied()
            .chain(request.inherit_env.iter().map(String::as_str));
        for name in inherited {
            if let Some(value) = self.host_env.get(name) {
                env.insert(name.to_string(), value.clone());
            }
        }
        env.extend(request.env.clone());
        for (name, value) in &request.secrets {
            env.insert(name.to_uppercase(), value.clone());
        }
        env.extend(request.pipe_env.clone());
        env.insert("PIPE_RUN_ID".into(), self.run_id.clone());
        env.insert("PIPE_NODE".into(), request.node.clone());
        env.insert("PIPE_OUTPUT".into(), output.display().to_string());
        env.insert("PIPE_TMP".into(), tmp.display().to_string());
        env
    }

    async fn run_process(
        &self,
        request: &BlockRequest,
        env: &BTreeMap<String, String>,
        log: &LogFile,
        command: &str,
    ) -> (Exit, String) {
        if let Err(e) = supervisor::ensure_started() {
            let why = format!("the step supervisor could not be started: {e}");
            return (Exit::SpawnFailed(why), String::new());
        }
        let mut child = match spawn(request, env, command) {
            Ok(child) => child,
            Err(e) => return (Exit::SpawnFailed(e.to_string()), String::new()),
        };
        let Some(pgid) = child.id().map(|id| Pid::from_raw(id as i32)) else {
            return (Exit::SpawnFailed("no process id".into()), String::new());
        };
        // From here the step dies with the runner, even if the runner is killed.
        if let Err(e) = supervisor::register(pgid) {
            self.terminate_group(&mut child, pgid).await;
            let why = format!("the step supervisor is gone: {e}");
            return (Exit::SpawnFailed(why), String::new());
        }
        let sink = Arc::new(Mutex::new(ProcessSink {
            redacting: self.redactor.merged(),
            log: Arc::clone(log),
            console: Arc::clone(&self.console),
            node: request.node.clone(),
            capture_stdout: request.capture_stdout,
            partial_lines: [Vec::new(), Vec::new()],
            captured: Vec::new(),
        }));
        let stdout_reader = child
            .stdout
            .take()
            .map(|pipe| spawn_reader(pipe, Stream::Stdout, &sink));
        let stderr_reader = child
            .stderr
            .take()
            .map(|pipe| spawn_reader(pipe, Stream::Stderr, &sink));
        let exit = self.wait(&mut child, pgid, request.timeout).await;
        // Nothing of the step may outlive it: stragglers in its group are terminated too.
        if group_alive(pgid) {
            self.terminate_group(&mut child, pgid).await;
        }
        let _ = supervisor::unregister(pgid);
        join_reader(stdout_reader).await;
        join_reader(stderr_reader).await;
        let captured = lock_sink(&sink).finish();
        (exit, String::from_utf8_lossy(&captured).into_owned())
    }

    async fn wait(&self, child: &mut Child, pgid: Pid, timeout: Option<Duration>) -> Exit {
        let deadline = async {
            match timeout {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = child.wait() => match status {
                Ok(status) => exit_of(status),
                Err(e) => Exit::SpawnFailed(e.to_string()),
            },
            () = deadline => {
                self.terminate_group(child, pgid).await;
                Exit::TimedOut(timeout.unwrap_or_default())
            }
            () = self.interrupt.reached(InterruptLevel::Graceful) => {
                self.terminate_group(child, pgid).await;
                Exit::Interrupted
            }
        }
    }

    /// SIGTERM to the whole group; SIGKILL after the grace period or a second interrupt.
    async fn terminate_group(&self, child: &mut Child, pgid: Pid) {
        signal_group(pgid, Some(Signal::SIGTERM));
        tokio::select! {
            _ = child.wait() => {}
            () = tokio::time::sleep(self.kill_grace) => {}
            () = self.interrupt.reached(InterruptLevel::Immediate) => {}
        }
        // The leader may be gone while others in its group ignore SIGTERM: wait for the group.
        let deadline = Instant::now() + self.kill_grace;
        while group_alive(pgid) && Instant::now() < deadline {
            if self.interrupt.level() == InterruptLevel::Immediate {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        signal_group(pgid, Some(Signal::SIGKILL));
        let _ = child.wait().await;
    }
}

/// A fresh `PIPE_TMP`, made off the calling thread.
async fn create_scratch() -> std::io::Result<tempfile::TempDir> {
    let make = || tempfile::Builder::new().prefix("pipe-node-").tempdir();
    tokio::task::spawn_blocking(make)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

/// Reads one stream of a child into the shared sink until it closes.
fn spawn_reader<R>(mut pipe: R, stream: Stream, sink: &Arc<Mutex<ProcessSink>>) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let sink = Arc::clone(sink);
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = match pipe.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            lock_sink(&sink).take(stream, &buffer[..read]);
        }
    })
}

/// Waits for a reader to drain; a daemon that left the group may hold the pipe open, so
/// the wait is bounded.
async fn join_reader(reader: Option<JoinHandle<()>>) {
    let Some(mut reader) = reader else {
        return;
    };
    if tokio::time::timeout(Duration::from_secs(2), &mut reader)
        .await
        .is_err()
    {
        reader.abort();
    }
}

/// Where a child's output goes: both streams through one redactor (a secret split between
/// stdout and stderr is still one secret in the log), then the log file always; whole lines
/// to the console, except a captured stdout, which is a reading kept for the result.
struct ProcessSink {
    redacting: MergedStream<Stream>,
    log: LogFile,
    console: Arc<Console>,
    node: String,
    capture_stdout: bool,
    /// Console output is whole lines; per stream, the tail of a chunk waits for its newline.
    partial_lines: [Vec<u8>; 2],
    captured: Vec<u8>,
}

impl ProcessSink {
    fn take(&mut self, stream: Stream, raw: &[u8]) {
        let mut pieces = Vec::new();
        self.redacting.push(stream, raw, &mut pieces);
        self.write(pieces);
    }

    fn write(&mut self, pieces: Pieces<Stream>) {
        for (stream, safe) in pieces {
            write_log(&self.log, &safe);
            if self.capture_stdout && stream == Stream::Stdout {
                self.captured.extend_from_slice(&safe);
            } else {
                self.show_lines(stream, &safe);
            }
        }
    }

    fn show_lines(&mut self, stream: Stream, safe: &[u8]) {
        let partial = &mut self.partial_lines[stream as usize];
        match safe.iter().rposition(|b| *b == b'\n') {
            Some(last_newline) => {
                partial.extend_from_slice(&safe[..=last_newline]);
                self.console.log_lines(&self.node, stream, partial);
                partial.clear();
                partial.extend_from_slice(&safe[last_newline + 1..]);
            }
            None => partial.extend_from_slice(safe),
        }
    }

    /// Flushes the redactor's tail and unterminated last lines; returns what was captured.
    fn finish(&mut self) -> Vec<u8> {
        let mut pieces = Vec::new();
        self.redacting.finish(&mut pieces);
        self.write(pieces);
        for stream in [Stream::Stdout, Stream::Stderr] {
            let partial = std::mem::take(&mut self.partial_lines[stream as usize]);
            self.console.log_lines(&self.node, stream, &partial);
        }
        std::mem::take(&mut self.captured)
    }
}

fn lock_sink(sink: &Mutex<ProcessSink>) -> std::sync::MutexGuard<'_, ProcessSink> {
    match sink.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn open_log(path: Option<&Path>) -> LogFile {
    let open = |path: &Path| OpenOptions::new().create(true).append(true).open(path);
    // The logs directory exists after the first job; create it only when it does not.
    let opened = path.map(|path| {
        open(path).or_else(|_| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            open(path)
        })
    });
    let path_buf = path.map(Path::to_path_buf).unwrap_or_default();
    let sink = match opened {
        None => LogSink::default(),
        Some(Ok(file)) => LogSink {
            file: Some(file),
            path: path_buf,
            failure: None,
        },
        Some(Err(e)) => LogSink {
            file: None,
            failure: Some(log_failure(&path_buf, &e)),
            path: path_buf,
        },
    };
    Arc::new(Mutex::new(sink))
}

fn log_failure(path: &Path, error: &std::io::Error) -> String {
    format!("the log {} could not be written: {error}", path.display())
}

fn lock_log(log: &LogFile) -> std::sync::MutexGuard<'_, LogSink> {
    match log.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Appends to the node's log; the first failure is kept (and writing stops) so the block fails
/// with the reason instead of leaving a silently truncated log.
fn write_log(log: &LogFile, bytes: &[u8]) {
    let mut sink = lock_log(log);
    let Some(file) = sink.file.as_mut() else {
        return;
    };
    if let Err(e) = file.write_all(bytes) {
        sink.file = None;
        sink.failure = Some(log_failure(&sink.path, &e));
    }
}

/// `shell = "bash"` runs `bash -ec CMD`; a shell with arguments (`"python3 -c"`) gets the
/// command appended as its last argument.
fn shell_command(shell: Option<&str>, command: &str) -> Command {
    let words: Vec<&str> = shell.unwrap_or("/bin/sh").split_whitespace().collect();
    let (program, args) = match words.split_first() {
        Some((program, args)) => (*program, args.to_vec()),
        None => ("/bin/sh", Vec::new()),
    };
    let mut cmd = Command::new(program);
    if args.is_empty() {
        cmd.arg("-ec");
    } else {
        cmd.args(args);
    }
    cmd.arg(command);
    cmd
}

/// Starts the step: directly when it needs no shell, else (or when the direct start fails, so
/// the shell reports a missing or unrunnable program its own way) through the shell.
fn spawn(
    request: &BlockRequest,
    env: &BTreeMap<String, String>,
    command: &str,
) -> std::io::Result<Child> {
    let shell = request.shell.as_deref();
    if let Some(direct) = direct_command(shell, command, env, &request.workdir) {
        let mut cmd = Command::new(&direct.program);
        cmd.args(&direct.args);
        configure(&mut cmd, request, env);
        if let Ok(child) = cmd.env("PWD", &direct.pwd).spawn() {
            return Ok(child);
        }
    }
    let mut cmd = shell_command(shell, command);
    configure(&mut cmd, request, env);
    cmd.spawn()
}

/// The clean environment, working directory, own process group and piped output of a step.
fn configure(cmd: &mut Command, request: &BlockRequest, env: &BTreeMap<String, String>) {
    cmd.env_clear()
        .envs(env)
        .current_dir(&request.workdir)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
}

/// Sends `signal` to the group (`None`: probe whether it still exists).
fn signal_group(pgid: Pid, signal: Option<Signal>) -> bool {
    killpg(pgid, signal).is_ok()
}

/// Whether anything of the group still lives. Its exited members are reaped first: when `pipe`
/// is PID 1 (a container without init), orphaned grandchildren become its children and nothing
/// else would reap them, so their zombies would keep the group "alive" until the kill grace
/// ran out. Elsewhere they are not our children and the reaping finds nothing.
fn group_alive(pgid: Pid) -> bool {
    let group = Pid::from_raw(-pgid.as_raw());
    while let Ok(status) = waitpid(group, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
    signal_group(pgid, None)
}

fn exit_of(status: std::process::ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => Exit::Code(-1),
    }
}

/// Reads the host environment once, for `BASE_ENV` and `inherit_env`.
pub fn host_environment() -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    // Audit events and approvals name an actor: where the login shell did not set `$USER`
    // (containers, some CI agents) the account name stands in, never "unknown".
    if !env.contains_key("USER")
        && let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::getuid())
    {
        env.insert("USER".to_string(), user.name);
    }
    env
}
