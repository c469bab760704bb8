//! The console view of a run: an indicatif view on a terminal, plain `[node] line` output
//! without one, or one JSON event per line (`--log-format json`). Everything given to it has
//! already been redacted.

use crate::run::state::NodeStatus;
use crate::run::summary::plain_skip_reason;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

enum View {
    Plain,
    Json,
    Progress(ProgressView),
}

struct ProgressView {
    multi: MultiProgress,
    overall: ProgressBar,
    running: HashMap<String, ProgressBar>,
}

pub struct Console {
    view: Mutex<View>,
}

impl Console {
    /// `terminal`: whether stdout is a terminal (then text output uses the indicatif view).
    pub fn new(format: LogFormat, terminal: bool) -> Console {
        let view = match (format, terminal) {
            (LogFormat::Json, _) => View::Json,
            (LogFormat::Text, false) => View::Plain,
            (LogFormat::Text, true) => View::Progress(ProgressView::new()),
        };
        Console {
            view: Mutex::new(view),
        }
    }

    /// Plain `[node] line` output to stdout (the library default).
    pub fn plain() -> Console {
        Console {
            view: Mutex::new(View::Plain),
        }
    }

    fn with_view<R>(&self, action: impl FnOnce(&mut View) -> R) -> R {
        let mut guard = match self.view.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        action(&mut guard)
    }

    /// Runs `action` with the live view hidden and held still (an interactive prompt, for
    /// instance); other output waits until it returns.
    pub fn suspend<R>(&self, action: impl FnOnce() -> R) -> R {
        self.with_view(|view| match view {
            View::Progress(progress) => progress.multi.suspend(action),
            _ => action(),
        })
    }

    pub fn set_total(&self, total: usize) {
        self.with_view(|view| {
            if let View::Progress(progress) = view {
                progress.overall.set_length(total as u64);
            }
        });
    }

    pub fn node_started(&self, node: &str) {
        self.with_view(|view| match view {
            View::Plain => write_stdout(format!("[{node}] started\n").as_bytes()),
            View::Json => write_event("node_started", Some(node), json!({})),
            View::Progress(progress) => progress.start(node),
        });
    }

    /// A node reached a final state; `message` says why when it did not succeed.
    pub fn node_finished(&self, node: &str, status: &str, duration_ms: u64, message: Option<&str>) {
        let human = finished_line(node, status, duration_ms, message);
        self.with_view(|view| match view {
            View::Plain => write_stdout(format!("{human}\n").as_bytes()),
            View::Json => write_event(
                "node_finished",
                Some(node),
                json!({"status": status, "duration_ms": duration_ms, "message": message}),
            ),
            View::Progress(progress) => progress.finish(node, &human),
        });
    }

    /// Complete, redacted output lines of a node (each ending in `\n`, except maybe the last).
    pub fn log_lines(&self, node: &str, stream: Stream, lines: &[u8]) {
        if lines.is_empty() {
            return;
        }
        self.with_view(|view| match view {
            View::Plain => write_stdout(&prefix_lines(node, lines)),
            View::Json => {
                let mut out = Vec::with_capacity(lines.len() + 64);
                for line in split_lines(lines) {
                    let text = String::from_utf8_lossy(line);
                    let event = event_value(
                        "log",
                        Some(node),
                        json!({"stream": stream.name(), "line": text}),
                    );
                    out.extend_from_slice(event.to_string().as_bytes());
                    out.push(b'\n');
                }
                write_stdout(&out);
            }
            View::Progress(progress) => {
                for line in split_lines(lines) {
                    progress.multi.suspend(|| {
                        write_stdout(&prefix_lines(node, line));
                        write_stdout(b"\n");
                    });
                }
            }
        });
    }

    /// Anything else worth telling: warnings, retries, gate results, the summary.
    /// `event` names the JSON event; `fields` are its extra fields.
    pub fn notice(&self, event: &str, node: Option<&str>, human: &str, fields: Value) {
        self.with_view(|view| match view {
            View::Plain => write_stdout(format!("{human}\n").as_bytes()),
            View::Json => write_event(event, node, merge(fields, json!({"message": human}))),
            View::Progress(progress) => progress.multi.suspend(|| {
                write_stdout(format!("{human}\n").as_bytes());
            }),
        });
    }

