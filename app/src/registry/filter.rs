//! The filter language for searching model versions, shared by the native
//! API (`?filter=`) and the MLflow-compatible API (`filter_string`):
//!
//! ```text
//! metrics.auc > 0.9 and (params.C = '1.0' or tags.stage != 'dev') and status = 'Approved'
//! ```
//!
//! Fields: `metrics.<name>`, `params.<name>`, `tags.<key>` (a name with
//! other characters goes in backticks: ``metrics.`val auc` ``), `status`,
//! `created_at`, `number` (`version`), `model` (`name`), `source`
//! (`training_job` or `artifact`), `artifact_uri` (`source_path`), `run_id`
//! (the training job). Comparisons `= != < <= > >=`, `like` and
//! `ilike` (with `%` and `_`), joined by `and`, `or` and parentheses.
//! Errors name the 1-based position and what was expected there.

use std::fmt;

/// What a comparison looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Metric(String),
    Param(String),
    Tag(String),
    Status,
    CreatedAt,
    Number,
    Model,
    Source,
    ArtifactUri,
    RunId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
}

impl Op {
    pub fn sql(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Like => "like",
            Self::ILike => "ilike",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Text(String),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Compare { field: Field, op: Op, value: Value },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// A syntax error: where (1-based character position) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.message, self.position)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Number(f64),
    Op(Op),
    Open,
    Close,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Self::Word(w) => format!("'{w}'"),
            Self::Quoted(s) => format!("'{s}'"),
            Self::Number(n) => n.to_string(),
            Self::Op(op) => format!("'{}'", op.sql()),
            Self::Open => "'('".into(),
            Self::Close => "')'".into(),
        }
    }
}

/// Longest input accepted, in characters.
pub const MAX_LEN: usize = 4000;

