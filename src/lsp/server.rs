//! The language server's message loop: the handshake, open documents kept in sync by ranged
//! edits, diagnostics published on every change, and each request routed to its feature.

use super::analysis::{Analysis, is_syntax_error};
use super::locations::Locator;
use super::text::{Edit, Encoding, LineIndex, apply_change, shift};
use super::{actions, completion, hover, navigation, rename};
use crate::compilation::MAX_RENDERED;
use crate::diagnostics::{Diagnostic, Severity, Span};
use crate::syntax::format::format;
use lsp_server::{Connection, Message, Notification, ProtocolError, Request, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// LSP's `RequestFailed`: the request was understood and refused (a rename to a taken name).
const REQUEST_FAILED: i32 = -32803;
const METHOD_NOT_FOUND: i32 = -32601;

/// The handshake, then messages until `shutdown`.
pub fn serve(connection: &Connection) -> Result<(), ProtocolError> {
    let (id, params) = connection.initialize_start()?;
    let encoding = negotiate(&params);
    let result = json!({"capabilities": capabilities(encoding), "serverInfo": {"name": "pipe"}});
    connection.initialize_finish(id, result)?;
    let mut server = Server {
        connection,
        encoding,
        documents: HashMap::new(),
        published: BTreeSet::new(),
    };
    for message in &connection.receiver {
        match message {
            Message::Request(request) => {
                if connection.handle_shutdown(&request)? {
                    return Ok(());
                }
                server.request(request);
            }
            Message::Notification(notification) => {
                // As for requests: a bug while checking one text must not end the session.
                let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    server.notification(&notification)
                }));
                if handled.is_err() {
                    server.documents.remove(notification_uri(&notification));
                }
            }
            Message::Response(_) => {}
        }
    }
    Ok(())
}

fn capabilities(encoding: Encoding) -> Value {
    json!({
        "positionEncoding": if encoding == Encoding::Utf8 { "utf-8" } else { "utf-16" },
        "textDocumentSync": {"openClose": true, "change": 2},
        "hoverProvider": true,
        "definitionProvider": true,
        "referencesProvider": true,
        "documentSymbolProvider": true,
        "completionProvider": {"triggerCharacters": [".", "[", "\"", "/", " "]},
        "codeActionProvider": {"codeActionKinds": ["quickfix"]},
        "renameProvider": {"prepareProvider": true},
        "documentFormattingProvider": true,
    })
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

/// One open document and what the server knows about it.
struct Document {
    text: String,
    current: Analysis,
    /// While the text does not parse: the last check that did, for the names completion offers.
    last_good: Option<Analysis>,
    /// The diagnostics last published for this document (with the last good semantic ones
    /// kept, moved along by the edits since, while the text has a syntax error).
    shown: Vec<Diagnostic>,
}

impl Document {
    /// The analysis names are read from: the current one, or the last that parsed.
    fn names(&self) -> &Analysis {
        match &self.last_good {
            Some(good) if self.current.is_broken() => good,
            _ => &self.current,
        }
    }
}

struct Server<'c> {
    connection: &'c Connection,
    encoding: Encoding,
    documents: HashMap<String, Document>,
    /// URIs that were last sent a non-empty diagnostic list, so they can be cleared.
    published: BTreeSet<String>,
}

fn notification_uri(notification: &Notification) -> &str {
    let uri = notification.params.pointer("/textDocument/uri");
    uri.and_then(Value::as_str).unwrap_or_default()
}

