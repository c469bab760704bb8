//! Literal values: decides what a `number_like` token is (number, duration, percent) and decodes
//! string escapes. Pure functions; a rejected literal is an E0002 with a placeholder value.

/// A number-like token after validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum NumberLiteral {
    Number(f64),
    /// Milliseconds.
    Duration(u64),
    /// Percent points, 0 to 100.
    Percent(f64),
}

/// Why a literal was rejected, and a value of the intended kind so lowering can carry on.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LiteralError {
    pub message: String,
    pub help: String,
    pub placeholder: NumberLiteral,
}

pub(super) const NUMBER_HELP: &str = "numbers are written like 42 or 3.5";
pub(super) const DURATION_HELP: &str =
    "durations are a number followed by ms, s, m, h or d, e.g. 30s or 1h30m";
pub(super) const PERCENT_HELP: &str =
    "percentages are a number from 0 to 100 followed by `%`, e.g. 1% or 99.9%";
pub(super) const ESCAPE_HELP: &str = "the escapes are \\\" \\\\ \\n \\t and \\u{…} (1 to 6 hex digits); \
     write \\\\ for a backslash, or use a \"\"\"…\"\"\" string, which has no escapes";

/// Duration units from largest to smallest, with their length in milliseconds.
const DURATION_UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Classifies the text of a `number_like` token: `42`, `3.5`, `250ms`, `1h30m`, `99.9%`.
pub(super) fn classify_number(text: &str) -> Result<NumberLiteral, LiteralError> {
    if let Some(amount) = text.strip_suffix('%') {
        return classify_percent(text, amount);
    }
    if text
        .bytes()
        .any(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'%')
    {
        return classify_duration(text);
    }
    match plain_number(text) {
        Some(value) if value.is_finite() => Ok(NumberLiteral::Number(value)),
        Some(_) => Err(number_error(format!("the number `{text}` is too large"))),
        None => Err(number_error(format!("`{text}` is not a valid number"))),
    }
}

fn number_error(message: String) -> LiteralError {
    LiteralError {
        message,
        help: NUMBER_HELP.to_string(),
        placeholder: NumberLiteral::Number(0.0),
    }
}

fn duration_error(message: String) -> LiteralError {
    LiteralError {
        message,
        help: DURATION_HELP.to_string(),
        placeholder: NumberLiteral::Duration(0),
    }
}

/// `42` or `3.5`: digits, optionally a dot and more digits.
fn plain_number(text: &str) -> Option<f64> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    text.parse::<f64>().ok()
}

fn classify_percent(text: &str, amount: &str) -> Result<NumberLiteral, LiteralError> {
    let error = |message: String| LiteralError {
        message,
        help: PERCENT_HELP.to_string(),
        placeholder: NumberLiteral::Percent(0.0),
    };
    match plain_number(amount) {
        Some(value) if (0.0..=100.0).contains(&value) => Ok(NumberLiteral::Percent(value)),
        Some(_) => Err(error(format!(
            "the percentage `{text}` is out of range (0% to 100%)"
        ))),
        None => Err(error(format!("`{text}` is not a valid percentage"))),
    }
}

/// `250ms`, `1h30m`: amounts with units, largest unit first, each unit at most once.
fn classify_duration(text: &str) -> Result<NumberLiteral, LiteralError> {
    let mut rest = text;
    let mut total: u64 = 0;
    let mut smallest_allowed = 0; // index into DURATION_UNITS
    while !rest.is_empty() {
        let amount_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let (amount_text, after_amount) = rest.split_at(amount_len);
        let unit_len = after_amount
            .bytes()
            .take_while(|b| !b.is_ascii_digit() && *b != b'.')
            .count();
        let (unit, after_unit) = after_amount.split_at(unit_len);
        let Some(amount) = plain_number(amount_text) else {
            return Err(duration_error(format!("`{text}` is not a valid duration")));
        };
        let Some(unit_index) = DURATION_UNITS.iter().position(|(name, _)| *name == unit) else {
            let mut error = duration_error(unknown_unit_message(text, unit));
            if let Some(unit_meant) = unit_meant(unit) {
                let written = format!("{amount_text}{unit}");
                let meant = format!("{amount_text}{unit_meant}");
                error.help = format!("write `{}`", text.replacen(&written, &meant, 1));
            }
            return Err(error);
        };
        if unit_index < smallest_allowed {
            return Err(duration_error(format!(
                "`{text}` is not a valid duration: units go from largest to smallest, each once"
            )));
        }
        smallest_allowed = unit_index + 1;
        let millis = amount * DURATION_UNITS[unit_index].1 as f64;
        if millis.fract() != 0.0 {
            return Err(duration_error(format!(
                "`{text}` is not a whole number of milliseconds"
            )));
        }
        total = add_millis(total, millis)
            .ok_or_else(|| duration_error(format!("the duration `{text}` is too large")))?;
        rest = after_unit;
    }
    Ok(NumberLiteral::Duration(total))
}

/// The unit a spelled-out or plural unit stands for: `mins` is `m`.
fn unit_meant(unit: &str) -> Option<&'static str> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "ms" | "msec" | "msecs" | "milli" | "millis" | "millisecond" | "milliseconds" => "ms",
        "sec" | "secs" | "second" | "seconds" | "s" => "s",
        "min" | "mins" | "minute" | "minutes" | "m" => "m",
        "hr" | "hrs" | "hour" | "hours" | "h" => "h",
        "day" | "days" | "d" => "d",
        _ => return None,
    })
}

