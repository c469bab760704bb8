//! Redaction: replaces every secret value by `***` in everything the runner writes, including
//! values split across two writes of a child process (a streaming matcher with a small carry).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::sync::Arc;

/// What a secret value becomes wherever the tool writes.
pub const MASK: &[u8] = b"***";

/// The set of secret values of a run. Cheap to clone (shared matcher).
#[derive(Clone, Default)]
pub struct Redactor {
    matcher: Option<Arc<AhoCorasick>>,
    longest: usize,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the values themselves.
        write!(f, "Redactor {{ longest: {} }}", self.longest)
    }
}

impl Redactor {
    /// Builds a redactor for `values`; empty values are ignored (they would match everywhere).
    pub fn new<I, S>(values: I) -> Redactor
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns: Vec<String> = values
            .into_iter()
            .map(|v| v.as_ref().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        patterns.sort();
        patterns.dedup();
        if patterns.is_empty() {
            return Redactor::default();
        }
        let longest = patterns.iter().map(String::len).max().unwrap_or(0);
        // Leftmost-longest: a secret that contains another is masked whole.
        let matcher = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok()
            .map(Arc::new);
        Redactor { matcher, longest }
    }

    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// Redacts a complete text (messages, outputs, state).
    pub fn text(&self, text: &str) -> String {
        match &self.matcher {
            Some(matcher) => matcher.replace_all(text, &vec!["***"; matcher.patterns_len()]),
            None => text.to_string(),
        }
    }

    /// Redacts a complete byte buffer.
    pub fn bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        match &self.matcher {
            Some(matcher) => matcher.replace_all_with_bytes(bytes, &mut out, |_, _, dst| {
                dst.extend_from_slice(MASK);
                true
            }),
            None => out.extend_from_slice(bytes),
        }
        out
    }

    /// A streaming redactor for one output stream.
    pub fn stream(&self) -> RedactingStream {
        RedactingStream {
            redactor: self.clone(),
            carry: Vec::new(),
        }
    }
}

/// Redacts a byte stream chunk by chunk. It holds back at most `longest secret - 1` bytes: a
/// match is only decided once every secret that could start at its position fits in the buffer.
pub struct RedactingStream {
    redactor: Redactor,
    carry: Vec<u8>,
}

impl RedactingStream {
    /// Feeds `chunk`, appending the bytes that are now safe to write to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let Some(matcher) = self.redactor.matcher.clone() else {
            out.extend_from_slice(chunk);
            return;
        };
        let joined;
        let buffer: &[u8] = if self.carry.is_empty() {
            chunk
        } else {
            self.carry.extend_from_slice(chunk);
            joined = std::mem::take(&mut self.carry);
            &joined
        };
        let hold = self.redactor.longest - 1;
        let safe_end = buffer.len().saturating_sub(hold);
        let mut written = 0;
        for found in matcher.find_iter(buffer) {
            if found.start() >= safe_end {
                break;
            }
            out.extend_from_slice(&buffer[written..found.start()]);
            out.extend_from_slice(MASK);
            written = found.end();
        }
        let emit_to = safe_end.max(written);
        out.extend_from_slice(&buffer[written..emit_to]);
        self.carry = buffer[emit_to..].to_vec();
    }

    /// Flushes the held-back tail at end of stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let tail = std::mem::take(&mut self.carry);
        out.extend_from_slice(&self.redactor.bytes(&tail));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stream_all(redactor: &Redactor, chunks: &[&[u8]]) -> Vec<u8> {
        let mut stream = redactor.stream();
        let mut out = Vec::new();
        for chunk in chunks {
            stream.push(chunk, &mut out);
        }
        stream.finish(&mut out);
        out
    }

    #[test]
    fn masks_whole_values_in_text() {
        let redactor = Redactor::new(["hunter2", "s3cr3t"]);
        assert_eq!(redactor.text("pw=hunter2 and s3cr3t."), "pw=*** and ***.");
    }

    #[test]
    fn masks_a_value_split_across_chunks() {
        let redactor = Redactor::new(["topsecretvalue"]);
        let out = stream_all(&redactor, &[b"start tops", b"ecretval", b"ue end\n"]);
        assert_eq!(out, b"start *** end\n");
    }

    #[test]
    fn prefers_the_longest_overlapping_secret() {
        let redactor = Redactor::new(["abc", "abcdef"]);
        let out = stream_all(&redactor, &[b"xxabc", b"def yy abc"]);
        assert_eq!(out, b"xx*** yy ***");
    }

    #[test]
    fn passes_everything_through_without_secrets() {
        let redactor = Redactor::new(Vec::<String>::new());
        assert_eq!(stream_all(&redactor, &[b"a", b"b"]), b"ab");
        assert!(redactor.is_empty());
    }

    proptest! {
        #[test]
        fn streaming_equals_whole_buffer_redaction(
            text in "[a-e ]{0,200}",
            cuts in proptest::collection::vec(0usize..200, 0..8),
        ) {
            let redactor = Redactor::new(["abc", "dab", "eeee", "ab"]);
            let bytes = text.as_bytes();
            let mut points: Vec<usize> = cuts.into_iter().filter(|c| *c <= bytes.len()).collect();
            points.sort();
            let mut chunks = Vec::new();
            let mut last = 0;
            for point in points {
                chunks.push(&bytes[last..point]);
                last = point;
            }
            chunks.push(&bytes[last..]);
            prop_assert_eq!(stream_all(&redactor, &chunks), redactor.bytes(bytes));
        }
    }
}
