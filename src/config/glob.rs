//! Shell-style name globs (pure), the pattern language of `collector.domains` and
//! `collector.exclude`: checked when the config is read, compiled by the collector.
//!
//! `*` any run of characters, `?` one character, `[abc]`, `[a-z]`, `[!a-z]` (or
//! `[^a-z]`) one character of (not of) a set; everything else matches itself,
//! case-sensitively, as libvirt names are.

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    Star,
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Glob {
    /// Compiles `pattern`; an unclosed `[` is an error naming the pattern.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::Any),
                '[' => {
                    let (set, next) = parse_set(&chars, i)
                        .ok_or_else(|| format!("pattern '{pattern}' has an unclosed '['"))?;
                    tokens.push(set);
                    i = next;
                    continue;
                }
                c => tokens.push(Token::Char(c)),
            }
            i += 1;
        }
        Ok(Self {
            tokens,
            text: pattern.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the whole of `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        // Iterative matching with one backtrack point for the last `*`: linear
        // in practice, never exponential.
        let (mut t, mut n) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match self.tokens.get(t) {
                Some(Token::Star) => {
                    star = Some((t, n));
                    t += 1;
                    continue;
                }
                Some(tok) if tok.matches_one(name[n]) => {
                    t += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((st, sn)) => {
                    star = Some((st, sn + 1));
                    t = st + 1;
                    n = sn + 1;
                }
                None => return false,
            }
        }
        self.tokens[t..].iter().all(|tok| *tok == Token::Star)
    }
}

impl Token {
    fn matches_one(&self, c: char) -> bool {
        match self {
            Token::Char(x) => *x == c,
            Token::Any => true,
            Token::Star => false,
            Token::Set { negated, ranges } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
        }
    }
}

/// `[...]` starting at `chars[start]`; returns the token and the index after `]`.
fn parse_set(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start + 1;
    let negated = matches!(chars.get(i), Some('!') | Some('^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        // A `]` right after `[` (or `[!`) is a literal member, as in shells.
        if c == ']' && !first {
            return Some((Token::Set { negated, ranges }, i + 1));
        }
        first = false;
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
            ranges.push((c, chars[i + 2]));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, name: &str) -> bool {
        Glob::new(p).unwrap().matches(name)
    }

    #[test]
    fn stars_questions_and_literals() {
        assert!(m("web-*", "web-01"));
        assert!(m("web-*", "web-"));
        assert!(!m("web-*", "db-web-01"));
        assert!(m("*web*", "db-web-01"));
        assert!(m("db-?", "db-1"));
        assert!(!m("db-?", "db-10"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("*", ""));
        assert!(m("exact", "exact") && !m("exact", "Exact"));
        // Hostile names match literally.
        assert!(m(r#"web 01,env=prod "x"\y"#, r#"web 01,env=prod "x"\y"#));
        assert!(m("数据*", "数据库"));
    }

    #[test]
    fn sets_ranges_and_negation() {
        assert!(m("db-[0-9]", "db-7"));
        assert!(!m("db-[0-9]", "db-x"));
        assert!(m("db-[!0-9]", "db-x"));
        assert!(m("db-[^0-9]", "db-x"));
        assert!(m("[]x]", "]"));
        assert!(m("[a-c-]", "-"));
        assert!(Glob::new("db-[0-9").unwrap_err().contains("unclosed"));
    }

    #[test]
    fn many_stars_stay_fast() {
        let name = "a".repeat(5000);
        assert!(!m("*a*a*a*a*a*a*a*a*b", &name));
    }
}
