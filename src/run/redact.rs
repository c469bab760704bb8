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
    /// The values themselves, to tell whether a stream's tail could still begin one.
    patterns: Arc<[Vec<u8>]>,
    /// Whether some value begins with each byte: most tails are ruled out by one lookup.
    first_bytes: Arc<[bool]>,
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
        let mut first_bytes = [false; 256];
        for pattern in &patterns {
            first_bytes[usize::from(pattern.as_bytes()[0])] = true;
        }
        Redactor {
            matcher,
            longest,
            patterns: patterns.into_iter().map(String::into_bytes).collect(),
            first_bytes: Arc::from(first_bytes),
        }
    }

    /// How many bytes at the end of `buffer` must wait for more output: the longest tail that
    /// is the beginning (not the whole) of a secret value. Anything else is written at once,
    /// so a job that prints a line and then waits is not held back.
    fn possible_secret_start(&self, buffer: &[u8]) -> usize {
        let most = self.longest.saturating_sub(1).min(buffer.len());
        (1..=most)
            .rev()
            .find(|&length| {
                let tail = &buffer[buffer.len() - length..];
                self.first_bytes
                    .get(usize::from(tail[0]))
                    .is_some_and(|&starts| starts)
                    && self
                        .patterns
                        .iter()
                        .any(|value| value.len() > length && value.starts_with(tail))
            })
            .unwrap_or(0)
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
            inner: self.merged(),
        }
    }

    /// A streaming redactor for several streams written to one sink (a child's stdout and
    /// stderr into its log): it redacts the bytes in the order they arrive, whichever stream
    /// they came from, so a value split across the streams is caught too.
    pub fn merged<T: Copy + PartialEq>(&self) -> MergedStream<T> {
        MergedStream {
            redactor: self.clone(),
            carry: Vec::new(),
            runs: Vec::new(),
        }
    }
}

/// Redacts a byte stream chunk by chunk. It holds back only a tail that could still be the
/// beginning of a secret value (at most `longest secret - 1` bytes), until more output decides it
/// or the stream ends: a value split across writes is still masked whole.
pub struct RedactingStream {
    inner: MergedStream<()>,
}

impl RedactingStream {
    /// Feeds `chunk`, appending the bytes that are now safe to write to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut pieces = Vec::new();
        self.inner.push((), chunk, &mut pieces);
        out.extend(pieces.into_iter().flat_map(|(_, bytes)| bytes));
    }

    /// Flushes the held-back tail at end of stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let mut pieces = Vec::new();
        self.inner.finish(&mut pieces);
        out.extend(pieces.into_iter().flat_map(|(_, bytes)| bytes));
    }
}

/// Safe bytes tagged with the stream they came from; a mask is tagged with the stream where
/// the secret started.
pub type Pieces<T> = Vec<(T, Vec<u8>)>;

/// The merged streaming redactor of [`Redactor::merged`]: one carry for all streams, each
/// byte remembering its stream so a sink can still tell them apart.
pub struct MergedStream<T> {
    redactor: Redactor,
    carry: Vec<u8>,
    /// The held-back bytes by stream: (stream, end offset in `carry`), in order.
    runs: Vec<(T, usize)>,
}

impl<T: Copy + PartialEq> MergedStream<T> {
    /// Feeds `chunk` of stream `tag`, appending what is now safe to write to `out`.
    pub fn push(&mut self, tag: T, chunk: &[u8], out: &mut Pieces<T>) {
        if chunk.is_empty() {
            return;
        }
        if self.redactor.is_empty() {
            push_piece(out, tag, chunk);
            return;
        }
        self.carry.extend_from_slice(chunk);
        match self.runs.last_mut() {
            Some((last, end)) if *last == tag => *end = self.carry.len(),
            _ => self.runs.push((tag, self.carry.len())),
        }
        let hold = self.redactor.possible_secret_start(&self.carry);
        self.drain(self.carry.len() - hold, out);
    }

    /// Flushes the held-back tail at end of all streams.
    pub fn finish(&mut self, out: &mut Pieces<T>) {
        self.drain(usize::MAX, out);
    }

    /// Writes out every byte before `safe_end` (and any secret starting there), redacted.
    fn drain(&mut self, safe_end: usize, out: &mut Pieces<T>) {
        let buffer = std::mem::take(&mut self.carry);
        let runs = std::mem::take(&mut self.runs);
        let safe_end = safe_end.min(buffer.len());
        let mut written = 0;
        if let Some(matcher) = &self.redactor.matcher {
            for found in matcher.find_iter(&buffer) {
                if found.start() >= safe_end {
                    break;
                }
                push_plain(&buffer, &runs, written, found.start(), out);
                push_piece(out, tag_at(&runs, found.start()), MASK);
                written = found.end();
            }
        }
        let emit_to = safe_end.max(written);
        push_plain(&buffer, &runs, written, emit_to, out);
        self.carry = buffer[emit_to..].to_vec();
        self.runs = runs
            .into_iter()
            .filter(|(_, end)| *end > emit_to)
            .map(|(tag, end)| (tag, end - emit_to))
            .collect();
    }
}

