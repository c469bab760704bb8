//! `pipe lsp` through the real binary and real stdio framing: diagnostics, hover, formatting,
//! navigation, completion, rename, quick fixes and incremental sync, each answered on a
//! fixture and kept as an insta snapshot; and the fuzz corpus replayed through every request.

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

/// Every request that takes a position, as the fuzz corpus replay sends them.
const POSITION_REQUESTS: &[&str] = &[
    "textDocument/hover",
    "textDocument/definition",
    "textDocument/references",
    "textDocument/completion",
    "textDocument/codeAction",
    "textDocument/prepareRename",
    "textDocument/rename",
];

/// The fuzz corpus (`tests/fuzz_corpus/pipe`) through the server: every file is opened,
/// diagnosed, asked every positional request at its start, middle and end (in UTF-16, the
/// editor default), outlined, edited in the middle and formatted; the server answers each and
/// exits cleanly, so nothing in it crashed.
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
            for method in POSITION_REQUESTS {
                let params = json!({
                    "textDocument": {"uri": uri},
                    "position": at,
                    "range": {"start": {"line": 0, "character": 0}, "end": at},
                    "newName": "renamed",
                    "context": {"includeDeclaration": true, "diagnostics": []},
                });
                let answer = client.request(method, params);
                let refused_rename =
                    method.contains("ename") && answer["error"]["code"] == json!(-32803);
                assert!(
                    answer.get("error").is_none() || refused_rename,
                    "{}: {method}: {answer}",
                    path.display()
                );
            }
        }
        let symbols = client.request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": uri}}),
        );
        assert!(
            symbols.get("error").is_none(),
            "{}: {symbols}",
            path.display()
        );
        // A ranged edit in the middle, as typing would send.
        let middle = json!({"line": lines / 2, "character": 1});
        let change = json!({"range": {"start": middle, "end": middle}, "text": "needs = [ é"});
        let document = json!({"uri": uri, "version": 2});
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": document, "contentChanges": [change]}),
        );
        client.diagnostics(&uri);
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

const FEATURES: &str = include_str!("lsp_fixtures/features.pipe");

/// A server with `text` open as `pipeline.pipe` in a fresh directory (UTF-16 positions).
struct Session {
    client: Client,
    dir: tempfile::TempDir,
    uri: String,
    text: String,
}

impl Session {
    fn open(text: &str) -> (Session, Vec<Value>) {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("file://{}/pipeline.pipe", dir.path().display());
        let mut client = Client::start();
        client.request("initialize", json!({"capabilities": {}}));
        client.notify("initialized", json!({}));
        let open = json!({"uri": uri, "languageId": "pipe", "version": 1, "text": text});
        client.notify("textDocument/didOpen", json!({"textDocument": open}));
        let diagnostics = client.diagnostics(&uri);
        let session = Session {
            client,
            dir,
            uri,
            text: text.to_string(),
        };
        (session, diagnostics)
    }

    /// The position `offset` bytes into the `nth` (0-based) occurrence of `needle`.
    fn at(&self, needle: &str, nth: usize, offset: usize) -> Value {
        let start = self
            .text
            .match_indices(needle)
            .nth(nth)
            .unwrap_or_else(|| panic!("{needle:?} #{nth} is in the text"))
            .0;
        position(&self.text, start + offset)
    }

    fn ask(&mut self, method: &str, position: Value, extra: Value) -> Value {
        let result = self.ask_raw(method, position, extra);
        self.redact(&result)
    }

    /// The result as sent, paths unredacted (for edits applied to the text).
    fn ask_raw(&mut self, method: &str, position: Value, extra: Value) -> Value {
        let mut params = json!({"textDocument": {"uri": self.uri}, "position": position});
        if let (Some(params), Some(extra)) = (params.as_object_mut(), extra.as_object()) {
            params.extend(extra.clone());
        }
        let response = self.client.request(method, params);
        assert!(response.get("error").is_none(), "{method}: {response}");
        response["result"].clone()
    }

    /// Paths that differ per run become `<dir>` (the test's) and `<std>` (bundled modules).
    fn redact(&self, value: &Value) -> Value {
        let dir = self.dir.path().display().to_string();
        let std_dir = std::env::temp_dir()
            .join(format!("pipe-lsp-std-{}", env!("CARGO_PKG_VERSION")))
            .display()
            .to_string();
        let text = value
            .to_string()
            .replace(&std_dir, "<std>")
            .replace(&dir, "<dir>");
        serde_json::from_str(&text).unwrap()
    }

