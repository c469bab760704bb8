//! E0503: literals that look like credentials (cloud access keys, private key headers, API
//! tokens, long high-entropy strings), labelled at the exact characters.

use super::walk::{Literal, literals};
use crate::check::program::Program;
use crate::diagnostics::{Diagnostic, SourceMap, Span};

/// One suspicious run of a literal: byte range in the literal's text, and what it looks like.
#[derive(Debug, Clone, PartialEq)]
struct Finding {
    start: usize,
    end: usize,
    looks_like: &'static str,
}

pub(super) fn check(program: &Program, sources: &SourceMap, out: &mut Vec<Diagnostic>) {
    for literal in literals(program) {
        for finding in scan(literal.text) {
            out.push(report(&literal, &finding, sources));
        }
    }
}

fn report(literal: &Literal, finding: &Finding, sources: &SourceMap) -> Diagnostic {
    let matched = literal.text.get(finding.start..finding.end).unwrap_or("");
    Diagnostic::error(
        "E0503",
        format!("this literal looks like {}", finding.looks_like),
    )
    .primary(
        locate(literal.span, matched, sources),
        format!("looks like {}", finding.looks_like),
    )
    .help(
        "never write credentials in the pipeline: declare `secret NAME { from = env(\"NAME\") }`, \
             list it in `secrets = [NAME]` of the item that needs it and read `$NAME` there; then \
             rotate this credential, it is in your history",
    )
}

/// The span of `matched` inside the literal's source text (escapes may move it; then the whole
/// literal is labelled).
fn locate(literal: Span, matched: &str, sources: &SourceMap) -> Span {
    let written = sources.snippet(literal);
    match written.find(matched) {
        Some(offset) if !matched.is_empty() => {
            let start = literal.start as usize + offset;
            Span::new(literal.file, start, start + matched.len())
        }
        _ => literal,
    }
}

/// Every credential-like run in `text`; a high-entropy run is not reported again when a named
/// pattern already covers it.
fn scan(text: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(aws_access_keys(text));
    findings.extend(private_key_headers(text));
    findings.extend(prefixed_tokens(text));
    for finding in high_entropy_runs(text) {
        let overlaps = findings
            .iter()
            .any(|f| f.start < finding.end && finding.start < f.end);
        if !overlaps {
            findings.push(finding);
        }
    }
    findings.sort_by_key(|f| f.start);
    findings
}

fn is_upper_alnum(byte: u8) -> bool {
    byte.is_ascii_uppercase() || byte.is_ascii_digit()
}

/// Byte offsets where `prefix` starts and no alphanumeric character comes right before it.
fn prefix_starts<'t>(text: &'t str, prefix: &'t str) -> impl Iterator<Item = usize> + 't {
    text.match_indices(prefix)
        .map(|(at, _)| at)
        .filter(move |&at| {
            at == 0
                || text
                    .as_bytes()
                    .get(at - 1)
                    .is_none_or(|b| !b.is_ascii_alphanumeric())
        })
}

/// How many bytes from `from` on satisfy `accept`.
fn run_length(text: &str, from: usize, accept: impl Fn(u8) -> bool) -> usize {
    text.as_bytes()
        .get(from..)
        .map_or(0, |rest| rest.iter().take_while(|b| accept(**b)).count())
}

fn aws_access_keys(text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for prefix in ["AKIA", "ASIA"] {
        for start in prefix_starts(text, prefix) {
            if run_length(text, start + 4, is_upper_alnum) >= 16 {
                out.push(Finding {
                    start,
                    end: start + 20,
                    looks_like: "an AWS access key id",
                });
            }
        }
    }
    out
}

fn private_key_headers(text: &str) -> Vec<Finding> {
    const END: &str = "PRIVATE KEY-----";
    let mut out = Vec::new();
    for (start, _) in text.match_indices("-----BEGIN ") {
        let line_end = text[start..].find('\n').map_or(text.len(), |n| start + n);
        if let Some(offset) = text[start..line_end].find(END) {
            let end = start + offset + END.len();
            out.push(Finding {
                start,
                end,
                looks_like: "a private key",
            });
        }
    }
    out
}

fn prefixed_tokens(text: &str) -> Vec<Finding> {
    let github = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let slack = |b: u8| b.is_ascii_alphanumeric() || b == b'-';
    let mut out = Vec::new();
    for prefix in ["ghp_", "gho_", "ghs_", "ghu_", "ghr_", "github_pat_"] {
        for start in prefix_starts(text, prefix) {
            let length = run_length(text, start + prefix.len(), github);
            if length >= 20 {
                let end = start + prefix.len() + length;
                out.push(Finding {
                    start,
                    end,
                    looks_like: "a GitHub token",
                });
            }
        }
    }
    for prefix in ["xoxa-", "xoxb-", "xoxp-", "xoxr-"] {
        for start in prefix_starts(text, prefix) {
            let length = run_length(text, start + prefix.len(), slack);
            if length >= 10 {
                let end = start + prefix.len() + length;
                out.push(Finding {
                    start,
                    end,
                    looks_like: "a Slack token",
                });
            }
        }
    }
    out
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=' | b'_' | b'-')
}

