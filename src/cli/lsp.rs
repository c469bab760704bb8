//! `pipe lsp`: a language server on stdio. Editors get the checker's diagnostics as the file
//! is typed (with help lines and secondary labels), `pipe explain` on hover, and `pipe fmt`.

use super::exit;
use crate::compilation::{FileLoader, MAX_RENDERED, compile_source};
use crate::diagnostics::{Diagnostic, FileId, Severity, SourceMap, Span, explanation};
use crate::syntax::format::format;
use lsp_server::{Connection, Message, Notification, Request, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How the client counts columns: LSP's default is UTF-16 code units; UTF-8 when offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Utf16,
}

pub fn lsp() -> i32 {
    let (connection, io_threads) = Connection::stdio();
    let served = serve(&connection);
    drop(connection);
    let joined = io_threads.join();
    match (served, joined) {
        (Ok(()), Ok(())) => exit::SUCCESS,
        (Err(error), _) => {
            eprintln!("error: language server: {error}");
            exit::FAILED
        }
        (_, Err(error)) => {
            eprintln!("error: language server I/O: {error}");
            exit::FAILED
        }
    }
}

/// The handshake, then messages until `shutdown`.
fn serve(connection: &Connection) -> Result<(), String> {
    let (id, params) = connection.initialize_start().map_err(|e| e.to_string())?;
    let encoding = negotiate(&params);
    let capabilities = json!({
        "positionEncoding": if encoding == Encoding::Utf8 { "utf-8" } else { "utf-16" },
        "textDocumentSync": 1,
        "hoverProvider": true,
        "documentFormattingProvider": true,
    });
    let result = json!({"capabilities": capabilities, "serverInfo": {"name": "pipe"}});
    connection
        .initialize_finish(id, result)
        .map_err(|e| e.to_string())?;
    let mut server = Server {
        connection,
        encoding,
        documents: HashMap::new(),
        entry_diagnostics: HashMap::new(),
        published: BTreeSet::new(),
    };
    for message in &connection.receiver {
        match message {
            Message::Request(request) => {
                if connection
                    .handle_shutdown(&request)
                    .map_err(|e| e.to_string())?
                {
                    return Ok(());
                }
                server.request(request);
            }
            Message::Notification(notification) => server.notification(&notification),
            Message::Response(_) => {}
        }
    }
    Ok(())
}

fn negotiate(params: &Value) -> Encoding {
    let offered = params
        .pointer("/capabilities/general/positionEncodings")
        .and_then(Value::as_array);
    match offered {
        Some(list) if list.iter().any(|e| e == "utf-8") => Encoding::Utf8,
        _ => Encoding::Utf16,
    }
}

struct Server<'c> {
    connection: &'c Connection,
    encoding: Encoding,
    /// Open documents by URI.
    documents: HashMap<String, String>,
    /// The diagnostics of each open document's last check that point into it, for hover.
    entry_diagnostics: HashMap<String, Vec<Diagnostic>>,
    /// URIs that were last sent a non-empty diagnostic list, so they can be cleared.
    published: BTreeSet<String>,
}