    /// Replaces the whole text (a change without a range) and returns the diagnostics.
    fn replace_all(&mut self, text: &str) -> Vec<Value> {
        let changes = json!([{"text": text}]);
        self.change(changes);
        self.text = text.to_string();
        self.client.diagnostics(&self.uri)
    }

    fn change(&mut self, changes: Value) {
        let document = json!({"uri": self.uri, "version": 2});
        let params = json!({"textDocument": document, "contentChanges": changes});
        self.client.notify("textDocument/didChange", params);
    }

    fn shutdown(mut self) {
        let shutdown = self.client.request("shutdown", Value::Null);
        assert_eq!(shutdown["result"], Value::Null);
        self.client.notify("exit", Value::Null);
        assert!(self.client.child.wait().unwrap().success());
    }
}

fn position(text: &str, offset: usize) -> Value {
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1);
    json!({"line": line, "character": before[before.len() - column..].encode_utf16().count()})
}

/// `uri:line:col-line:col` for a location: snapshots read as a list of places.
fn place(location: &Value) -> String {
    let range = &location["range"];
    format!(
        "{}:{}:{}-{}:{}",
        location["uri"].as_str().unwrap_or_default(),
        range["start"]["line"],
        range["start"]["character"],
        range["end"]["line"],
        range["end"]["character"]
    )
}

fn places(result: &Value) -> Vec<String> {
    result
        .as_array()
        .map(|a| a.iter().map(place).collect())
        .unwrap_or_default()
}

fn snapshot(name: &str, value: &Value) {
    insta::with_settings!({ snapshot_path => "snapshots/lsp", prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!(name, value);
    });
}

#[test]
fn every_kind_of_name_goes_to_its_definition_and_finds_its_references() {
    let (mut session, diagnostics) = Session::open(FEATURES);
    assert_eq!(diagnostics, Vec::<Value>::new());
    let cases = [
        ("needs-like after: stage", "checks", 1, 1),
        ("after: job", "[build]", 0, 1),
        ("after: promote", "[staging]", 0, 1),
        ("job in jobs.X.outputs", "jobs.build", 0, 6),
        ("output field", "outputs.coverage", 0, 9),
        ("gate", "[ready]", 0, 1),
        ("artifact", "= bundle", 0, 3),
        ("environment in extends", "extends = base", 0, 11),
        ("promote names its environment", "promote staging", 0, 9),
        ("drill environment", "environment = staging", 0, 15),
        ("secret", "[deploy_token]", 0, 1),
        ("probe in a when condition", "when errors", 0, 6),
        ("template", "make(target", 0, 1),
        ("template parameter at the call", "target: \"dist\"", 0, 1),
        ("template parameter in its body", "{{ target }}", 0, 4),
        ("imported std template", "sqlite_backup(", 0, 3),
        ("aliased std template", "rust.clippy", 0, 6),
        ("std module in an import", "\"std/sqlite\"", 0, 3),
    ];
    let mut results = serde_json::Map::new();
    for (what, needle, nth, offset) in cases {
        let at = session.at(needle, nth, offset);
        let definition = session.ask("textDocument/definition", at.clone(), json!({}));
        let references = session.ask(
            "textDocument/references",
            at,
            json!({"context": {"includeDeclaration": true}}),
        );
        assert!(!places(&definition).is_empty(), "{what}: no definition");
        results.insert(
            what.to_string(),
            json!({"definition": places(&definition), "references": places(&references)}),
        );
    }
    snapshot("navigation", &Value::Object(results));
    session.shutdown();
}

#[test]
fn a_bundled_template_opens_read_only_with_its_source() {
    let (mut session, _) = Session::open(FEATURES);
    let at = session.at("sqlite_backup(", 0, 3);
    let response = session.client.request(
        "textDocument/definition",
        json!({"textDocument": {"uri": session.uri}, "position": at}),
    );
    let uri = response["result"][0]["uri"].as_str().unwrap();
    let path = uri.strip_prefix("file://").unwrap();
    let bundled = std::fs::read_to_string(path).unwrap();
    assert!(bundled.contains("template sqlite_backup("), "{bundled}");
    assert!(std::fs::metadata(path).unwrap().permissions().readonly());
    session.shutdown();
}

