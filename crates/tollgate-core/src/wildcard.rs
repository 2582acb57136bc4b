//! Wildcard model names, as LiteLLM reads them: a `model_name` such as `openai/*`,
//! `anthropic/claude-*` or `*` serves every requested model it matches, and each `*` of the
//! deployment's `litellm_params.model` is filled with what the matching `*` of the name
//! captured (`my-org/*` → `openai/*` sends `my-org/gpt-4o` to OpenAI's `gpt-4o`).

use std::cmp::Reverse;

/// A `model_name` with at least one `*`; each `*` matches any text, the empty text included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    /// The text around the `*`s: one more piece than there are `*`s.
    literals: Vec<String>,
}

impl Pattern {
    /// `None` when `text` has no `*`.
    pub fn new(text: &str) -> Option<Pattern> {
        text.contains('*').then(|| Pattern {
            text: text.to_owned(),
            literals: text.split('*').map(str::to_owned).collect(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn stars(&self) -> usize {
        self.literals.len() - 1
    }

    /// Ordering key: the most specific pattern first — the most literal text, then the fewest
    /// `*`s — so `anthropic/claude-*` wins over `anthropic/*`, which wins over `*`.
    pub fn specificity(&self) -> (Reverse<usize>, usize) {
        let literal_len = self.literals.iter().map(String::len).sum();
        (Reverse(literal_len), self.stars())
    }

    /// What each `*` matched in `name`, or `None` when the pattern does not match. An
    /// ambiguous match resolves as a regular expression would: each `*` takes as much as it
    /// can, leftmost first.
    pub fn captures<'a>(&self, name: &'a str) -> Option<Vec<&'a str>> {
        let rest = name.strip_prefix(self.literals[0].as_str())?;
        let mut captures = Vec::with_capacity(self.stars());
        fill_captures(&self.literals[1..], rest, &mut captures).then_some(captures)
    }

    pub fn matches(&self, name: &str) -> bool {
        self.captures(name).is_some()
    }
}

/// Matches `text` against `*literals[0]*literals[1]…`, pushing each `*`'s capture.
fn fill_captures<'a>(literals: &[String], text: &'a str, captures: &mut Vec<&'a str>) -> bool {
    let Some((literal, after)) = literals.split_first() else {
        return text.is_empty();
    };
    if after.is_empty() {
        let Some(captured) = text.strip_suffix(literal.as_str()) else {
            return false;
        };
        captures.push(captured);
        return true;
    }
    // Greedy: the latest occurrence of the next literal first.
    let mut positions: Vec<usize> = text
        .match_indices(literal.as_str())
        .map(|(at, _)| at)
        .collect();
    if literal.is_empty() {
        positions.push(text.len());
    }
    for at in positions.into_iter().rev() {
        captures.push(&text[..at]);
        if fill_captures(after, &text[at + literal.len()..], captures) {
            return true;
        }
        captures.pop();
    }
    false
}

/// `template` with its `*`s replaced, in order, by `captures`; a `*` without a capture is
/// left as it is (configs are checked for that at start-up).
pub fn fill(template: &str, captures: &[&str]) -> String {
    let mut filled =
        String::with_capacity(template.len() + captures.iter().map(|c| c.len()).sum::<usize>());
    let mut captures = captures.iter();
    for (index, piece) in template.split('*').enumerate() {
        if index > 0 {
            match captures.next() {
                Some(capture) => filled.push_str(capture),
                None => filled.push('*'),
            }
        }
        filled.push_str(piece);
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captures(pattern: &str, name: &str) -> Option<Vec<String>> {
        Pattern::new(pattern)
            .unwrap()
            .captures(name)
            .map(|found| found.into_iter().map(str::to_owned).collect())
    }

    #[test]
    fn each_star_captures_its_part_of_the_name() {
        assert_eq!(captures("*", "gpt-4o"), Some(vec!["gpt-4o".into()]));
        assert_eq!(
            captures("openai/*", "openai/gpt-4o"),
            Some(vec!["gpt-4o".into()])
        );
        assert_eq!(captures("openai/*", "anthropic/claude"), None);
        assert_eq!(
            captures("anthropic/claude-*", "anthropic/claude-sonnet-4-5"),
            Some(vec!["sonnet-4-5".into()])
        );
        assert_eq!(
            captures("fo::*:static::*", "fo::hi:static::there"),
            Some(vec!["hi".into(), "there".into()])
        );
        assert_eq!(
            captures("a*b*c", "a1b2b3c"),
            Some(vec!["1b2".into(), "3".into()])
        );
        assert_eq!(captures("a*b", "ab"), Some(vec!["".into()]));
        assert_eq!(captures("a*b", "abc"), None);
        assert_eq!(
            captures("*-mini", "gpt-4o-mini"),
            Some(vec!["gpt-4o".into()])
        );
        assert_eq!(captures("x**y", "x12y"), Some(vec!["12".into(), "".into()]));
    }

    #[test]
    fn templates_are_filled_in_order() {
        assert_eq!(fill("openai/*", &["gpt-4o"]), "openai/gpt-4o");
        assert_eq!(
            fill("openai/fo::*:static::*", &["a", "b"]),
            "openai/fo::a:static::b"
        );
        assert_eq!(fill("openai/gpt-4o", &["ignored"]), "openai/gpt-4o");
        assert_eq!(fill("*/*", &["one"]), "one/*");
    }

    #[test]
    fn the_most_specific_pattern_sorts_first() {
        let mut patterns: Vec<Pattern> = ["*", "anthropic/*", "anthropic/claude-*", "a*/*"]
            .iter()
            .map(|text| Pattern::new(text).unwrap())
            .collect();
        patterns.sort_by_key(Pattern::specificity);
        let order: Vec<&str> = patterns.iter().map(Pattern::as_str).collect();
        assert_eq!(order, ["anthropic/claude-*", "anthropic/*", "a*/*", "*"]);
    }
}