impl Server<'_> {
    fn notification(&mut self, notification: &Notification) {
        let params = &notification.params;
        let uri = params
            .pointer("/textDocument/uri")
            .and_then(Value::as_str)
            .map(str::to_string);
        let Some(uri) = uri else { return };
        match notification.method.as_str() {
            "textDocument/didOpen" => {
                let text = params.pointer("/textDocument/text").and_then(Value::as_str);
                self.documents
                    .insert(uri.clone(), text.unwrap_or_default().to_string());
            }
            "textDocument/didChange" => {
                // Full sync: the last change holds the whole text.
                let changes = params.get("contentChanges").and_then(Value::as_array);
                let text = changes
                    .and_then(|c| c.last())
                    .and_then(|c| c.get("text"))
                    .and_then(Value::as_str);
                if let Some(text) = text {
                    self.documents.insert(uri.clone(), text.to_string());
                }
            }
            "textDocument/didClose" => {
                self.documents.remove(&uri);
                self.entry_diagnostics.remove(&uri);
                self.publish(BTreeMap::from([(uri, Vec::new())]));
                return;
            }
            _ => return,
        }
        self.check(&uri);
    }

    fn request(&mut self, request: Request) {
        let uri = request
            .params
            .pointer("/textDocument/uri")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let text = self.documents.get(uri).map(String::as_str);
        let result = match (request.method.as_str(), text) {
            ("textDocument/formatting", Some(text)) => self.formatting(text),
            ("textDocument/hover", Some(text)) => self.hover(uri, text, &request.params),
            ("textDocument/formatting" | "textDocument/hover", None) => Value::Null,
            (method, _) => {
                let message = format!("pipe lsp does not handle {method}");
                let error = Response::new_err(request.id, -32601, message);
                let _ = self.connection.sender.send(error.into());
                return;
            }
        };
        let _ = self
            .connection
            .sender
            .send(Response::new_ok(request.id, result).into());
    }

    /// Compiles the document and publishes its diagnostics, per file they point into.
    fn check(&mut self, uri: &str) {
        let Some(text) = self.documents.get(uri) else {
            return;
        };
        let compilation = compile_source(&path_of(uri), text, &FileLoader);
        let mut by_file: BTreeMap<String, Vec<Value>> = BTreeMap::from([(uri.to_string(), vec![])]);
        // Each position costs a scan of the text: a bounded number keeps a file of 100,000
        // errors from stalling the editor (the terminal report stops at the same count).
        for diagnostic in compilation.diagnostics.iter().take(MAX_RENDERED) {
            let file = primary(diagnostic).map_or(0, |span| span.file);
            let target = uri_of(file, uri, &compilation.sources);
            let converted = self.diagnostic(diagnostic, uri, &compilation.sources);
            by_file.entry(target).or_default().push(converted);
        }
        self.publish(by_file);
        let own = compilation.diagnostics.into_iter();
        let own = own.filter(|d| primary(d).is_some_and(|span| span.file == 0));
        self.entry_diagnostics
            .insert(uri.to_string(), own.collect());
    }

    fn publish(&mut self, by_file: BTreeMap<String, Vec<Value>>) {
        let stale: Vec<String> = self
            .published
            .iter()
            .filter(|uri| !by_file.contains_key(*uri))
            .cloned()
            .collect();
        let cleared = stale.into_iter().map(|uri| (uri, Vec::new()));
        for (uri, diagnostics) in by_file.into_iter().chain(cleared) {
            if diagnostics.is_empty() {
                self.published.remove(&uri);
            } else {
                self.published.insert(uri.clone());
            }
            let params = json!({"uri": uri, "diagnostics": diagnostics});
            let notification = Notification::new("textDocument/publishDiagnostics".into(), params);
            let _ = self.connection.sender.send(notification.into());
        }
    }

    /// One diagnostic in LSP form: the primary label's range, the message with its label and
    /// help, secondary labels as related information.
    fn diagnostic(&self, diagnostic: &Diagnostic, uri: &str, sources: &SourceMap) -> Value {
        let span = primary(diagnostic).unwrap_or(Span::new(0, 0, 0));
        let mut message = diagnostic.message.clone();
        if let Some(label) = diagnostic
            .labels
            .iter()
            .find(|l| l.primary && !l.text.is_empty())
        {
            message.push_str(&format!(" ({})", label.text));
        }
        if let Some(help) = &diagnostic.help {
            message.push_str(&format!("\nhelp: {help}"));
        }
        let related: Vec<Value> = diagnostic
            .labels
            .iter()
            .filter(|l| !l.primary)
            .map(|l| {
                json!({
                    "location": {"uri": uri_of(l.span.file, uri, sources), "range": self.range(sources, l.span)},
                    "message": l.text,
                })
            })
            .collect();
        json!({
            "range": self.range(sources, span),
            "severity": if diagnostic.severity == Severity::Error { 1 } else { 2 },
            "code": diagnostic.code,
            "source": "pipe",
            "message": message,
            "relatedInformation": related,
        })
    }

    fn range(&self, sources: &SourceMap, span: Span) -> Value {
        let text = sources.text(span.file);
        json!({
            "start": position(text, span.start as usize, self.encoding),
            "end": position(text, span.end as usize, self.encoding),
        })
    }

    /// The whole document replaced by its formatted text; no edits when it is formatted or
    /// does not parse (the diagnostics say why).
    fn formatting(&self, text: &str) -> Value {
        match format(0, text) {
            Ok(formatted) if formatted != text => json!([{
                "range": {"start": {"line": 0, "character": 0}, "end": position(text, text.len(), self.encoding)},
                "newText": formatted,
            }]),
            _ => json!([]),
        }
    }

    /// Over a diagnostic's primary range: the diagnostic and its `pipe explain` text, from the
    /// document's last check (every change is checked, so it is current).
    fn hover(&self, uri: &str, text: &str, params: &Value) -> Value {
        let line = params.pointer("/position/line").and_then(Value::as_u64);
        let character = params
            .pointer("/position/character")
            .and_then(Value::as_u64);
        let (Some(line), Some(character)) = (line, character) else {
            return Value::Null;
        };
        let offset = offset_of(text, line as usize, character as usize, self.encoding);
        let checked = self
            .entry_diagnostics
            .get(uri)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let hit = checked.iter().find(|d| {
            primary(d).is_some_and(|s| (s.start as usize..=s.end as usize).contains(&offset))
        });
        let Some(diagnostic) = hit else {
            return Value::Null;
        };
        let mut markdown = format!("**{}**: {}", diagnostic.code, diagnostic.message);
        if let Some(explained) = explanation(diagnostic.code) {
            markdown.push_str("\n\n---\n\n");
            markdown.push_str(explained);
        }
        json!({"contents": {"kind": "markdown", "value": markdown}})
    }
}

