//! `pipe explain CODE`: the long explanation of each stable diagnostic code, each with a wrong
//! and a fixed example. The texts live in `explain/*.md` and are bundled into the binary.

macro_rules! explanations {
    ($($code:literal),* $(,)?) => {
        const EXPLANATIONS: &[(&str, &str)] = &[
            $(($code, include_str!(concat!("explain/", $code, ".md")))),*
        ];
    };
}

explanations!(
    "E0001", "E0002", "E0101", "E0102", "E0103", "E0104", "E0105", "E0107", "E0201", "E0202",
    "E0203", "E0301", "E0302", "E0401", "E0402", "E0403", "E0404", "E0405", "E0406", "E0501",
    "E0502", "E0503", "E0504", "W0101", "W0102", "W0104", "W0105",
);

/// Every code the tool can emit, in order.
pub fn all_codes() -> impl Iterator<Item = &'static str> {
    EXPLANATIONS.iter().map(|(code, _)| *code)
}

/// The explanation of a code (case-insensitive), if it is one of ours.
pub fn explanation(code: &str) -> Option<&'static str> {
    EXPLANATIONS
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(code.trim()))
        .map(|(_, text)| *text)
}