#[test]
fn the_outline_lists_the_pipeline_items() {
    let (mut session, _) = Session::open(FEATURES);
    let symbols = session.ask("textDocument/documentSymbol", Value::Null, json!({}));
    fn outline(symbols: &Value, depth: usize, out: &mut Vec<String>) {
        for symbol in symbols.as_array().unwrap() {
            let line = symbol["selectionRange"]["start"]["line"].as_u64().unwrap();
            out.push(format!(
                "{}{} ({}, kind {}) line {line}",
                "  ".repeat(depth),
                symbol["name"].as_str().unwrap(),
                symbol["detail"].as_str().unwrap(),
                symbol["kind"]
            ));
            outline(&symbol["children"], depth + 1, out);
        }
    }
    let mut lines = Vec::new();
    outline(&symbols, 0, &mut lines);
    snapshot("document_symbols", &json!(lines));
    session.shutdown();
}

#[test]
fn completion_offers_what_is_valid_at_the_cursor() {
    let edited = FEATURES
        .replace(
            "job unit { run \"make unit\" }",
            "job unit { needs = [b  run \"make unit\" }",
        )
        .replace(
            "require jobs.build.outputs.coverage",
            "require jobs.build.outputs.c",
        )
        .replace("rollback when errors", "rollback when e")
        .replace("import \"std/sqlite\"", "import \"std/sq\"")
        .replace(
            "job lint = rust.clippy()",
            "job lint = rust.clippy(flags: \"-q\", ",
        )
        .replace(
            "approval { approvers = [\"alice\"] }",
            "approval { approvers = [\"alice\"] }\n    rollout ",
        );
    // Opened as it was, then typed into: the text being typed does not parse, and the names
    // come from the last check that did.
    let (mut session, _) = Session::open(FEATURES);
    session.replace_all(&edited);
    let cases = [
        ("needs = [ (jobs, stages, gates)", "needs = [b", 0, 10),
        ("after jobs.X.outputs.", "outputs.c", 0, 8),
        ("jobs.", "jobs.build", 0, 5),
        ("jobs.X.", "jobs.build.", 0, 11),
        ("env. in a promote", "env.url", 0, 4),
        ("artifact.", "artifact.path", 0, 9),
        ("previous.", "previous.path", 0, 9),
        ("names in an interpolation", "${{ run.id", 0, 4),
        ("run. in an interpolation", "${{ run.id", 0, 8),
        ("keys of a job", "    produces", 0, 4),
        ("keys of a watch", "      probe errors", 0, 6),
        ("keys of a promote", "    artifact = bundle", 0, 4),
        ("templates after job NAME =", "= rust.clippy", 0, 2),
        ("the template's parameters not given yet", "\"-q\", ", 0, 6),
        ("std modules in an import", "std/sq", 0, 4),
        ("probes in rollback when", "when e", 0, 6),
        ("rollout kinds", "rollout ", 0, 8),
        ("duration values", "rto = 30s", 0, 6),
        ("artifacts", "= bundle", 0, 2),
        ("environments", "environment = staging", 0, 14),
    ];
    let mut results = serde_json::Map::new();
    for (what, needle, nth, offset) in cases {
        let at = session.at(needle, nth, offset);
        let completion = session.ask("textDocument/completion", at, json!({}));
        let items: Vec<String> = completion["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                let insert = item.get("insertText").and_then(Value::as_str);
                match insert {
                    Some(insert) => format!("{} => {insert}", item["label"].as_str().unwrap()),
                    None => format!(
                        "{} ({})",
                        item["label"].as_str().unwrap(),
                        item["detail"].as_str().unwrap_or_default()
                    ),
                }
            })
            .collect();
        assert!(!items.is_empty(), "{what}: nothing offered");
        results.insert(what.to_string(), json!(items));
    }
    snapshot("completion", &Value::Object(results));
    session.shutdown();
}