fn primary(diagnostic: &Diagnostic) -> Option<Span> {
    diagnostic.labels.iter().find(|l| l.primary).map(|l| l.span)
}

/// The URI of a source file: the open document for the entry file, `file://` for imports.
fn uri_of(file: FileId, entry_uri: &str, sources: &SourceMap) -> String {
    if file == 0 {
        return entry_uri.to_string();
    }
    let name = sources.name(file);
    if name.starts_with("std/") {
        return format!("pipe-std:///{name}");
    }
    let path = std::path::absolute(name).unwrap_or_else(|_| name.into());
    format!("file://{}", path.display())
}

/// `file:///work/app/pipeline.pipe` → `/work/app/pipeline.pipe` (percent escapes decoded), so
/// relative imports resolve beside the file; any other URI is used as a name.
fn path_of(uri: &str) -> String {
    let Some(path) = uri.strip_prefix("file://") else {
        return uri.to_string();
    };
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = (bytes[at] == b'%')
            .then(|| path.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                at += 3;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The LSP position of a byte offset: 0-based line, column in the client's units.
fn position(text: &str, offset: usize, encoding: Encoding) -> Value {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let segment = &before[line_start..];
    let character = match encoding {
        Encoding::Utf8 => segment.len(),
        Encoding::Utf16 => segment.encode_utf16().count(),
    };
    json!({"line": line, "character": character})
}

/// The byte offset of an LSP position (clamped to the line's end).
fn offset_of(text: &str, line: usize, character: usize, encoding: Encoding) -> usize {
    let line_start = if line == 0 {
        0
    } else {
        text.match_indices('\n')
            .nth(line - 1)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    let rest = &text[line_start..];
    let line_text = rest.split('\n').next().unwrap_or_default();
    let mut units = 0;
    for (index, ch) in line_text.char_indices() {
        if units >= character {
            return line_start + index;
        }
        units += match encoding {
            Encoding::Utf8 => ch.len_utf8(),
            Encoding::Utf16 => ch.len_utf16(),
        };
    }
    line_start + line_text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units_unless_utf8_was_agreed() {
        let text = "a\nhé𝄞x";
        let x = text.find('x').unwrap();
        assert_eq!(
            position(text, x, Encoding::Utf16),
            json!({"line": 1, "character": 4})
        );
        assert_eq!(
            position(text, x, Encoding::Utf8),
            json!({"line": 1, "character": 7})
        );
        assert_eq!(offset_of(text, 1, 4, Encoding::Utf16), x);
        assert_eq!(offset_of(text, 1, 7, Encoding::Utf8), x);
        assert_eq!(offset_of(text, 1, 99, Encoding::Utf8), text.len());
    }

    #[test]
    fn file_uris_become_paths() {
        assert_eq!(
            path_of("file:///work/my%20app/pipeline.pipe"),
            "/work/my app/pipeline.pipe"
        );
        assert_eq!(path_of("untitled:Untitled-1"), "untitled:Untitled-1");
    }
}
