//! Positions: LSP line/character positions (UTF-16 code units by default, UTF-8 when agreed)
//! to byte offsets and back, and incremental edits applied to a document's text.

use serde_json::{Value, json};

/// How the client counts columns: LSP's default is UTF-16 code units; UTF-8 when offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
}

/// Line starts of one text, so a position costs a binary search and one line's scan.
pub struct LineIndex<'t> {
    text: &'t str,
    line_starts: Vec<usize>,
    encoding: Encoding,
}

impl<'t> LineIndex<'t> {
    pub fn new(text: &'t str, encoding: Encoding) -> LineIndex<'t> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex {
            text,
            line_starts,
            encoding,
        }
    }

    /// The LSP position of a byte offset (clamped to the text, and back to a char boundary).
    pub fn position(&self, offset: usize) -> Value {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let segment = &self.text[self.line_starts[line]..offset];
        let character = match self.encoding {
            Encoding::Utf8 => segment.len(),
            Encoding::Utf16 => segment.encode_utf16().count(),
        };
        json!({"line": line, "character": character})
    }

    pub fn range(&self, start: usize, end: usize) -> Value {
        json!({"start": self.position(start), "end": self.position(end)})
    }

    /// The byte offset of a line and column (clamped to the line's end and the text's end).
    pub fn offset(&self, line: usize, character: usize) -> usize {
        let Some(&line_start) = self.line_starts.get(line) else {
            return self.text.len();
        };
        let line_text = self.text[line_start..]
            .split('\n')
            .next()
            .unwrap_or_default();
        let mut units = 0;
        for (index, ch) in line_text.char_indices() {
            if units >= character {
                return line_start + index;
            }
            units += match self.encoding {
                Encoding::Utf8 => ch.len_utf8(),
                Encoding::Utf16 => ch.len_utf16(),
            };
        }
        line_start + line_text.len()
    }

    /// The offset of an LSP `Position` object (`None` when it is malformed).
    pub fn offset_of(&self, position: &Value) -> Option<usize> {
        let line = position.get("line")?.as_u64()?;
        let character = position.get("character")?.as_u64()?;
        let line = usize::try_from(line).unwrap_or(usize::MAX);
        let character = usize::try_from(character).unwrap_or(usize::MAX);
        Some(self.offset(line, character))
    }
}

/// One applied change: the byte range it replaced and the length of the new text, so stored
/// spans after it can be shifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub inserted: usize,
}

/// Applies one `TextDocumentContentChangeEvent`: a ranged replacement, or the whole text when
/// it has no range.
pub fn apply_change(text: &mut String, change: &Value, encoding: Encoding) -> Option<Edit> {
    let new_text = change.get("text")?.as_str()?;
    let Some(range) = change.get("range") else {
        let edit = Edit {
            start: 0,
            end: text.len(),
            inserted: new_text.len(),
        };
        *text = new_text.to_string();
        return Some(edit);
    };
    let index = LineIndex::new(text, encoding);
    let start = index.offset_of(range.get("start")?)?;
    let end = index.offset_of(range.get("end")?)?.max(start);
    text.replace_range(start..end, new_text);
    Some(Edit {
        start,
        end,
        inserted: new_text.len(),
    })
}

/// Where a span that lay outside an edit is now (`None` when the edit overlapped it).
pub fn shift(start: usize, end: usize, edit: Edit) -> Option<(usize, usize)> {
    if end <= edit.start {
        return Some((start, end));
    }
    if start >= edit.end {
        let moved = |at: usize| at - edit.end + edit.start + edit.inserted;
        return Some((moved(start), moved(end)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units_unless_utf8_was_agreed() {
        let text = "a\nhé𝄞x";
        let x = text.find('x').unwrap();
        let utf16 = LineIndex::new(text, Encoding::Utf16);
        let utf8 = LineIndex::new(text, Encoding::Utf8);
        assert_eq!(utf16.position(x), json!({"line": 1, "character": 4}));
        assert_eq!(utf8.position(x), json!({"line": 1, "character": 7}));
        assert_eq!(utf16.offset(1, 4), x);
        assert_eq!(utf8.offset(1, 7), x);
        assert_eq!(utf8.offset(1, 99), text.len());
        assert_eq!(utf8.offset(99, 0), text.len());
        assert_eq!(utf8.position(x - 1), json!({"line": 1, "character": 3}));
    }

    #[test]
    fn ranged_changes_edit_in_place_and_shift_later_spans() {
        let mut text = "job a {}\njob b {}\n".to_string();
        let change = json!({"range": {"start": {"line": 0, "character": 4}, "end": {"line": 0, "character": 5}}, "text": "build"});
        let edit = apply_change(&mut text, &change, Encoding::Utf16).unwrap();
        assert_eq!(text, "job build {}\njob b {}\n");
        assert_eq!(shift(13, 18, edit), Some((17, 22)));
        assert_eq!(shift(0, 3, edit), Some((0, 3)));
        assert_eq!(shift(4, 5, edit), None);
        let whole = json!({"text": "x"});
        apply_change(&mut text, &whole, Encoding::Utf16).unwrap();
        assert_eq!(text, "x");
    }
}