impl Server<'_> {
    fn notification(&mut self, notification: &Notification) {
        let params = &notification.params;
        let uri = notification_uri(notification);
        if uri.is_empty() {
            return;
        }
        let uri = uri.to_string();
        match notification.method.as_str() {
            "textDocument/didOpen" => {
                let text = params.pointer("/textDocument/text").and_then(Value::as_str);
                self.open(&uri, text.unwrap_or_default().to_string());
            }
            "textDocument/didChange" => {
                let changes = params.get("contentChanges").and_then(Value::as_array);
                self.change(&uri, changes.map(Vec::as_slice).unwrap_or_default());
            }
            "textDocument/didClose" => {
                self.documents.remove(&uri);
                self.publish(&uri, BTreeMap::from([(uri.clone(), Vec::new())]));
            }
            _ => {}
        }
    }

    fn open(&mut self, uri: &str, text: String) {
        let current = Analysis::new(&path_of(uri), &text);
        let shown = current.diagnostics.clone();
        let document = Document {
            text,
            current,
            last_good: None,
            shown,
        };
        self.documents.insert(uri.to_string(), document);
        self.publish_document(uri);
    }

    /// Applies the edits in order, moves the kept diagnostics along, and checks the result.
    fn change(&mut self, uri: &str, changes: &[Value]) {
        let encoding = self.encoding;
        let Some(document) = self.documents.get_mut(uri) else {
            return;
        };
        let mut kept: Vec<Diagnostic> = document
            .shown
            .iter()
            .filter(|d| !is_syntax_error(d))
            .cloned()
            .collect();
        for change in changes {
            if let Some(edit) = apply_change(&mut document.text, change, encoding) {
                kept = kept.into_iter().filter_map(|d| moved(d, edit)).collect();
            }
        }
        let analysis = Analysis::new(&path_of(uri), &document.text);
        if analysis.is_broken() {
            let mut shown = analysis.diagnostics.clone();
            shown.extend(kept);
            document.shown = shown;
            let previous = std::mem::replace(&mut document.current, analysis);
            if !previous.is_broken() {
                document.last_good = Some(previous);
            }
        } else {
            document.shown = analysis.diagnostics.clone();
            document.current = analysis;
            document.last_good = None;
        }
        self.publish_document(uri);
    }

    fn publish_document(&mut self, uri: &str) {
        let Some(document) = self.documents.get(uri) else {
            return;
        };
        let locator = Locator {
            entry_uri: uri,
            sources: &document.current.sources,
            encoding: self.encoding,
        };
        let mut by_file: BTreeMap<String, Vec<Value>> = BTreeMap::from([(uri.to_string(), vec![])]);
        // Each position costs a scan of a line: a bounded number keeps a file of 100,000 errors
        // from stalling the editor (the terminal report stops at the same count).
        for diagnostic in document.shown.iter().take(MAX_RENDERED) {
            let span = diagnostic.main_span().unwrap_or_default();
            let converted = lsp_diagnostic(diagnostic, &locator);
            by_file
                .entry(locator.uri(span.file))
                .or_default()
                .push(converted);
        }
        self.publish(uri, by_file);
    }

    /// Sends each file's list, and an empty one to files `entry` no longer has problems in.
    fn publish(&mut self, entry: &str, by_file: BTreeMap<String, Vec<Value>>) {
        let stale: Vec<String> = self
            .published
            .iter()
            .filter(|uri| !by_file.contains_key(*uri) && uri.as_str() != entry)
            .filter(|uri| !self.documents.contains_key(*uri))
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

    fn request(&mut self, request: Request) {
        let id = request.id.clone();
        // A bug in one feature must cost that answer, never the editor's server.
        let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.answer(&request.method, &request.params)
        }));
        let response = match answered {
            Ok(Ok(result)) => Response::new_ok(id, result),
            Ok(Err((code, message))) => Response::new_err(id, code, message),
            Err(_) => {
                Response::new_err(id, REQUEST_FAILED, "pipe lsp failed on this request".into())
            }
        };
        let _ = self.connection.sender.send(response.into());
    }

    fn answer(&self, method: &str, params: &Value) -> Result<Value, (i32, String)> {
        let uri = params
            .pointer("/textDocument/uri")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(document) = self.documents.get(uri) else {
            return match method {
                "textDocument/completion" => Ok(json!({"isIncomplete": false, "items": []})),
                m if m.starts_with("textDocument/") => Ok(Value::Null),
                _ => Err((
                    METHOD_NOT_FOUND,
                    format!("pipe lsp does not handle {method}"),
                )),
            };
        };
        let index = LineIndex::new(&document.text, self.encoding);
        let offset = params
            .get("position")
            .and_then(|p| index.offset_of(p))
            .unwrap_or(0);
        let analysis = &document.current;
        let locator = Locator {
            entry_uri: uri,
            sources: &analysis.sources,
            encoding: self.encoding,
        };
        let refused = |message: String| (REQUEST_FAILED, message);
        Ok(match method {
            "textDocument/formatting" => self.formatting(&document.text),
            "textDocument/hover" => hover::hover(analysis, &document.shown, offset),
            "textDocument/definition" => navigation::definition(analysis, &locator, offset),
            "textDocument/references" => {
                let declaration = params.pointer("/context/includeDeclaration");
                let declaration = declaration.and_then(Value::as_bool).unwrap_or(true);
                navigation::references(analysis, &locator, offset, declaration)
            }
            "textDocument/documentSymbol" => navigation::document_symbols(analysis, &locator),
            "textDocument/completion" => {
                completion::complete(&document.text, offset, document.names())
            }
            "textDocument/codeAction" => {
                let start = params
                    .pointer("/range/start")
                    .and_then(|p| index.offset_of(p));
                let end = params
                    .pointer("/range/end")
                    .and_then(|p| index.offset_of(p));
                let range = (start.unwrap_or(0), end.or(start).unwrap_or(0));
                let text = &document.text;
                actions::actions(&analysis.module, text, &document.shown, &locator, range)
            }
            "textDocument/prepareRename" => {
                rename::prepare(analysis, &locator, offset).map_err(refused)?
            }
            "textDocument/rename" => {
                let new_name = params.get("newName").and_then(Value::as_str);
                let new_name = new_name.unwrap_or_default();
                rename::rename(analysis, &locator, offset, new_name).map_err(refused)?
            }
            _ => {
                return Err((
                    METHOD_NOT_FOUND,
                    format!("pipe lsp does not handle {method}"),
                ));
            }
        })
    }

    /// The whole document replaced by its formatted text; no edits when it is formatted or
    /// does not parse (the diagnostics say why).
    fn formatting(&self, text: &str) -> Value {
        match format(0, text) {
            Ok(formatted) if formatted != text => {
                let index = LineIndex::new(text, self.encoding);
                json!([{"range": index.range(0, text.len()), "newText": formatted}])
            }
            _ => json!([]),
        }
    }
}