#[test]
fn hover_explains_names_templates_keys_and_diagnostics() {
    let with_typo = FEATURES.replace("after = [checks, lint]", "after = [chekcs, lint]");
    let (mut session, diagnostics) = Session::open(&with_typo);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    let cases = [
        ("a job where it is used", "[build]", 0, 2),
        ("a local template and its doc comment", "make(target", 0, 1),
        ("a std template's signature and doc", "sqlite_backup(", 0, 1),
        ("a template parameter", "target: \"dist\"", 0, 1),
        ("a probe", "when errors", 0, 6),
        ("an output", "outputs.coverage", 0, 9),
        ("an attribute key", "    produces", 0, 5),
        ("a block keyword", "    smoke", 0, 5),
        ("a diagnostic", "chekcs", 0, 2),
    ];
    let mut results = serde_json::Map::new();
    for (what, needle, nth, offset) in cases {
        let at = session.at(needle, nth, offset);
        let hover = session.ask("textDocument/hover", at, json!({}));
        let shown = hover["contents"]["value"].as_str().unwrap_or_default();
        assert!(!shown.is_empty(), "{what}: no hover");
        // The explanation of a code is long and has its own tests: keep its first lines.
        let shown: Vec<&str> = shown.lines().take(12).collect();
        results.insert(what.to_string(), json!(shown));
    }
    snapshot("hover", &Value::Object(results));
    session.shutdown();
}

/// Applies a workspace edit's changes for `uri` to `text` (edits do not overlap).
fn apply(text: &str, edit: &Value, uri: &str) -> String {
    let mut edits: Vec<&Value> = edit["changes"][uri].as_array().unwrap().iter().collect();
    let offset = |p: &Value| {
        let line = p["line"].as_u64().unwrap() as usize;
        let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
        start + p["character"].as_u64().unwrap() as usize
    };
    edits.sort_by_key(|e| std::cmp::Reverse(offset(&e["range"]["start"])));
    let mut out = text.to_string();
    for e in edits {
        let (start, end) = (offset(&e["range"]["start"]), offset(&e["range"]["end"]));
        out.replace_range(start..end, e["newText"].as_str().unwrap());
    }
    out
}

#[test]
fn quick_fixes_apply_suggestions_add_a_rollback_and_remove_unused_items() {
    let broken = FEATURES
        .replace("after = [checks, lint]", "after = [chekcs, lint]")
        .replace("jobs.build.outputs.coverage", "jobs.build.outputs.covrage")
        .replace(
            "    rollback { run \"./deploy.sh ${{ previous.path }} ${{ env.url }}\" }\n",
            "",
        )
        .replace(
            "  secret deploy_token",
            "  secret unused_token { from = env(\"X\") }\n  secret deploy_token",
        );
    let (mut session, diagnostics) = Session::open(&broken);
    let mut codes: Vec<&str> = diagnostics
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    codes.sort_unstable();
    assert_eq!(
        codes,
        ["E0101", "E0101", "E0401", "W0101"],
        "{diagnostics:?}"
    );
    let mut fixed = broken.clone();
    let mut titles = Vec::new();
    let mut pending = diagnostics;
    // One fix at a time, on the text the server has: each fix moves the lines below it.
    while let Some(diagnostic) = pending.first() {
        let params = json!({
            "textDocument": {"uri": session.uri},
            "range": diagnostic["range"],
            "context": {"diagnostics": [diagnostic]},
        });
        let actions = session.client.request("textDocument/codeAction", params);
        let action = &actions["result"][0];
        let title = action["title"]
            .as_str()
            .unwrap_or_else(|| panic!("{diagnostic}: {actions}"));
        titles.push(title.to_string());
        fixed = apply(&fixed, &action["edit"], &session.uri);
        let after = session.replace_all(&fixed);
        assert!(after.len() < pending.len(), "{title}: {after:?}");
        pending = after;
    }
    assert_eq!(fixed, FEATURES, "every fix restored what the mistake broke");
    titles.sort();
    snapshot(
        "code_actions",
        &json!({"titles": titles, "fixed": fixed.lines().collect::<Vec<_>>()}),
    );
    session.shutdown();
}

