//! `pipe lsp` through the real binary and real stdio framing: an editor opens a file with a
//! mistake, gets the checker's diagnostic, hovers it for the explanation, fixes the file and
//! sees the diagnostic cleared, asks for formatting, and shuts the server down.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Client {
    child: Child,
    stdin: ChildStdin,
    messages: mpsc::Receiver<Value>,
    next_id: i64,
}

impl Client {
    fn start() -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pipe"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, messages) = mpsc::channel();
        std::thread::spawn(move || read_messages(stdout, &sender));
        Client {
            child,
            stdin,
            messages,
            next_id: 0,
        }
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and returns its response (skipping notifications in between).
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let message = self.receive();
            if message["id"] == id {
                return message;
            }
        }
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        loop {
            let message = self.receive();
            if message["method"] == "textDocument/publishDiagnostics"
                && message["params"]["uri"] == uri
            {
                return message["params"]["diagnostics"].as_array().unwrap().clone();
            }
        }
    }

    fn receive(&self) -> Value {
        self.messages
            .recv_timeout(Duration::from_secs(20))
            .expect("the server answered")
    }
}

fn read_messages(stdout: ChildStdout, sender: &mpsc::Sender<Value>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim();
            if header.is_empty() {
                break;
            }
            if let Some(value) = header.strip_prefix("Content-Length: ") {
                length = value.parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        if sender.send(serde_json::from_slice(&body).unwrap()).is_err() {
            return;
        }
    }
}

const WRONG: &str = "pipeline demo {\n  job build { run \"make\" }\n  job test { needs = [biuld]  run \"make test\" }\n}\n";
const FIXED: &str = "pipeline demo {\n  job build { run \"make\" }\n    job test { needs = [build]  run \"make test\" }\n}\n";

#[test]
fn an_editor_sees_diagnostics_hovers_them_and_formats_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("file://{}/pipeline.pipe", dir.path().display());
    let mut client = Client::start();
    let initialized = client.request(
        "initialize",
        json!({"capabilities": {"general": {"positionEncodings": ["utf-8", "utf-16"]}}}),
    );
    let capabilities = &initialized["result"]["capabilities"];
    assert_eq!(capabilities["positionEncoding"], "utf-8");
    assert_eq!(capabilities["documentFormattingProvider"], true);
    client.notify("initialized", json!({}));

    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "pipe", "version": 1, "text": WRONG}}),
    );
    let diagnostics = client.diagnostics(&uri);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    let diagnostic = &diagnostics[0];
    assert_eq!(diagnostic["code"], "E0101");
    assert_eq!(diagnostic["severity"], 1);
    let start = WRONG.lines().nth(2).unwrap().find("biuld").unwrap();
    assert_eq!(
        diagnostic["range"]["start"],
        json!({"line": 2, "character": start})
    );
    assert!(
        diagnostic["message"]
            .as_str()
            .unwrap()
            .contains("help: did you mean `build`?"),
        "{diagnostic}"
    );

    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": 2, "character": start + 1}}),
    );
    let shown = hover["result"]["contents"]["value"].as_str().unwrap();
    assert!(shown.starts_with("**E0101**"), "{shown}");
    assert!(shown.contains("Fixed"), "the explanation follows: {shown}");

    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": FIXED}]}),
    );
    assert_eq!(client.diagnostics(&uri), Vec::<Value>::new());

    let edits = client.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let edit = &edits["result"][0];
    assert_eq!(edit["newText"], FIXED.replace("    job test", "  job test"));
    assert_eq!(edit["range"]["end"], json!({"line": 4, "character": 0}));

    let shutdown = client.request("shutdown", Value::Null);
    assert_eq!(shutdown["result"], Value::Null);
    client.notify("exit", Value::Null);
    let status = client.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// The fuzz corpus (`tests/fuzz_corpus/pipe`) through the server: every file is opened,
/// diagnosed, hovered at its start, middle and end (in UTF-16, the editor default), and
/// formatted; the server answers each and exits cleanly, so nothing in it crashed.
#[test]
fn the_fuzz_corpus_never_crashes_the_server() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus/pipe");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let mut client = Client::start();
    client.request("initialize", json!({"capabilities": {}}));
    client.notify("initialized", json!({}));
    for (n, path) in files.iter().enumerate() {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
        let uri = format!("file://{}/corpus{n}.pipe", dir.path().display());
        let open = json!({"uri": uri, "languageId": "pipe", "version": 1, "text": text});
        client.notify("textDocument/didOpen", json!({"textDocument": open}));
        client.diagnostics(&uri);
        let lines = text.lines().count();
        for (line, character) in [
            (0, 0),
            (lines / 2, 3),
            (lines, 70_000),
            (u32::MAX as usize, 9),
        ] {
            let at = json!({"line": line, "character": character});
            let hover = client.request(
                "textDocument/hover",
                json!({"textDocument": {"uri": uri}, "position": at}),
            );
            assert!(hover.get("error").is_none(), "{}: {hover}", path.display());
        }
        let options = json!({"tabSize": 2, "insertSpaces": true});
        let edits = client.request(
            "textDocument/formatting",
            json!({"textDocument": {"uri": uri}, "options": options}),
        );
        assert!(edits.get("error").is_none(), "{}: {edits}", path.display());
        client.notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": uri}}),
        );
    }
    assert_eq!(
        client.request("shutdown", Value::Null)["result"],
        Value::Null
    );
    client.notify("exit", Value::Null);
    assert!(client.child.wait().unwrap().success());
}