    /// Human-only text (the final summary table); JSON mode prints it nowhere.
    pub fn text(&self, human: &str) {
        self.with_view(|view| match view {
            View::Plain => write_stdout(human.as_bytes()),
            View::Json => {}
            View::Progress(progress) => {
                progress.multi.suspend(|| write_stdout(human.as_bytes()));
            }
        });
    }

    pub fn is_json(&self) -> bool {
        self.with_view(|view| matches!(view, View::Json))
    }

    /// Removes the live view before the final summary.
    pub fn finish(&self) {
        self.with_view(|view| {
            if let View::Progress(progress) = view {
                for (_, bar) in progress.running.drain() {
                    bar.finish_and_clear();
                }
                progress.overall.finish_and_clear();
            }
        });
    }
}

impl ProgressView {
    fn new() -> ProgressView {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let overall = multi.add(ProgressBar::new(0));
        let style = ProgressStyle::with_template("{bar:40} {pos}/{len} nodes  {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        overall.set_style(style);
        overall.enable_steady_tick(Duration::from_millis(200));
        ProgressView {
            multi,
            overall,
            running: HashMap::new(),
        }
    }

    fn start(&mut self, node: &str) {
        let bar = self
            .multi
            .insert_before(&self.overall, ProgressBar::new_spinner());
        let style = ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_message(node.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.running.insert(node.to_string(), bar);
    }

    fn finish(&mut self, node: &str, human: &str) {
        if let Some(bar) = self.running.remove(node) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        self.overall.inc(1);
        let _ = self.multi.println(human);
    }
}

/// `[test] failed in 1.20s: why`, or for a node that never ran `[deploy] skipped (needs test,
/// which failed)`: a skip has no time worth printing.
fn finished_line(node: &str, status: &str, duration_ms: u64, message: Option<&str>) -> String {
    if status == NodeStatus::Skipped.word() {
        return match message {
            Some(message) => format!("[{node}] {status} ({})", plain_skip_reason(message)),
            None => format!("[{node}] {status}"),
        };
    }
    let seconds = duration_ms as f64 / 1000.0;
    match message {
        Some(message) => format!("[{node}] {status} in {seconds:.2}s: {message}"),
        None => format!("[{node}] {status} in {seconds:.2}s"),
    }
}

fn write_stdout(bytes: &[u8]) {
    // A closed stdout (a pipe whose reader went away) must not stop the run.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(bytes);
    let _ = stdout.flush();
}

fn event_value(event: &str, node: Option<&str>, fields: Value) -> Value {
    let mut value = json!({"ts": crate::run::state::now_rfc3339(), "event": event});
    if let Some(node) = node {
        value["node"] = json!(node);
    }
    merge(value, fields)
}

fn write_event(event: &str, node: Option<&str>, fields: Value) {
    let mut line = event_value(event, node, fields).to_string();
    line.push('\n');
    write_stdout(line.as_bytes());
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(base_map), Value::Object(extra_map)) = (base.as_object_mut(), extra) {
        for (key, value) in extra_map {
            base_map.entry(key).or_insert(value);
        }
    }
    base
}

fn split_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let trimmed = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    trimmed.split(|b| *b == b'\n')
}

/// `a\nb\n` → `[node] a\n[node] b\n`.
fn prefix_lines(node: &str, lines: &[u8]) -> Vec<u8> {
    let prefix = format!("[{node}] ");
    let mut out = Vec::with_capacity(lines.len() + 16 * prefix.len());
    for line in split_lines(lines) {
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_every_line_with_the_node() {
        assert_eq!(prefix_lines("a", b"x\ny\n"), b"[a] x\n[a] y\n");
        assert_eq!(prefix_lines("a", b"x"), b"[a] x\n");
    }

    #[test]
    fn a_skip_is_told_in_plain_words_without_a_time() {
        assert_eq!(
            finished_line("deploy", "skipped", 0, Some("skipped: `test` failed")),
            "[deploy] skipped (needs test, which failed)"
        );
        assert_eq!(
            finished_line("test", "failed", 1200, Some("exit 1")),
            "[test] failed in 1.20s: exit 1"
        );
    }
}