fn tokens(input: &str) -> Result<Vec<(usize, Tok)>, SyntaxError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |position: usize, message: String| SyntaxError { position: position + 1, message };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => {
                out.push((start, Tok::Open));
                i += 1;
            }
            ')' => {
                out.push((start, Tok::Close));
                i += 1;
            }
            '=' => {
                i += if chars.get(i + 1) == Some(&'=') { 2 } else { 1 };
                out.push((start, Tok::Op(Op::Eq)));
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push((start, Tok::Op(Op::Ne)));
                i += 2;
            }
            '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                let ne = c == '<' && chars.get(i + 1) == Some(&'>');
                let op = match (c, eq, ne) {
                    (_, _, true) => Op::Ne,
                    ('<', true, _) => Op::Le,
                    ('<', false, _) => Op::Lt,
                    (_, true, _) => Op::Ge,
                    _ => Op::Gt,
                };
                i += if eq || ne { 2 } else { 1 };
                out.push((start, Tok::Op(op)));
            }
            '\'' | '"' => {
                let quote = c;
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err(start, format!("unterminated string starting with {quote}"))),
                        // a doubled quote stands for itself
                        Some(&q) if q == quote && chars.get(i + 1) == Some(&quote) => {
                            text.push(quote);
                            i += 2;
                        }
                        Some(&q) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            text.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((start, Tok::Quoted(text)));
            }
            c if c.is_ascii_digit() || ((c == '-' || c == '+' || c == '.') && i + 1 < chars.len()) => {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_ascii_alphanumeric()
                        || chars[j] == '.'
                        || ((chars[j] == '-' || chars[j] == '+') && matches!(chars[j - 1], 'e' | 'E')))
                {
                    j += 1;
                }
                let text: String = chars[i..j].iter().collect();
                match text.parse::<f64>() {
                    Ok(n) if n.is_finite() => out.push((start, Tok::Number(n))),
                    _ => return Err(err(start, format!("'{text}' is not a number"))),
                }
                i = j;
            }
            c if c.is_alphabetic() || c == '_' || c == '`' => {
                // a word: letters, digits, `_`, and `.` between parts; a part in backticks takes anything
                let mut word = String::new();
                while i < chars.len() {
                    let ch = chars[i];
                    if ch == '`' {
                        let Some(close) = chars[i + 1..].iter().position(|&x| x == '`') else {
                            return Err(err(i, "unterminated name starting with `".into()));
                        };
                        word.extend(&chars[i + 1..i + 1 + close]);
                        i += close + 2;
                    } else if ch.is_alphanumeric() || ch == '_' || ch == '.' || ch == '-' {
                        word.push(ch);
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push((start, Tok::Word(word)));
            }
            other => return Err(err(start, format!("unexpected '{other}'"))),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    /// 1-based position just past the input
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |(p, _)| p + 1)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn fail<T>(&self, expected: &str, after: Option<&str>) -> Result<T, SyntaxError> {
        let found = self.peek().map_or_else(|| "the end".to_owned(), Tok::describe);
        let after = after.map(|a| format!(" after '{a}'")).unwrap_or_default();
        Err(SyntaxError { position: self.position(), message: format!("expected {expected}{after}, found {found}") })
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.at += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.at += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        if self.peek() == Some(&Tok::Open) {
            self.at += 1;
            let inner = self.or()?;
            if self.peek() != Some(&Tok::Close) {
                return self.fail("')'", None);
            }
            self.at += 1;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, SyntaxError> {
        let Some(Tok::Word(name)) = self.peek().cloned() else {
            return self.fail("a field such as metrics.auc, params.C, tags.stage or status", None);
        };
        let position = self.position();
        let field = field(&name).map_err(|message| SyntaxError { position, message })?;
        self.at += 1;
        let op = match self.peek() {
            Some(Tok::Op(op)) => *op,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("like") => Op::Like,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("ilike") => Op::ILike,
            _ => return self.fail("a comparison (= != < <= > >= like)", Some(&name)),
        };
        self.at += 1;
        let value = match self.peek() {
            Some(Tok::Number(n)) => Value::Number(*n),
            Some(Tok::Quoted(s)) => Value::Text(s.clone()),
            _ => return self.fail("a number or a 'quoted' value", Some(op.sql())),
        };
        let value_position = self.position();
        self.at += 1;
        check(&field, op, &value).map_err(|message| SyntaxError { position: value_position, message })?;
        Ok(Expr::Compare { field, op, value })
    }
}

/// A field name, or what is wrong with it.
fn field(name: &str) -> Result<Field, String> {
    let (head, rest) = name.split_once('.').unwrap_or((name, ""));
    let named = |f: fn(String) -> Field| {
        if rest.is_empty() { Err(format!("name the {head} after '{head}.'")) } else { Ok(f(rest.to_owned())) }
    };
    match head.to_ascii_lowercase().as_str() {
        "metrics" | "metric" => named(Field::Metric),
        "params" | "parameters" | "param" => named(Field::Param),
        "tags" | "tag" => named(Field::Tag),
        _ if !rest.is_empty() => {
            Err(format!("unknown field '{name}': use metrics.<name>, params.<name> or tags.<key>"))
        }
        "status" | "current_stage" => Ok(Field::Status),
        "created_at" | "creation_timestamp" => Ok(Field::CreatedAt),
        "number" | "version" | "version_number" => Ok(Field::Number),
        "model" | "name" => Ok(Field::Model),
        "source" => Ok(Field::Source),
        "artifact_uri" | "source_path" => Ok(Field::ArtifactUri),
        "run_id" | "training_job_id" => Ok(Field::RunId),
        _ => Err(format!(
            "unknown field '{name}': use metrics.<name>, params.<name>, tags.<key>, status, created_at, number, \
             model, source, artifact_uri or run_id"
        )),
    }
}

/// Whether `value` suits `field` and `op`.
fn check(field: &Field, op: Op, value: &Value) -> Result<(), String> {
    let like = matches!(op, Op::Like | Op::ILike);
    match (field, value) {
        (Field::Metric(_) | Field::Number, Value::Number(_)) if !like => Ok(()),
        (Field::Metric(m), _) => Err(format!("metrics.{m} compares with a number using = != < <= > >=")),
        (Field::Number, _) => Err("number compares with a whole number using = != < <= > >=".into()),
        (Field::CreatedAt, Value::Text(t)) if !like => {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map(|_| ())
                .or_else(|_| {
                    time::Date::parse(t, time::macros::format_description!("[year]-[month]-[day]")).map(|_| ())
                })
                .map_err(|_| format!("'{t}' is not a date (2026-12-03) or a time (2026-12-03T10:00:00Z)"))
        }
        (Field::CreatedAt, Value::Number(_)) if !like => Ok(()),
        (Field::CreatedAt, _) => Err("created_at compares with a date or time using = != < <= > >=".into()),
        (Field::Status, Value::Text(s)) if matches!(op, Op::Eq | Op::Ne) => {
            if ["PendingManualApproval", "Approved", "Rejected", "Archived"].contains(&s.as_str()) {
                Ok(())
            } else {
                Err(format!("'{s}' is not a status: use PendingManualApproval, Approved, Rejected or Archived"))
            }
        }
        (Field::Status, _) => Err("status compares with = or != and a 'quoted' status".into()),
        (Field::RunId, Value::Text(s)) if matches!(op, Op::Eq | Op::Ne) => {
            uuid::Uuid::parse_str(s).map(|_| ()).map_err(|_| format!("'{s}' is not a training job id"))
        }
        (Field::RunId, _) => Err("run_id compares with = or != and a 'quoted' training job id".into()),
        (Field::Param(_) | Field::Tag(_) | Field::Model | Field::Source | Field::ArtifactUri, Value::Text(_)) => Ok(()),
        (Field::Param(_) | Field::Tag(_) | Field::Model | Field::Source | Field::ArtifactUri, Value::Number(_)) => {
            Err("compare this field with a 'quoted' value".into())
        }
    }
}

/// Parses a filter; an empty one (only blanks) is `None`.
pub fn parse(input: &str) -> Result<Option<Expr>, SyntaxError> {
    let len = input.chars().count();
    if len > MAX_LEN {
        return Err(SyntaxError {
            position: MAX_LEN + 1,
            message: format!("a filter has at most {MAX_LEN} characters"),
        });
    }
    let toks = tokens(input)?;
    if toks.is_empty() {
        return Ok(None);
    }
    let mut parser = Parser { toks, at: 0, end: len + 1 };
    let expr = parser.or()?;
    if parser.peek().is_some() {
        return parser.fail("'and', 'or' or the end", None);
    }
    Ok(Some(expr))
}

/// How versions are ordered: a field and a direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub key: OrderKey,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrderKey {
    Metric(String),
    CreatedAt,
    Number,
}

/// Parses `metrics.auc desc`, `created_at`, `number asc` (default: `created_at desc`).
pub fn order(input: &str) -> Result<Order, SyntaxError> {
    let words: Vec<&str> = input.split_whitespace().collect();
    let err = |position: usize, message: String| SyntaxError { position, message };
    let descending = match words.get(1).map(|w| w.to_ascii_lowercase()) {
        None => true,
        Some(w) if w == "desc" => true,
        Some(w) if w == "asc" => false,
        Some(w) => {
            return Err(err(input.find(words[1]).unwrap_or(0) + 1, format!("expected asc or desc, found '{w}'")));
        }
    };
    if words.len() > 2 {
        return Err(err(input.find(words[2]).unwrap_or(0) + 1, "expected the end after the direction".into()));
    }
    let key = match words.first().map(|w| field(w.trim_matches('`'))) {
        None => OrderKey::CreatedAt,
        Some(Ok(Field::Metric(m))) => OrderKey::Metric(m.trim_matches('`').to_owned()),
        Some(Ok(Field::CreatedAt)) => OrderKey::CreatedAt,
        Some(Ok(Field::Number)) => OrderKey::Number,
        Some(_) => return Err(err(1, "order by metrics.<name>, created_at or number".into())),
    };
    Ok(Order { key, descending })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> Expr {
        parse(input).expect("parses").expect("not empty")
    }

    fn err(input: &str) -> SyntaxError {
        parse(input).expect_err("refused")
    }

    fn cmp(field: Field, op: Op, value: Value) -> Expr {
        Expr::Compare { field, op, value }
    }

    #[test]
    fn parses_comparisons_with_precedence_and_parentheses() {
        let e = ok("metrics.auc > 0.9 and (params.C = '1.0' or tags.stage != \"dev\")");
        let expected = Expr::And(
            Box::new(cmp(Field::Metric("auc".into()), Op::Gt, Value::Number(0.9))),
            Box::new(Expr::Or(
                Box::new(cmp(Field::Param("C".into()), Op::Eq, Value::Text("1.0".into()))),
                Box::new(cmp(Field::Tag("stage".into()), Op::Ne, Value::Text("dev".into()))),
            )),
        );
        assert_eq!(e, expected);
        // `and` binds tighter than `or`
        let e = ok("number = 1 or number = 2 and status = 'Approved'");
        assert!(matches!(e, Expr::Or(_, r) if matches!(*r, Expr::And(..))));
        assert_eq!(parse("  ").expect("blank parses"), None);
        let e = ok("metrics.`val auc` >= -1e-3 AND name LIKE 'churn%'");
        assert_eq!(
            e,
            Expr::And(
                Box::new(cmp(Field::Metric("val auc".into()), Op::Ge, Value::Number(-1e-3))),
                Box::new(cmp(Field::Model, Op::Like, Value::Text("churn%".into())))
            )
        );
        assert_eq!(ok("tags.note = 'it''s'"), cmp(Field::Tag("note".into()), Op::Eq, Value::Text("it's".into())));
    }

    #[test]
    fn errors_name_the_position_and_what_was_expected() {
        let e = err("metrics.auc");
        assert_eq!(
            e.to_string(),
            "expected a comparison (= != < <= > >= like) after 'metrics.auc', found the end at 12"
        );
        let e = err("metrics.auc > 0.9 and");
        assert_eq!(e.position, 22);
        assert!(e.message.starts_with("expected a field"), "{e}");
        let e = err("metrics.auc > 'high'");
        assert_eq!((e.position, e.message.contains("with a number")), (15, true), "{e}");
        let e = err("(metrics.auc > 1");
        assert_eq!((e.position, e.message.as_str()), (17, "expected ')', found the end"));
        let e = err("colour = 'red'");
        assert_eq!(e.position, 1);
        assert!(e.message.starts_with("unknown field 'colour'"), "{e}");
        let e = err("status = 'Shipped'");
        assert!(e.message.contains("not a status"), "{e}");
        let e = err("tags.x = 'open");
        assert_eq!((e.position, e.message.starts_with("unterminated")), (10, true));
        let e = err("metrics.auc > 1 metrics.loss < 2");
        assert_eq!((e.position, e.message.as_str()), (17, "expected 'and', 'or' or the end, found 'metrics.loss'"));
        assert!(parse("created_at > 'yesterday'").is_err());
        assert!(parse("created_at > '2026-12-01'").is_ok());
        assert!(parse("metrics. > 1").is_err());
    }

    #[test]
    fn order_by() {
        assert_eq!(order("").expect("orders"), Order { key: OrderKey::CreatedAt, descending: true });
        assert_eq!(
            order("metrics.auc desc").expect("orders"),
            Order { key: OrderKey::Metric("auc".into()), descending: true }
        );
        assert_eq!(order("number asc").expect("orders"), Order { key: OrderKey::Number, descending: false });
        assert!(order("metrics.auc sideways").is_err());
        assert!(order("params.C").is_err());
    }
}