/// Appends `bytes` of `tag`, joining the previous piece when it is of the same stream.
fn push_piece<T: Copy + PartialEq>(out: &mut Pieces<T>, tag: T, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    match out.last_mut() {
        Some((last, piece)) if *last == tag => piece.extend_from_slice(bytes),
        _ => out.push((tag, bytes.to_vec())),
    }
}

/// The stream of the byte at `offset`.
fn tag_at<T: Copy>(runs: &[(T, usize)], offset: usize) -> T {
    let index = runs.partition_point(|(_, end)| *end <= offset);
    runs[index.min(runs.len() - 1)].0
}

/// Appends `buffer[from..to]`, split by stream.
fn push_plain<T: Copy + PartialEq>(
    buffer: &[u8],
    runs: &[(T, usize)],
    from: usize,
    to: usize,
    out: &mut Pieces<T>,
) {
    let mut start = 0;
    for (tag, end) in runs {
        let (a, b) = (start.max(from), (*end).min(to));
        if a < b {
            push_piece(out, *tag, &buffer[a..b]);
        }
        start = *end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_a_tail_that_could_begin_a_secret_waits() {
        let redactor = Redactor::new(["hunter2", "s3cret"]);
        let mut stream = redactor.stream();
        let mut out = Vec::new();
        stream.push(b"waiting for db...\n", &mut out);
        assert_eq!(
            out, b"waiting for db...\n",
            "nothing here can begin a secret"
        );
        out.clear();
        stream.push(b"token: hun", &mut out);
        assert_eq!(out, b"token: ", "`hun` may be the start of hunter2");
        out.clear();
        stream.push(b"ter2 and s3", &mut out);
        assert_eq!(out, b"*** and ");
        out.clear();
        stream.push(b"x", &mut out);
        assert_eq!(out, b"s3x", "`s3x` begins no secret");
    }

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

    #[test]
    fn masks_a_value_split_across_two_merged_streams() {
        let redactor = Redactor::new(["topsecret"]);
        let mut merged = redactor.merged::<u8>();
        let mut out = Vec::new();
        merged.push(1, b"x:top", &mut out);
        merged.push(2, b"secret\n", &mut out);
        merged.push(1, b"done", &mut out);
        merged.finish(&mut out);
        assert_eq!(
            out,
            vec![
                (1, b"x:***".to_vec()),
                (2, b"\n".to_vec()),
                (1, b"done".to_vec())
            ]
        );
    }

    /// `bytes` cut at the `cuts` that fall inside it.
    fn chunks_at(bytes: &[u8], cuts: Vec<usize>) -> Vec<&[u8]> {
        let mut points: Vec<usize> = cuts.into_iter().filter(|c| *c <= bytes.len()).collect();
        points.sort();
        points.push(bytes.len());
        let mut last = 0;
        points
            .into_iter()
            .map(|point| {
                let chunk = &bytes[last..point];
                last = point;
                chunk
            })
            .collect()
    }

    proptest! {
        #[test]
        fn streaming_equals_whole_buffer_redaction(
            text in "[a-e ]{0,200}",
            cuts in proptest::collection::vec(0usize..200, 0..8),
        ) {
            let redactor = Redactor::new(["abc", "dab", "eeee", "ab"]);
            let chunks = chunks_at(text.as_bytes(), cuts);
            prop_assert_eq!(stream_all(&redactor, &chunks), redactor.bytes(text.as_bytes()));
        }

        #[test]
        fn merged_streams_equal_whole_buffer_redaction(
            text in "[a-e ]{0,200}",
            cuts in proptest::collection::vec(0usize..200, 0..8),
        ) {
            let redactor = Redactor::new(["abc", "dab", "eeee", "ab"]);
            let mut merged = redactor.merged::<usize>();
            let mut pieces = Vec::new();
            for (index, chunk) in chunks_at(text.as_bytes(), cuts).into_iter().enumerate() {
                merged.push(index % 2, chunk, &mut pieces);
            }
            merged.finish(&mut pieces);
            let joined: Vec<u8> = pieces.into_iter().flat_map(|(_, piece)| piece).collect();
            prop_assert_eq!(joined, redactor.bytes(text.as_bytes()));
        }
    }
}