/// A kept diagnostic after an edit: its spans in the document moved, or dropped when the
/// edit touched its primary span.
fn moved(mut diagnostic: Diagnostic, edit: Edit) -> Option<Diagnostic> {
    let mut labels = Vec::new();
    for mut label in diagnostic.labels {
        if label.span.file == 0 {
            let span = label.span;
            match shift(span.start as usize, span.end as usize, edit) {
                Some((start, end)) => label.span = Span::new(0, start, end),
                None if label.primary => return None,
                None => continue,
            }
        }
        labels.push(label);
    }
    diagnostic.labels = labels;
    Some(diagnostic)
}

/// One diagnostic in LSP form: the primary label's range, the message with its label and
/// help, secondary labels as related information.
fn lsp_diagnostic(diagnostic: &Diagnostic, locator: &Locator) -> Value {
    let span = diagnostic.main_span().unwrap_or_default();
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
        .map(|l| json!({"location": locator.location(l.span), "message": l.text}))
        .collect();
    json!({
        "range": locator.range(span),
        "severity": if diagnostic.severity == Severity::Error { 1 } else { 2 },
        "code": diagnostic.code,
        "source": "pipe",
        "message": message,
        "relatedInformation": related,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_become_paths() {
        assert_eq!(
            path_of("file:///work/my%20app/pipeline.pipe"),
            "/work/my app/pipeline.pipe"
        );
        assert_eq!(path_of("untitled:Untitled-1"), "untitled:Untitled-1");
    }
}