fn unknown_unit_message(text: &str, unit: &str) -> String {
    if unit.is_empty() {
        format!("`{text}` is not a valid duration: a unit is missing")
    } else {
        format!("`{text}` is not a valid duration: unknown unit `{unit}`")
    }
}

/// Adds a whole, non-negative number of milliseconds, refusing anything past `u64`.
fn add_millis(total: u64, millis: f64) -> Option<u64> {
    // 2^64 as f64; anything at or above it does not fit.
    if !(0.0..18_446_744_073_709_551_616.0).contains(&millis) {
        return None;
    }
    total.checked_add(millis as u64)
}

/// Decodes one escape sequence as lexed by the grammar's `escape` rule (`\n`, `\u{1F600}`).
pub(super) fn decode_escape(escape: &str) -> Result<char, String> {
    let body = escape.strip_prefix('\\').unwrap_or(escape);
    match body {
        "\"" => Ok('"'),
        "\\" => Ok('\\'),
        "n" => Ok('\n'),
        "t" => Ok('\t'),
        "" => Err("a backslash at the end of the line is not an escape".to_string()),
        _ => match body.strip_prefix("u{") {
            Some(code) => decode_unicode(escape, code),
            None => Err(format!("unknown escape `{escape}`")),
        },
    }
}

fn decode_unicode(escape: &str, code: &str) -> Result<char, String> {
    let Some(hex) = code.strip_suffix('}') else {
        return Err(format!("the escape `{escape}` is missing its closing `}}`"));
    };
    let valid_hex = (1..=6).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    u32::from_str_radix(hex, 16)
        .ok()
        .filter(|_| valid_hex)
        .and_then(char::from_u32)
        .ok_or_else(|| format!("`{escape}` is not a valid unicode escape"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duration(text: &str) -> u64 {
        match classify_number(text) {
            Ok(NumberLiteral::Duration(ms)) => ms,
            other => panic!("{text}: expected a duration, got {other:?}"),
        }
    }

    #[test]
    fn every_duration_unit_and_compound() {
        assert_eq!(duration("250ms"), 250);
        assert_eq!(duration("30s"), 30_000);
        assert_eq!(duration("5m"), 300_000);
        assert_eq!(duration("1h"), 3_600_000);
        assert_eq!(duration("7d"), 7 * 86_400_000);
        assert_eq!(duration("1h30m"), 5_400_000);
        assert_eq!(duration("2m30s"), 150_000);
        assert_eq!(duration("1d2h3m4s5ms"), 93_784_005);
        assert_eq!(duration("1.5s"), 1_500);
        assert_eq!(duration("0s"), 0);
    }

    #[test]
    fn a_spelled_out_unit_gets_the_literal_meant() {
        let help = |text: &str| classify_number(text).map(|_| ()).unwrap_err().help;
        assert_eq!(help("5mins"), "write `5m`");
        assert_eq!(help("1hour30mins"), "write `1h30mins`");
        assert_eq!(help("30Seconds"), "write `30s`");
        assert_eq!(help("5x"), DURATION_HELP);
    }

    #[test]
    fn numbers_and_percents() {
        assert_eq!(classify_number("42"), Ok(NumberLiteral::Number(42.0)));
        assert_eq!(classify_number("3.5"), Ok(NumberLiteral::Number(3.5)));
        assert_eq!(classify_number("1%"), Ok(NumberLiteral::Percent(1.0)));
        assert_eq!(classify_number("99.9%"), Ok(NumberLiteral::Percent(99.9)));
        assert_eq!(classify_number("100%"), Ok(NumberLiteral::Percent(100.0)));
        assert_eq!(classify_number("0%"), Ok(NumberLiteral::Percent(0.0)));
    }

    #[test]
    fn rejected_literals_say_why_and_keep_their_kind() {
        let cases = [
            ("5x", "unknown unit `x`", DURATION_HELP),
            ("10mss", "unknown unit `mss`", DURATION_HELP),
            ("30m1h", "largest to smallest", DURATION_HELP),
            ("101%", "out of range", PERCENT_HELP),
            ("1.2.3", "not a valid number", NUMBER_HELP),
            ("5.", "not a valid number", NUMBER_HELP),
            ("1%%", "not a valid percentage", PERCENT_HELP),
            ("0.5ms", "whole number of milliseconds", DURATION_HELP),
            ("99999999999999999999d", "too large", DURATION_HELP),
        ];
        for (text, message, help) in cases {
            let error = classify_number(text).expect_err(text);
            assert!(error.message.contains(message), "{text}: {}", error.message);
            assert_eq!(error.help, help, "{text}");
        }
        let huge = "9".repeat(400);
        assert!(classify_number(&huge).is_err());
    }

    #[test]
    fn escapes() {
        assert_eq!(decode_escape("\\\""), Ok('"'));
        assert_eq!(decode_escape("\\\\"), Ok('\\'));
        assert_eq!(decode_escape("\\n"), Ok('\n'));
        assert_eq!(decode_escape("\\t"), Ok('\t'));
        assert_eq!(decode_escape("\\u{41}"), Ok('A'));
        assert_eq!(decode_escape("\\u{1F600}"), Ok('😀'));
        assert!(decode_escape("\\q").is_err());
        assert!(decode_escape("\\u{D800}").is_err());
        assert!(decode_escape("\\u{1234567}").is_err());
        assert!(decode_escape("\\u{41").is_err());
        assert!(decode_escape("\\").is_err());
    }
}