/// Runs of at least 32 token characters with more than 4.2 bits of entropy per character that
/// mix letters and digits. A hex digest (at most 4 bits per character) never qualifies, and
/// neither does a path or target triple (`target/x86_64-unknown-linux-gnu/release/api`): a
/// token has a stretch of at least 16 characters without `/`, `-` or `_`, a path has words.
fn high_entropy_runs(text: &str) -> Vec<Finding> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let length = run_length(text, start, is_token_byte);
        if length == 0 {
            start += 1;
            continue;
        }
        let run = &bytes[start..start + length];
        let mixes = run.iter().any(u8::is_ascii_alphabetic) && run.iter().any(u8::is_ascii_digit);
        if length >= 32 && mixes && longest_word(run) >= 16 && entropy(run) > 4.2 {
            out.push(Finding {
                start,
                end: start + length,
                looks_like: "a secret token (high entropy)",
            });
        }
        start += length;
    }
    out
}

/// The longest stretch between separators `/`, `-` and `_`.
fn longest_word(run: &[u8]) -> usize {
    run.split(|b| matches!(b, b'/' | b'-' | b'_'))
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0)
}

/// Shannon entropy in bits per byte.
fn entropy(run: &[u8]) -> f64 {
    let mut counts = [0usize; 256];
    for byte in run {
        counts[*byte as usize] += 1;
    }
    let total = run.len() as f64;
    counts
        .iter()
        .filter(|count| **count > 0)
        .map(|count| {
            let p = *count as f64 / total;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::scan;
    use crate::diagnostics::{SourceMap, Span};
    use crate::syntax::ast::{Segment, StrLit};

    fn looks(text: &str) -> Vec<&'static str> {
        scan(text).into_iter().map(|f| f.looks_like).collect()
    }

    #[test]
    fn recognises_each_kind_of_credential() {
        assert_eq!(
            looks("aws --key AKIAIOSFODNN7EXAMPLE"),
            vec!["an AWS access key id"]
        );
        assert_eq!(
            looks("-----BEGIN RSA PRIVATE KEY-----\nMII"),
            vec!["a private key"]
        );
        assert_eq!(
            looks("token ghp_1234567890abcdefghijABCDEFGHIJ123456"),
            vec!["a GitHub token"]
        );
        assert_eq!(
            looks("xoxb-123456789012-abcdefABCDEF"),
            vec!["a Slack token"]
        );
        assert_eq!(
            looks("curl -H 'X-Key: q8Zr2Lm7Xv4Tn9Pb1Kc6Wd3Hs5Jf0Gy8Ae2Ru7Io'"),
            vec!["a secret token (high entropy)"]
        );
        assert_eq!(
            looks("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            vec!["a secret token (high entropy)"]
        );
    }

    #[test]
    fn ordinary_strings_and_digests_are_not_credentials() {
        let sha = "8f3a91c2d4e5f60718293a4b5c6d7e8f90a1b2c3";
        let sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for text in [
            sha,
            sha256,
            "cargo clippy --all-targets -- -D warnings",
            "./scripts/deploy.sh target/release/api http://127.0.0.1:18080",
            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnop",
            "AKIA is the prefix of an access key",
            "target/x86_64-unknown-linux-gnu/release/api-server",
            "s3://my-bucket-2024/releases/api/linux-amd64/api-server-v1",
            "registry/org/backend-service-worker-2/x86_64-linux-musl",
            "123e4567-e89b-12d3-a456-426614174000",
        ] {
            assert!(scan(text).is_empty(), "{text}: {:?}", scan(text));
        }
    }

    #[test]
    fn labels_the_exact_characters_in_the_source() {
        let source = "run \"aws --key AKIAIOSFODNN7EXAMPLE\"";
        let mut sources = SourceMap::new();
        let file = sources.add("pipeline.pipe", source);
        let literal = StrLit {
            segments: vec![Segment::Text("aws --key AKIAIOSFODNN7EXAMPLE".to_string())],
            span: Span::new(file, 4, source.len()),
        };
        let mut program = clean_program();
        program.jobs[0].steps = vec![literal];
        let mut found = Vec::new();
        super::super::check_program(&program, &sources, &mut found);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].code, "E0503");
        let span = found[0].labels[0].span;
        assert_eq!(sources.snippet(span), "AKIAIOSFODNN7EXAMPLE");
    }
}