#[test]
fn rename_changes_every_use_and_refuses_taken_or_invalid_names() {
    let (mut session, _) = Session::open(FEATURES);
    let mut results = serde_json::Map::new();
    for (what, needle, offset, new_name) in [
        ("job", "[build]", 1, "compile"),
        (
            "environment with its promotes",
            "environment = staging",
            15,
            "preprod",
        ),
        ("artifact", "= bundle", 3, "tarball"),
        ("secret", "[deploy_token]", 1, "ship_token"),
        ("gate", "[ready]", 1, "approved"),
    ] {
        let at = session.at(needle, 0, offset);
        let edit = session.ask_raw("textDocument/rename", at, json!({"newName": new_name}));
        let renamed = apply(&session.text, &edit, &session.uri);
        let diagnostics = session.replace_all(&renamed);
        assert_eq!(diagnostics, Vec::<Value>::new(), "{what}: {renamed}");
        let count = edit["changes"][&session.uri].as_array().unwrap().len();
        results.insert(what.to_string(), json!(count));
    }
    let refusals = [
        ("taken by a job", "lint]", "unit"),
        ("taken by a promote", "lint]", "production"),
        ("not an identifier", "lint]", "9lives"),
        ("a word of the language", "lint]", "jobs"),
        ("a std template", "sqlite_backup(", "backup"),
    ];
    for (what, needle, new_name) in refusals {
        let at = session.at(needle, 0, 2);
        let params =
            json!({"textDocument": {"uri": session.uri}, "position": at, "newName": new_name});
        let response = session.client.request("textDocument/rename", params);
        let message = response["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {response}"));
        results.insert(format!("refused: {what}"), json!(message));
    }
    snapshot("rename", &Value::Object(results));
    session.shutdown();
}

/// Typing `needs = [` breaks the parse: the syntax error is shown beside the semantic
/// diagnostics of the last good text, moved along by the ranged edits since.
#[test]
fn ranged_edits_keep_the_last_good_diagnostics_while_the_text_does_not_parse() {
    let text = FEATURES.replace("protected = true", "protected = true  colour = blu");
    let with_unused = text.replace(
        "  secret deploy_token",
        "  secret spare { from = env(\"X\") }\n  secret deploy_token",
    );
    let (mut session, diagnostics) = Session::open(&with_unused);
    assert_eq!(diagnostics.len(), 2, "{diagnostics:?}");
    let unused_line = diagnostics[0]["range"]["start"]["line"].as_u64().unwrap();
    // Insert a new line above everything the diagnostics point at, then start a list.
    let at = session.at("  artifact bundle", 0, 0);
    let insert = "  job extra { needs = [\n";
    let range = json!({"start": at, "end": at});
    session.change(json!([{"range": range, "text": insert}]));
    let while_typing = session.client.diagnostics(&session.uri);
    let codes: Vec<&str> = while_typing
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"E0001"), "{while_typing:?}");
    assert_eq!(
        codes.len(),
        3,
        "the syntax error and both kept: {while_typing:?}"
    );
    let kept = while_typing
        .iter()
        .find(|d| d["code"] == diagnostics[0]["code"])
        .unwrap();
    assert_eq!(
        kept["range"]["start"]["line"].as_u64().unwrap(),
        unused_line,
        "above the edit: unmoved"
    );
    let below = while_typing
        .iter()
        .find(|d| d["code"] == diagnostics[1]["code"] && d["code"] != "E0001")
        .unwrap();
    let original_line = diagnostics[1]["range"]["start"]["line"].as_u64().unwrap();
    assert_eq!(
        below["range"]["start"]["line"].as_u64().unwrap(),
        original_line + 1,
        "below the edit: moved down by the inserted line"
    );
    let summary: Vec<String> = while_typing
        .iter()
        .map(|d| {
            let range = json!({"uri": "", "range": d["range"]});
            format!("{} {}", d["code"].as_str().unwrap(), place(&range))
        })
        .collect();
    snapshot("diagnostics_while_typing", &json!(summary));
    // Finish the line with a ranged edit in UTF-16 columns; the text parses again.
    let line = at["line"].as_u64().unwrap();
    let end = json!({"line": line, "character": insert.len() - 1});
    session.change(json!([{"range": {"start": end, "end": end}, "text": "build] run \"x\" }"}]));
    let recovered = session.client.diagnostics(&session.uri);
    let mut codes: Vec<&str> = recovered
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    codes.sort_unstable();
    assert_eq!(codes.len(), 2, "{recovered:?}");
    assert!(!codes.contains(&"E0001"), "{recovered:?}");
    session.shutdown();
}
