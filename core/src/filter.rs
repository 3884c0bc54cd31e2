//! # `filter=` and `sort=` query parameters
//!
//! Every list endpoint accepts `filter=` (which items) and `sort=` (in which order).
//! This module parses both, prints a filter back in canonical form, and compiles it to a
//! MongoDB query against a per-resource whitelist of fields ([`Resource`]).
//!
//! ## Filter grammar
//!
//! ```text
//! filter    = operand { "&" operand }          (all must hold)
//!           | operand { "|" operand }          (at least one must hold)
//! operand   = condition | "(" filter ")"       (a group)
//! condition = "(" field "," op "," value ")"
//! field     = name { "." segment }   name = [A-Za-z_][A-Za-z0-9_]*   segment = [A-Za-z0-9_]+
//! op        = eq | ne | in | nin | gt | gte | lt | lte | regex | exists     (lowercase)
//! value     = scalar | "[" scalar { "," scalar } "]"
//! scalar    = unquoted | quoted
//! unquoted  = characters other than , ( ) [ ] "   (trimmed; must not be empty)
//! quoted    = '"' { any character but '"' and '\' | '\"' | '\\' } '"'
//! ```
//!
//! Examples: `(senderId,eq,u1)`, `(createdAt,gte,1700000000000)&(type,in,[text,file])`,
//! `((status,eq,read)|(status,eq,sent))&(meta.priority,gt,2)`, `(name,eq,"a, (b)")`.
//!
//! * ASCII whitespace between tokens is ignored. Inside quotes it is kept; an unquoted
//!   value loses only its leading and trailing whitespace.
//! * A group opens with `(` followed (after optional whitespace) by another `(`; a condition
//!   opens with `(` followed by a field name. Redundant parentheses such as `((a,eq,1))`
//!   are accepted and disappear from the parsed tree.
//! * `&` and `|` cannot be mixed at one level: `(a,eq,1)&(b,eq,2)|(c,eq,3)` is an error
//!   (reported at the `|`); write `((a,eq,1)&(b,eq,2))|(c,eq,3)`. A parenthesised group of
//!   the same kind, e.g. `(a,eq,1)&((b,eq,2)&(c,eq,3))`, is legal and kept as written.
//! * `in` and `nin` take a list; a single scalar is accepted as a one-element list (parsed
//!   as, and printed back as, `[value]`). Every other op takes one scalar; `exists` takes the
//!   unquoted word `true` or `false`.
//! * A quoted value may be empty (`""`). Inside quotes `\"` and `\\` are the only escapes;
//!   any other backslash there is an error. Outside quotes `\` is an ordinary character.
//! * Limits: at most 2,000 bytes, 50 conditions, 12 operands per `&`/`|` level, 1 to 100
//!   values per list, and groups nested at most 4 deep. Every `( filter )` counts as a group,
//!   a redundant one too; a condition's own parentheses do not: `(((((a,eq,1)))))` is the
//!   deepest accepted form of one condition.
//! * An empty filter is an error; callers treat an absent `filter=` as "no filter".
//! * Canonical form (what `Display` prints): no whitespace, every nested group in
//!   parentheses, values quoted only when they were quoted or must be.
//!
//! ## Sort grammar
//!
//! `sort = key { "," key }`, `key = "(" field "," ("asc" | "desc") ")"`: 1 to 3 keys, no
//! field twice, e.g. `(createdAt,desc),(name,asc)`. Only sortable fields are accepted.
//!
//! ## Meaning (compilation to MongoDB)
//!
//! * Only the resource's fields can be used, plus `meta.<key>` (key `^[A-Za-z0-9_]{1,100}$`,
//!   exactly one segment) where the resource allows meta. Errors list the allowed fields.
//! * Values are typed by the field whatever their quoting: a string field compares strings
//!   (`(name,eq,123)` matches the string `"123"`), an integer field needs an `i64`, a
//!   true/false field needs `true` or `false`, an enum field one of its values. Meta values
//!   have no declared type, so quoting decides: quoted is always a string (`"123"`,
//!   `"true"`); unquoted `true`/`false` is a boolean, `null` is null, an integer is an
//!   `i64`, a decimal such as `1.5` a double, and anything else a string.
//! * `gt gte lt lte` do not apply to true/false fields. `ne` and `nin` also match items
//!   that lack the field (MongoDB semantics). `exists` works on every field.
//! * `regex` is **not** a regular expression: it finds the value as literal text,
//!   case-insensitively, anywhere in the field; a leading `^` means "starts with" and a
//!   trailing `$` "ends with", every other character is literal (so no pattern can
//!   backtrack; a literal `^` first or `$` last cannot be searched for). The text without
//!   anchors is 1 to 100 characters. String and meta fields only.
//! * A meta integer beyond the `i64` range is an error (quote it to compare as a string).
//! * Values only ever become BSON strings, numbers, booleans or null: no client text can
//!   become an operator or a `$` key.
//!
//! Error positions are 0-based byte offsets into the input; compile errors point at the
//! `(` of the offending condition or sort key.

use std::fmt::{self, Write as _};

use bson::{Bson, Document};

/// Longest accepted `filter=` or `sort=` input, in bytes.
pub const MAX_INPUT: usize = 2000;
/// Most conditions in one filter.
pub const MAX_CONDS: usize = 50;
/// Most operands joined by `&` or `|` at one level.
pub const MAX_OPERANDS: usize = 12;
/// Deepest nesting of parenthesised groups.
pub const MAX_DEPTH: usize = 4;
/// Most values in one `[..]` list.
pub const MAX_LIST: usize = 100;
/// Most keys in one `sort=`.
pub const MAX_SORT_KEYS: usize = 3;
/// Longest `regex` search text, in characters (anchors not counted).
pub const MAX_REGEX_CHARS: usize = 100;

/// A parse or compile error, at a 0-based byte offset into the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct FilterError {
    /// 0-based byte offset into the input where the problem was found.
    pub position: usize,
    /// What is wrong, for a human.
    pub message: String,
}

fn fail<T>(position: usize, message: impl Into<String>) -> Result<T, FilterError> {
    let message = message.into();
    Err(FilterError { position, message })
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// A single condition.
    Cond(Cond),
    /// All operands must hold (`&`); [`parse`] always yields 2..=12 operands.
    And(Vec<Expr>),
    /// At least one operand must hold (`|`); [`parse`] always yields 2..=12 operands.
    Or(Vec<Expr>),
}

/// One `(field,op,value)` condition.
///
/// `at` is diagnostic only and **ignored by `PartialEq`**, so a parsed tree equals the tree
/// parsed from its canonical text although the offsets differ.
#[derive(Debug, Clone, Eq)]
pub struct Cond {
    /// Field as the client wrote it, e.g. `senderId` or `meta.priority`.
    pub field: String,
    /// The operator.
    pub op: Op,
    /// The operand; always a `Value::List` for `in`/`nin` when produced by [`parse`].
    pub value: Value,
    /// Byte offset of the condition's opening `(` in the input (0 when built by hand).
    pub at: usize,
}

impl PartialEq for Cond {
    fn eq(&self, other: &Self) -> bool {
        (&self.field, self.op, &self.value) == (&other.field, other.op, &other.value)
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal (also matches a missing field).
    Ne,
    /// Equal to one of the list.
    In,
    /// Equal to none of the list (also matches a missing field).
    Nin,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// Contains the literal text, case-insensitively, with optional `^`/`$` anchors.
    Regex,
    /// The field is present (`true`) or absent (`false`).
    Exists,
}

const OP_NAMES: [&str; 10] = [
    "eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "regex", "exists",
];

impl Op {
    /// Every operator, in documentation order.
    pub const ALL: [Op; 10] = {
        use Op::{Eq, Exists, Gt, Gte, In, Lt, Lte, Ne, Nin, Regex};
        [Eq, Ne, In, Nin, Gt, Gte, Lt, Lte, Regex, Exists]
    };

    /// The operator as written in a filter, e.g. `"gte"`; MongoDB's name is `$` + this.
    pub fn as_str(&self) -> &'static str {
        OP_NAMES[*self as usize]
    }
}

/// The operand of a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A single value.
    Scalar(Scalar),
    /// A `[..]` list of values.
    List(Vec<Scalar>),
}

/// One value as written: its text (quotes and escapes removed) and whether it was quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    /// The value's text, unescaped.
    pub text: String,
    /// Whether it was written in double quotes (matters for `meta.*` typing).
    pub quoted: bool,
}

/// One `(field,asc|desc)` sort key. `at` is diagnostic only and ignored by `PartialEq`.
#[derive(Debug, Clone, Eq)]
pub struct SortKey {
    /// Field as the client wrote it.
    pub field: String,
    /// `true` for `desc`.
    pub descending: bool,
    /// Byte offset of the key's opening `(` in the input (0 when built by hand).
    pub at: usize,
}

impl PartialEq for SortKey {
    fn eq(&self, other: &Self) -> bool {
        (&self.field, self.descending) == (&other.field, other.descending)
    }
}

fn is_ws(c: char) -> bool {
    c.is_ascii_whitespace()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Byte-level scanner. It only ever stops at ASCII bytes, so every slice is on a char boundary.
struct Parser<'a> {
    s: &'a str,
    pos: usize,
    conds: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str, what: &str) -> Result<Self, FilterError> {
        if s.len() > MAX_INPUT {
            let n = s.len();
            let message = format!("{what} is {n} bytes long; at most {MAX_INPUT} allowed");
            return fail(MAX_INPUT, message);
        }
        if s.trim_matches(is_ws).is_empty() {
            return fail(0, format!("{what} is empty"));
        }
        let (pos, conds) = (0, 0);
        Ok(Parser { s, pos, conds })
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, FilterError> {
        fail(self.pos, message)
    }

    /// "expected {what}, found {the character here}" at the current position.
    fn unexpected<T>(&self, what: &str) -> Result<T, FilterError> {
        let found = match self.s.get(self.pos..).and_then(|t| t.chars().next()) {
            Some(c) => format!("'{c}'"),
            None => "end of input".to_string(),
        };
        self.err(format!("expected {what}, found {found}"))
    }

    fn require(&mut self, c: u8, what: &str) -> Result<(), FilterError> {
        self.ws();
        if self.peek() != Some(c) {
            return self.unexpected(&format!("'{}' {what}", c as char));
        }
        self.pos += 1;
        Ok(())
    }

    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_word) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    fn field(&mut self) -> Result<String, FilterError> {
        self.ws();
        let start = self.pos;
        let starts_well = self
            .peek()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
        if !starts_well {
            return self.unexpected("a field name");
        }
        self.word();
        while self.peek() == Some(b'.') {
            self.pos += 1;
            if self.word().is_empty() {
                return self.unexpected("a name after '.'");
            }
        }
        Ok(self.s[start..self.pos].to_string())
    }

    /// Reads a word that must be one of `choices`; fails at the word's start otherwise.
    fn keyword<T: Copy>(&mut self, choices: &[(&str, T)], what: &str) -> Result<T, FilterError> {
        self.ws();
        let at = self.pos;
        let w = self.word();
        if let Some((_, v)) = choices.iter().find(|(name, _)| *name == w) {
            return Ok(*v);
        }
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        let what = format!("{what} ({})", names.join(", "));
        if w.is_empty() {
            return self.unexpected(&what);
        }
        fail(at, format!("expected {what}, found '{w}'"))
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let mut items = vec![self.operand(depth)?];
        let mut sep = None;
        loop {
            self.ws();
            let Some(c @ (b'&' | b'|')) = self.peek() else {
                break;
            };
            if sep.is_some_and(|s| s != c) {
                return self.err("cannot mix '&' and '|' at one level; add parentheses");
            }
            sep = Some(c);
            self.pos += 1;
            self.ws();
            if items.len() == MAX_OPERANDS {
                return self.err(format!("more than {MAX_OPERANDS} operands at one level"));
            }
            items.push(self.operand(depth)?);
        }
        Ok(match sep {
            Some(b'&') => Expr::And(items),
            Some(_) => Expr::Or(items),
            None => items.swap_remove(0),
        })
    }

    fn operand(&mut self, depth: usize) -> Result<Expr, FilterError> {
        self.ws();
        let at = self.pos;
        self.require(b'(', "to open a condition or group")?;
        self.ws();
        if self.peek() != Some(b'(') {
            return self.cond(at);
        }
        if depth == MAX_DEPTH {
            return fail(at, format!("groups are nested more than {MAX_DEPTH} deep"));
        }
        let inner = self.expr(depth + 1)?;
        self.require(b')', "or '&' or '|'")?;
        Ok(inner)
    }

    fn cond(&mut self, at: usize) -> Result<Expr, FilterError> {
        self.conds += 1;
        if self.conds > MAX_CONDS {
            return fail(at, format!("more than {MAX_CONDS} conditions"));
        }
        let field = self.field()?;
        self.require(b',', "after the field name")?;
        let ops: Vec<(&str, Op)> = Op::ALL.iter().map(|o| (o.as_str(), *o)).collect();
        let op = self.keyword(&ops, "an operator")?;
        self.require(b',', "after the operator")?;
        self.ws();
        let value_at = self.pos;
        let value = match op {
            Op::In | Op::Nin if self.peek() == Some(b'[') => self.list()?,
            Op::In | Op::Nin => Value::List(vec![self.scalar()?]),
            _ if self.peek() == Some(b'[') => {
                let op = op.as_str();
                return fail(value_at, format!("{op} takes one value, not a list"));
            }
            _ => Value::Scalar(self.scalar()?),
        };
        let bool_word = matches!(&value, Value::Scalar(s) if !s.quoted && is_bool(&s.text));
        if op == Op::Exists && !bool_word {
            return fail(value_at, "exists takes true or false");
        }
        self.require(b')', "to close the condition")?;
        Ok(Expr::Cond(Cond {
            field,
            op,
            value,
            at,
        }))
    }

    fn list(&mut self) -> Result<Value, FilterError> {
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b']') {
            return fail(self.pos, format!("empty list; give 1 to {MAX_LIST} values"));
        }
        let mut items = Vec::new();
        loop {
            self.ws();
            if items.len() == MAX_LIST {
                return fail(self.pos, format!("more than {MAX_LIST} values in a list"));
            }
            items.push(self.scalar()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => break,
                _ => return self.unexpected("',' or ']' in the list"),
            }
        }
        self.pos += 1;
        Ok(Value::List(items))
    }

    fn scalar(&mut self) -> Result<Scalar, FilterError> {
        self.ws();
        let start = self.pos;
        if self.peek() == Some(b'"') {
            return self.quoted();
        }
        while self.peek().is_some_and(|b| !b",()[]\"".contains(&b)) {
            self.pos += 1;
        }
        if self.peek() == Some(b'"') {
            return self.err("'\"' inside an unquoted value; quote the whole value");
        }
        let text = self.s[start..self.pos].trim_end_matches(is_ws).to_string();
        if text.is_empty() {
            return self.unexpected("a value");
        }
        let quoted = false;
        Ok(Scalar { text, quoted })
    }

    fn quoted(&mut self) -> Result<Scalar, FilterError> {
        let open = self.pos;
        self.pos += 1;
        let (mut text, mut from) = (String::new(), self.pos);
        loop {
            match self.peek() {
                None => return fail(open, "unterminated quoted value"),
                Some(b'"') => break,
                Some(b'\\') => {
                    text.push_str(&self.s[from..self.pos]);
                    match self.s.as_bytes().get(self.pos + 1) {
                        Some(&c @ (b'"' | b'\\')) => text.push(c as char),
                        _ => return self.err(r#"invalid escape; only \" and \\ are allowed"#),
                    }
                    self.pos += 2;
                    from = self.pos;
                }
                Some(_) => self.pos += 1,
            }
        }
        text.push_str(&self.s[from..self.pos]);
        self.pos += 1;
        Ok(Scalar { text, quoted: true })
    }
}

fn is_bool(t: &str) -> bool {
    t == "true" || t == "false"
}

/// Parses a `filter=` value (see the module docs for the grammar).
pub fn parse(input: &str) -> Result<Expr, FilterError> {
    let mut p = Parser::new(input, "filter")?;
    let e = p.expr(0)?;
    p.ws();
    if p.pos < input.len() {
        return p.unexpected("'&', '|' or end of input");
    }
    Ok(e)
}

/// Parses a `sort=` value: 1 to 3 comma-separated `(field,asc|desc)` keys, no field twice.
pub fn parse_sort(input: &str) -> Result<Vec<SortKey>, FilterError> {
    let mut p = Parser::new(input, "sort")?;
    let mut keys: Vec<SortKey> = Vec::new();
    loop {
        p.ws();
        let at = p.pos;
        if keys.len() == MAX_SORT_KEYS {
            return fail(at, format!("more than {MAX_SORT_KEYS} sort keys"));
        }
        p.require(b'(', "to open a sort key")?;
        let field = p.field()?;
        p.require(b',', "after the field name")?;
        let descending = p.keyword(&[("asc", false), ("desc", true)], "a direction")?;
        p.require(b')', "to close the sort key")?;
        if keys.iter().any(|k| k.field == field) {
            return fail(at, format!("'{field}' is sorted on twice"));
        }
        keys.push(SortKey {
            field,
            descending,
            at,
        });
        p.ws();
        match p.peek() {
            None => return Ok(keys),
            Some(b',') => p.pos += 1,
            Some(_) => return p.unexpected("',' or end of input"),
        }
    }
}

fn needs_quotes(text: &str) -> bool {
    let special = text.contains([',', '(', ')', '[', ']', '"']);
    special || text.is_empty() || text.starts_with(is_ws) || text.ends_with(is_ws)
}

/// Prints the value, in quotes when it was quoted or when it must be.
impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.quoted && !needs_quotes(&self.text) {
            return f.write_str(&self.text);
        }
        f.write_char('"')?;
        for c in self.text.chars() {
            if c == '"' || c == '\\' {
                f.write_char('\\')?;
            }
            f.write_char(c)?;
        }
        f.write_char('"')
    }
}

/// Prints a scalar, or a list as `[a,b]`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items = match self {
            Value::Scalar(s) => return s.fmt(f),
            Value::List(items) => items,
        };
        f.write_char('[')?;
        for (i, s) in items.iter().enumerate() {
            write!(f, "{}{s}", if i > 0 { "," } else { "" })?;
        }
        f.write_char(']')
    }
}

/// Prints `(field,op,value)`.
impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({},{},{})", self.field, self.op.as_str(), self.value)
    }
}

/// Canonical text without whitespace; nested `&`/`|` groups are parenthesised.
/// For every `e` from [`parse`], `parse(&e.to_string()) == Ok(e)`.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (items, sep) = match self {
            Expr::Cond(c) => return c.fmt(f),
            Expr::And(items) => (items, "&"),
            Expr::Or(items) => (items, "|"),
        };
        for (i, e) in items.iter().enumerate() {
            f.write_str(if i > 0 { sep } else { "" })?;
            match e {
                Expr::Cond(c) => c.fmt(f)?,
                _ => write!(f, "({e})")?,
            }
        }
        Ok(())
    }
}

/// The type of a filterable field, which decides how values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Compared as a string, whatever the text looks like.
    Str,
    /// A 64-bit signed integer (e.g. a timestamp in milliseconds); compiled to BSON Int64.
    Int,
    /// `true` or `false`; no range operators.
    Bool,
    /// A string restricted to the listed values.
    Enum(&'static [&'static str]),
}

/// A filterable field of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// What the client writes, e.g. `senderId`.
    pub name: &'static str,
    /// The stored document path, e.g. `lastMessage.createdAt`.
    pub path: &'static str,
    /// How values are typed.
    pub kind: Kind,
    /// Whether an index serves conditions on this field (see [`uses_only_indexed`]).
    pub indexed: bool,
}

impl Field {
    /// A field served by an index.
    pub const fn indexed(name: &'static str, path: &'static str, kind: Kind) -> Self {
        Self {
            name,
            path,
            kind,
            indexed: true,
        }
    }

    /// A field whose conditions scan (bounded by [`SCAN_MAX_TIME`]).
    pub const fn scanned(name: &'static str, path: &'static str, kind: Kind) -> Self {
        Self {
            name,
            path,
            kind,
            indexed: false,
        }
    }
}

/// The whitelist of what a list endpoint can filter and sort on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// Human name used in error text, e.g. `dialog messages`.
    pub name: &'static str,
    /// Filterable fields.
    pub fields: &'static [Field],
    /// Stored path prefix for `meta.<key>` (e.g. `meta`); `None` = meta is not filterable.
    pub meta: Option<&'static str>,
    /// Sortable client field -> stored path (only orders an index serves).
    pub sorts: &'static [(&'static str, &'static str)],
}

fn kind_name(kind: Option<Kind>) -> String {
    match kind {
        Some(Kind::Str) => "string".into(),
        Some(Kind::Int) => "integer".into(),
        Some(Kind::Bool) => "true/false".into(),
        Some(Kind::Enum(vals)) => format!("one of {}", vals.join("|")),
        None => "string, number, true/false or null".into(),
    }
}

/// Whether `op` applies to a field of `kind` (`None` = a meta field).
fn allowed(op: Op, kind: Option<Kind>) -> bool {
    match op {
        Op::Regex => matches!(kind, None | Some(Kind::Str)),
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => kind != Some(Kind::Bool),
        _ => true,
    }
}

fn join_or(names: Vec<&str>, none: &str) -> String {
    if names.is_empty() {
        return none.to_string();
    }
    names.join(", ")
}

fn describe_field(name: &str, kind: Option<Kind>) -> String {
    let ops = Op::ALL.iter().filter(|o| allowed(**o, kind));
    let ops = ops.map(Op::as_str).collect::<Vec<_>>().join(" ");
    format!("{name} ({}: {ops})", kind_name(kind))
}

impl Resource {
    /// A human list of the filterable fields (with type and operators) and of the sortable
    /// fields, e.g. `messages: filter by createdAt (integer: eq ne ...), ...; sort by createdAt`.
    pub fn describe(&self) -> String {
        let mut fields: Vec<String> = Vec::new();
        for f in self.fields {
            fields.push(describe_field(f.name, Some(f.kind)));
        }
        if self.meta.is_some() {
            fields.push(describe_field("meta.<key>", None));
        }
        let fields = join_or(fields.iter().map(String::as_str).collect(), "nothing");
        let (name, sortable) = (self.name, self.sortable());
        format!("{name}: filter by {fields}; sort by {sortable}")
    }

    fn filterable(&self) -> String {
        let meta = self.meta.map(|_| "meta.<key>");
        join_or(
            self.fields.iter().map(|f| f.name).chain(meta).collect(),
            "none",
        )
    }

    fn sortable(&self) -> String {
        join_or(self.sorts.iter().map(|(n, _)| *n).collect(), "nothing")
    }
}

/// Resolves a condition's field to its stored path and kind (`None` = meta).
fn resolve(c: &Cond, r: &Resource) -> Result<(String, Option<Kind>), FilterError> {
    if let Some(f) = r.fields.iter().find(|f| f.name == c.field) {
        return Ok((f.path.to_string(), Some(f.kind)));
    }
    if let (Some(prefix), Some(key)) = (r.meta, c.field.strip_prefix("meta.")) {
        if (1..=100).contains(&key.len()) && key.bytes().all(is_word) {
            return Ok((format!("{prefix}.{key}"), None));
        }
        let field = &c.field;
        return fail(
            c.at,
            format!("'{field}': a meta key is 1 to 100 of A-Z a-z 0-9 _"),
        );
    }
    let (field, name, allowed) = (&c.field, r.name, r.filterable());
    fail(
        c.at,
        format!("unknown field '{field}' in {name}; allowed: {allowed}"),
    )
}

fn int(t: &str) -> Option<i64> {
    let digits = t.strip_prefix('-').unwrap_or(t);
    let ok = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| t.parse().ok()).flatten()
}

/// `-?[0-9]+(\.[0-9]+)?`
fn is_number(t: &str) -> bool {
    let t = t.strip_prefix('-').unwrap_or(t);
    let (whole, frac) = t.split_once('.').unwrap_or((t, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(frac)
}

/// Converts one value to BSON according to the field's kind (`None` = meta).
fn typed(c: &Cond, kind: Option<Kind>, s: &Scalar) -> Result<Bson, FilterError> {
    let t = s.text.as_str();
    let bad = |what: &str| fail(c.at, format!("{} {what}, got '{t}'", c.field));
    match kind {
        Some(Kind::Str) => Ok(Bson::String(t.into())),
        Some(Kind::Int) => int(t).map_or_else(|| bad("takes an integer"), |n| Ok(Bson::Int64(n))),
        Some(Kind::Bool) if is_bool(t) => Ok(Bson::Boolean(t == "true")),
        Some(Kind::Bool) => bad("takes true or false"),
        Some(Kind::Enum(vals)) if vals.contains(&t) => Ok(Bson::String(t.into())),
        Some(Kind::Enum(vals)) => bad(&format!("takes one of {}", vals.join(", "))),
        None if s.quoted || !(is_bool(t) || t == "null" || is_number(t)) => {
            Ok(Bson::String(t.into()))
        }
        None if is_bool(t) => Ok(Bson::Boolean(t == "true")),
        None if t == "null" => Ok(Bson::Null),
        None => match (int(t), t.parse::<f64>()) {
            (Some(n), _) => Ok(Bson::Int64(n)),
            (None, Ok(x)) if t.contains('.') && x.is_finite() => Ok(Bson::Double(x)),
            _ => bad("is out of range; quote it to compare as a string"),
        },
    }
}

/// Builds a case-insensitive regex that finds `text` literally, with optional anchors.
fn literal_regex(text: &str) -> Result<bson::Regex, String> {
    let (start, rest) = text.strip_prefix('^').map_or((false, text), |r| (true, r));
    let (body, end) = rest.strip_suffix('$').map_or((rest, false), |b| (b, true));
    if !(1..=MAX_REGEX_CHARS).contains(&body.chars().count()) {
        return Err(format!(
            "regex text must be 1 to {MAX_REGEX_CHARS} characters besides ^ $"
        ));
    }
    let mut pattern = String::from(if start { "^" } else { "" });
    for ch in body.chars() {
        if ch.is_ascii_control() {
            // Keeps NUL (not allowed in a BSON cstring) and friends out of the pattern.
            let _ = write!(pattern, "\\x{:02x}", ch as u32);
        } else {
            // A backslash before ASCII punctuation always stands for the character itself.
            if ch.is_ascii_punctuation() && ch != '_' {
                pattern.push('\\');
            }
            pattern.push(ch);
        }
    }
    pattern.push_str(if end { "$" } else { "" });
    let options = "i".to_string();
    Ok(bson::Regex { pattern, options })
}

fn single(c: &Cond) -> Result<&Scalar, FilterError> {
    let op = c.op.as_str();
    match &c.value {
        Value::Scalar(s) => Ok(s),
        Value::List(_) => fail(c.at, format!("{op} takes one value, not a list")),
    }
}

fn compile_cond(c: &Cond, r: &Resource) -> Result<Document, FilterError> {
    let (path, kind) = resolve(c, r)?;
    if !allowed(c.op, kind) {
        let (op, k) = (c.op.as_str(), kind_name(kind));
        return fail(c.at, format!("{op} does not apply to {} ({k})", c.field));
    }
    let value = match c.op {
        Op::Exists if is_bool(&single(c)?.text) => Bson::Boolean(single(c)?.text == "true"),
        Op::Exists => return fail(c.at, "exists takes true or false"),
        Op::Regex => match literal_regex(&single(c)?.text) {
            Ok(re) => Bson::RegularExpression(re),
            Err(message) => return fail(c.at, message),
        },
        Op::In | Op::Nin => {
            let items = match &c.value {
                Value::Scalar(s) => std::slice::from_ref(s),
                Value::List(items) => items.as_slice(),
            };
            let values = items.iter().map(|s| typed(c, kind, s));
            Bson::Array(values.collect::<Result<_, _>>()?)
        }
        _ => typed(c, kind, single(c)?)?,
    };
    let mut inner = Document::new();
    inner.insert(format!("${}", c.op.as_str()), value);
    let mut doc = Document::new();
    doc.insert(path, inner);
    Ok(doc)
}

/// Compiles a filter to a MongoDB query document, checking it against the whitelist.
///
/// A condition becomes `{path: {"$op": value}}`, `&` becomes `{"$and": [..]}` and `|`
/// becomes `{"$or": [..]}`; no other `$` key is ever produced.
pub fn compile(expr: &Expr, r: &Resource) -> Result<Document, FilterError> {
    let (items, key) = match expr {
        Expr::Cond(c) => return compile_cond(c, r),
        Expr::And(items) => (items, "$and"),
        Expr::Or(items) => (items, "$or"),
    };
    if items.is_empty() {
        return fail(0, "empty group");
    }
    let docs = items.iter().map(|e| compile(e, r).map(Bson::Document));
    let mut doc = Document::new();
    doc.insert(key, docs.collect::<Result<Vec<_>, _>>()?);
    Ok(doc)
}

/// Compiles sort keys to an ordered `{path: 1 | -1}` document; only `r.sorts` are allowed.
pub fn compile_sort(keys: &[SortKey], r: &Resource) -> Result<Document, FilterError> {
    let mut doc = Document::new();
    for k in keys {
        let Some((_, path)) = r.sorts.iter().find(|(name, _)| *name == k.field) else {
            let (name, field, sortable) = (r.name, &k.field, r.sortable());
            return fail(
                k.at,
                format!("cannot sort {name} by '{field}'; sortable: {sortable}"),
            );
        };
        if doc.contains_key(*path) {
            return fail(k.at, format!("'{}' is sorted on twice", k.field));
        }
        doc.insert(*path, if k.descending { -1 } else { 1 });
    }
    Ok(doc)
}

/// True when every condition's field is a whitelisted field marked `indexed`
/// (`meta.*` and unknown fields count as not indexed).
pub fn uses_only_indexed(expr: &Expr, r: &Resource) -> bool {
    match expr {
        Expr::Cond(c) => r.fields.iter().any(|f| f.name == c.field && f.indexed),
        Expr::And(items) | Expr::Or(items) => items.iter().all(|e| uses_only_indexed(e, r)),
    }
}

/// How long a list whose filter uses a field without an index may scan before it is refused
/// (400 `filter_too_expensive`); index-backed lists are not limited.
pub const SCAN_MAX_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// A list's `filter=` and `sort=`, compiled for one resource. The default is no filter, the
/// list's own order.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Conditions to add to the list's own scope (tenant, dialog, ...); empty: none.
    pub filter: Document,
    /// The order asked for; empty: the list's default order.
    pub sort: Document,
    /// Every condition is on an indexed field (else the scan is time-bounded).
    pub indexed: bool,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            filter: Document::new(),
            sort: Document::new(),
            indexed: true,
        }
    }
}

impl ListQuery {
    /// Compiles the parameters as given (absent: no filter, default order). A malformed or
    /// disallowed filter is a 400 `invalid_filter`, a sort a 400 `invalid_sort`, each naming
    /// the position.
    pub fn of(filter: Option<&str>, sort: Option<&str>, r: &Resource) -> crate::Result<Self> {
        // A grammar error names the position; a field or value the list does not take also
        // lists what it takes.
        let refused = |code: &'static str, what: &str, allowed: bool, e: FilterError| {
            let mut details = serde_json::json!({"position": e.position});
            if allowed {
                details["allowed"] = serde_json::Value::String(r.describe());
            }
            crate::Error::Invalid {
                code,
                message: format!("{what} {e}"),
                details: Some(details),
            }
        };
        let (filter, indexed) = match filter {
            None => (Document::new(), true),
            Some(text) => {
                let expr =
                    parse(text).map_err(|e| refused("invalid_filter", "filter", false, e))?;
                let compiled =
                    compile(&expr, r).map_err(|e| refused("invalid_filter", "filter", true, e))?;
                (compiled, uses_only_indexed(&expr, r))
            }
        };
        let sort = match sort {
            None => Document::new(),
            Some(text) => {
                let keys =
                    parse_sort(text).map_err(|e| refused("invalid_sort", "sort", false, e))?;
                compile_sort(&keys, r).map_err(|e| refused("invalid_sort", "sort", true, e))?
            }
        };
        Ok(Self {
            filter,
            sort,
            indexed,
        })
    }

    /// The list's own `scope` (tenant, dialog, ...) narrowed by the filter. The two are joined
    /// with `$and`, so no condition of the client can replace a condition of the scope.
    pub fn within(&self, scope: Document) -> Document {
        if self.filter.is_empty() {
            return scope;
        }
        bson::doc! {"$and": [scope, self.filter.clone()]}
    }

    /// The order to read in: the client's sort, else `default`, then `tiebreak` (a unique
    /// field, so pages never overlap) unless the sort already names it.
    pub fn order(&self, default: Document, tiebreak: (&str, i32)) -> Document {
        let mut order = if self.sort.is_empty() {
            default
        } else {
            self.sort.clone()
        };
        if !order.contains_key(tiebreak.0) {
            order.insert(tiebreak.0, tiebreak.1);
        }
        order
    }

    /// The scan bound of this query: `None` when index-backed.
    pub fn max_time(&self) -> Option<std::time::Duration> {
        (!self.indexed).then_some(SCAN_MAX_TIME)
    }

    /// One page of a filtering list: the documents of `c` within `scope` narrowed by the
    /// filter ([`ListQuery::within`]), in the client's order else `default` then `tiebreak`
    /// ([`ListQuery::order`]), with the total; bounded as [`ListQuery::max_time`] says.
    pub(crate) async fn page(
        &self,
        c: &mongodb::Collection<Document>,
        scope: Document,
        (default, tiebreak): (Document, (&str, i32)),
        (page, limit): (u64, u64),
    ) -> crate::Result<chat3_sdk::Page<Document>> {
        let (total, data) = fetch(
            c,
            self.within(scope),
            self.order(default, tiebreak),
            (page - 1) * limit,
            limit,
            self.max_time(),
        )
        .await?;
        Ok(chat3_sdk::Page {
            data,
            pagination: chat3_sdk::Pagination::new(page, limit, total),
        })
    }
}

/// One page of a list: the total matching `query` and the documents of the page, in `sort`
/// order, both under `max_time` when the query needs a scan ([`ListQuery::max_time`]).
pub(crate) async fn fetch(
    c: &mongodb::Collection<Document>,
    query: Document,
    sort: Document,
    skip: u64,
    limit: u64,
    max_time: Option<std::time::Duration>,
) -> crate::Result<(u64, Vec<Document>)> {
    use futures_util::TryStreamExt;
    let mut count = c.count_documents(query.clone());
    let mut find = c.find(query).sort(sort).skip(skip).limit(limit as i64);
    if let Some(t) = max_time {
        count = count.max_time(t);
        find = find.max_time(t);
    }
    let found = async { find.await?.try_collect::<Vec<Document>>().await };
    let total = async { count.await };
    let (total, found) = futures_util::try_join!(total, found).map_err(bounded)?;
    Ok((total, found))
}

/// A store error of a list run under [`ListQuery::max_time`]: the scan took too long (code 50,
/// `MaxTimeMSExpired`) becomes a 400 `filter_too_expensive`; anything else stays as it is.
pub fn bounded(e: mongodb::error::Error) -> crate::Error {
    use mongodb::error::ErrorKind;
    if let ErrorKind::Command(c) = e.kind.as_ref() {
        if c.code == 50 {
            return crate::Error::Invalid {
                code: "filter_too_expensive",
                message: format!(
                    "the filter names fields without an index and scanned for more than {} ms; narrow it with an indexed field",
                    SCAN_MAX_TIME.as_millis()
                ),
                details: None,
            };
        }
    }
    crate::Error::from(e)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use bson::doc;
    use proptest::prelude::*;

    const fn f(name: &'static str, path: &'static str, kind: Kind, indexed: bool) -> Field {
        Field {
            name,
            path,
            kind,
            indexed,
        }
    }
    const FIELDS: &[Field] = &[
        f("senderId", "senderId", Kind::Str, true),
        f("name", "name", Kind::Str, false),
        f("createdAt", "createdAt", Kind::Int, true),
        f("lastMessageAt", "lastMessage.createdAt", Kind::Int, true),
        f("isRead", "read", Kind::Bool, false),
        f("status", "status", Kind::Enum(&["sent", "read"]), false),
    ];
    const SORTS: &[(&str, &str)] = &[
        ("createdAt", "createdAt"),
        ("lastMessageAt", "lastMessage.createdAt"),
    ];
    const RES: Resource = Resource {
        name: "dialog messages",
        fields: FIELDS,
        meta: Some("meta"),
        sorts: SORTS,
    };
    const NO_META: Resource = Resource {
        name: "users",
        fields: FIELDS,
        meta: None,
        sorts: &[],
    };

    fn p(s: &str) -> Expr {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn cond(field: &str, op: Op, value: Value) -> Expr {
        let (field, at) = (field.to_string(), 0);
        Expr::Cond(Cond {
            field,
            op,
            value,
            at,
        })
    }
    fn sc(text: &str, quoted: bool) -> Scalar {
        let text = text.to_string();
        Scalar { text, quoted }
    }
    fn one(text: &str, quoted: bool) -> Value {
        Value::Scalar(sc(text, quoted))
    }
    /// Each case is `input => expected`.
    fn cases(table: &'static [&'static str]) -> impl Iterator<Item = (&'static str, &'static str)> {
        table
            .iter()
            .map(|case| case.split_once(" => ").expect(case))
    }
    /// Each case is `input => position: message fragment`.
    fn check_errors(table: &'static [&'static str], run: impl Fn(&str) -> Result<(), FilterError>) {
        for (input, expected) in cases(table) {
            let (pos, msg) = expected.split_once(": ").expect(expected);
            let e = run(input).expect_err(input);
            assert_eq!(e.position.to_string(), pos, "{input}: {e}");
            assert!(e.message.contains(msg), "{input}: {e}");
        }
    }

    const PARSES: &[&str] = &[
        "(a,eq,x1) => (a,eq,x1)",
        "(a,ne,x1)|(a,gt,1)|(a,gte,2)|(a,lt,3)|(a,lte,4) => (a,ne,x1)|(a,gt,1)|(a,gte,2)|(a,lt,3)|(a,lte,4)",
        "(a,regex,^a.*b$)&(a,exists,false) => (a,regex,^a.*b$)&(a,exists,false)",
        r#"(a,in,[x, "y,z" ,3]) => (a,in,[x,"y,z",3])"#,
        "(a,nin,x) => (a,nin,[x])",
        r#"(a,eq,"x,)(\"\\]") => (a,eq,"x,)(\"\\]")"#,
        r#"(a,eq,"") => (a,eq,"")"#,
        r"(a,eq,back\slash & a|b $x) => (a,eq,back\slash & a|b $x)",
        " ( a.b , eq , hi there )\t&\n( c , in , [ 1 , 2 ] )  => (a.b,eq,hi there)&(c,in,[1,2])",
        "((a,eq,1)|(b,eq,2))&(c,eq,3) => ((a,eq,1)|(b,eq,2))&(c,eq,3)",
        "((a,eq,1)) => (a,eq,1)",
        "( ( (a,eq,1) ) )&(b,eq,2) => (a,eq,1)&(b,eq,2)",
        "(a,eq,1)&((b,eq,2)&(c,eq,3)) => (a,eq,1)&((b,eq,2)&(c,eq,3))",
        "(((((a,eq,1)|(b,eq,2))))) => (a,eq,1)|(b,eq,2)",
        "(((((a,eq,1))))) => (a,eq,1)",
        "(meta.9lives,eq,1)&(_a.b_2.c,eq,1) => (meta.9lives,eq,1)&(_a.b_2.c,eq,1)",
    ];

    #[test]
    fn parses_and_prints_canonically() {
        for (input, canonical) in cases(PARSES) {
            let e = p(input);
            assert_eq!(e.to_string(), canonical, "{input}");
            assert_eq!(p(canonical), e, "{input}");
        }
        for op in Op::ALL {
            let v = if op == Op::Exists { "true" } else { "1" };
            let e = p(&format!("(a,{},{v})", op.as_str()));
            assert!(matches!(e, Expr::Cond(c) if c.op == op));
        }
    }

    #[test]
    fn parsed_trees() {
        let list = Value::List(vec![sc("x", false), sc("y,z", true), sc("3", false)]);
        assert_eq!(p(r#"(a,in,[x, "y,z" ,3])"#), cond("a", Op::In, list));
        let list = Value::List(vec![sc("x", false)]);
        assert_eq!(
            p("(a,nin,x)"),
            cond("a", Op::Nin, list),
            "a scalar is a 1-element list"
        );
        assert_eq!(
            p(r#"(a,eq, " sp " )"#),
            cond("a", Op::Eq, one(" sp ", true))
        );
        assert_eq!(p(r#"(a,eq,"\"\\")"#), cond("a", Op::Eq, one(r#""\"#, true)));
        assert_eq!(p(" (a , gte, 5 x )"), cond("a", Op::Gte, one("5 x", false)));
        let Expr::And(items) = p("((a,eq,1)|(b,eq,2))&(c,eq,3)") else {
            panic!()
        };
        assert!(matches!(&items[..], [Expr::Or(v), Expr::Cond(c)] if v.len() == 2 && c.at == 20));
        let Expr::And(items) = p("(a,eq,1)&((b,eq,2)&(c,eq,3))") else {
            panic!()
        };
        assert!(
            matches!(&items[..], [Expr::Cond(_), Expr::And(_)]),
            "same kind is kept"
        );
        let hand = cond("a", Op::Eq, one(" x,y\"\\", false));
        assert_eq!(
            hand.to_string(),
            r#"(a,eq," x,y\"\\")"#,
            "quoted as it must be"
        );
    }

    const PARSE_ERRORS: &[&str] = &[
        " => 0: filter is empty",
        "  \t => 0: filter is empty",
        "(a,eq,1)&(b,eq,2)|(c,eq,3) => 17: cannot mix '&' and '|' at one level",
        "((a,eq,1)|(b,eq,2)&(c,eq,3)) => 18: cannot mix",
        "(a,like,1) => 3: expected an operator (eq, ne, in, nin, gt, gte, lt, lte, regex, exists)",
        "(a,EQ,1) => 3: found 'EQ'",
        "(a,,1) => 3: expected an operator",
        "(a,eq,1 => 7: expected ')' to close the condition, found end of input",
        "(a,eq,1)x => 8: expected '&', '|' or end of input, found 'x'",
        "(a,eq,1)) => 8: found ')'",
        "((a,eq,1)x) => 9: expected ')' or '&' or '|', found 'x'",
        "(a,eq,1)& => 9: expected '(' to open a condition or group, found end of input",
        "a,eq,1 => 0: expected '('",
        "(a,eq,) => 6: expected a value, found ')'",
        "(a,eq,1,2) => 7: expected ')'",
        "(a,eq,[1]) => 6: eq takes one value, not a list",
        "(a,in,[]) => 7: empty list",
        "(a,in,[1;2) => 10: expected ',' or ']' in the list",
        "(a,in,[1,[2]]) => 9: expected a value, found '['",
        "(a,exists,yes) => 10: exists takes true or false",
        r#"(a,exists,"true") => 10: exists takes true or false"#,
        r#"(a,eq,"a\nb") => 8: invalid escape; only \" and \\ are allowed"#,
        r#"(a,eq,"abc) => 6: unterminated quoted value"#,
        r#"(a,eq,ab"c") => 8: inside an unquoted value"#,
        r#"(a,eq,"x"y) => 9: expected ')'"#,
        "($where,eq,1) => 1: expected a field name, found '$'",
        "(1a,eq,1) => 1: expected a field name",
        "(a b,eq,1) => 3: expected ',' after the field name, found 'b'",
        "(a..b,eq,1) => 3: expected a name after '.'",
        "(a.$x,eq,1) => 3: expected a name after '.', found '$'",
        "(é,eq,1) => 1: found 'é'",
        "((((((a,eq,1)))))) => 4: groups are nested more than 4 deep",
        "(x,eq,1)|((y,eq,1)&((z,eq,1)|(((((a,eq,1))))))) => 31: nested more than 4",
    ];

    #[test]
    fn parse_errors() {
        check_errors(PARSE_ERRORS, |s| parse(s).map(|_| ()));
    }

    #[test]
    fn parse_limits() {
        let twelve = ["(a,eq,1)"; 12].join("&");
        let fifty = vec![format!("({})", ["(a,eq,1)"; 10].join("|")); 5].join("&");
        let hundred = ["1"; 100].join(",");
        let max = format!("(a,eq,{})", "x".repeat(MAX_INPUT - 7));
        assert_eq!(max.len(), 2000);
        for ok in [&twelve, &fifty, &format!("(a,in,[{hundred}])"), &max] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        let too_long = "filter is 2001 bytes long; at most 2000 allowed";
        let bad = [
            (
                format!("{twelve}&(a,eq,1)"),
                108,
                "more than 12 operands at one level",
            ),
            (
                format!("{fifty}&(z,eq,1)"),
                fifty.len() + 1,
                "more than 50 conditions",
            ),
            (
                format!("(a,in,[{hundred},1])"),
                207,
                "more than 100 values in a list",
            ),
            (format!("{max} "), 2000, too_long),
        ];
        for (input, pos, msg) in bad {
            assert_eq!(parse(&input), fail(pos, msg));
        }
        let e = parse(&format!("{max} ")).unwrap_err();
        assert_eq!(e.to_string(), format!("at position 2000: {too_long}"));
    }

    /// `filter => compiled document as displayed, without spaces`.
    const COMPILES: &[&str] = &[
        r#"(senderId,eq,u1) => {"senderId":{"$eq":"u1"}}"#,
        r#"(senderId,ne,u1) => {"senderId":{"$ne":"u1"}}"#,
        r#"(status,in,[sent,read]) => {"status":{"$in":["sent","read"]}}"#,
        r#"(createdAt,nin,5) => {"createdAt":{"$nin":[5]}}"#,
        r#"(createdAt,gt,-5) => {"createdAt":{"$gt":-5}}"#,
        r#"(lastMessageAt,gte,1) => {"lastMessage.createdAt":{"$gte":1}}"#,
        r#"(createdAt,lt,"12") => {"createdAt":{"$lt":12}}"#,
        r#"(name,lte,m) => {"name":{"$lte":"m"}}"#,
        r#"(isRead,exists,false) => {"read":{"$exists":false}}"#,
        r#"(meta.k,exists,true) => {"meta.k":{"$exists":true}}"#,
        r#"(isRead,eq,true) => {"read":{"$eq":true}}"#,
        r#"(name,eq,123) => {"name":{"$eq":"123"}}"#,
        r#"(name,eq,$gt) => {"name":{"$eq":"$gt"}}"#,
        r#"(name,in,[$where,"{$ne:1}"]) => {"name":{"$in":["$where","{$ne:1}"]}}"#,
        r#"(name,regex,a.*b) => {"name":{"$regex":/a\.\*b/i}}"#,
        r#"(name,regex,^Ab) => {"name":{"$regex":/^Ab/i}}"#,
        r#"(name,regex,ab$) => {"name":{"$regex":/ab$/i}}"#,
        r#"(name,regex,^a$b$) => {"name":{"$regex":/^a\$b$/i}}"#,
        r#"(name,regex,"(x+)+{2}|[\\]?") => {"name":{"$regex":/\(x\+\)\+\{2\}\|\[\\\]\?/i}}"#,
        r#"(name,regex,é_-x) => {"name":{"$regex":/é_\-x/i}}"#,
        "(name,regex,\"a\u{0}b\") => {\"name\":{\"$regex\":/a\\x00b/i}}",
        r#"(meta.k,regex,^5) => {"meta.k":{"$regex":/^5/i}}"#,
        r#"(meta.k,in,[1,"1",-1.5,true,"true",null,1e5,x]) => {"meta.k":{"$in":[1,"1",-1.5,true,"true",null,"1e5","x"]}}"#,
        r#"((senderId,eq,a)|(name,eq,b))&(createdAt,gt,1) => {"$and":[{"$or":[{"senderId":{"$eq":"a"}},{"name":{"$eq":"b"}}]},{"createdAt":{"$gt":1}}]}"#,
    ];

    #[test]
    fn compiles() {
        for (input, expected) in cases(COMPILES) {
            let d = compile(&p(input), &RES).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(d.to_string().replace(' ', ""), expected, "{input}");
        }
        // Exact BSON types, which the display above does not show.
        let d = compile(
            &p("(createdAt,eq,9223372036854775807)&(meta.k,in,[7,7.0,\"7\"])"),
            &RES,
        );
        let ints = doc! {"createdAt": {"$eq": i64::MAX}};
        let meta = doc! {"meta.k": {"$in": [7_i64, 7.0_f64, "7"]}};
        assert_eq!(d, Ok(doc! {"$and": [ints, meta]}));
        let (a, k) = ("a".repeat(100), "k".repeat(100));
        assert!(compile(&p(&format!("(name,regex,^{a}$)&(meta.{k},eq,1)")), &RES).is_ok());
    }

    const COMPILE_ERRORS: &[&str] = &[
        "(createdAt,gt,1)&(secret,eq,1) => 17: unknown field 'secret' in dialog messages; allowed: senderId, name, createdAt, lastMessageAt, isRead, status, meta.<key>",
        "(meta.a.b,eq,1) => 0: a meta key is 1 to 100",
        "(isRead,eq,true)|(createdAt,gt,abc) => 17: createdAt takes an integer, got 'abc'",
        "(createdAt,eq,+1) => 0: createdAt takes an integer, got '+1'",
        "(createdAt,eq,9223372036854775808) => 0: takes an integer",
        "(createdAt,in,[1,2.5]) => 0: createdAt takes an integer, got '2.5'",
        "(isRead,eq,1) => 0: isRead takes true or false, got '1'",
        "(status,in,[sent,lost]) => 0: status takes one of sent, read, got 'lost'",
        "(isRead,gt,false) => 0: gt does not apply to isRead (true/false)",
        "(createdAt,regex,1) => 0: regex does not apply to createdAt (integer)",
        "(status,regex,se) => 0: regex does not apply to status",
        "(meta.k,eq,99999999999999999999) => 0: out of range; quote it",
        "(name,regex,^$) => 0: regex text must be 1 to 100 characters",
        "(name,eq,1)&((name,eq,1)|(name,regex,$)) => 25: regex text must be 1 to 100",
    ];

    #[test]
    fn compile_errors() {
        check_errors(COMPILE_ERRORS, |s| compile(&p(s), &RES).map(|_| ()));
        let err = |e: &Expr, r: &Resource| compile(e, r).unwrap_err().message;
        let msg = err(&p("(meta.x,eq,1)"), &NO_META);
        assert!(
            msg.starts_with("unknown field 'meta.x' in users; allowed: senderId"),
            "{msg}"
        );
        let a = "a".repeat(101);
        assert!(err(&p(&format!("(name,regex,{a})")), &RES).contains("1 to 100"));
        assert!(err(&p(&format!("(meta.{a},eq,1)")), &RES).contains("meta key"));
        let hand = cond("name", Op::Eq, Value::List(vec![sc("a", false)]));
        assert_eq!(err(&hand, &RES), "eq takes one value, not a list");
        assert_eq!(compile(&Expr::Or(vec![]), &RES), fail(0, "empty group"));
    }

    const SORT_ERRORS: &[&str] = &[
        "(a,asc),(a,desc) => 8: 'a' is sorted on twice",
        "(a,asc),(b,asc),(c,asc),(d,asc) => 24: more than 3 sort keys",
        "(a) => 2: expected ','",
        "(a,DESC) => 3: expected a direction (asc, desc), found 'DESC'",
        "(a,up) => 3: found 'up'",
        "(a,asc), => 8: expected '(' to open a sort key",
        "(a,asc)(b,asc) => 7: expected ',' or end of input, found '('",
        "($a,asc) => 1: expected a field name",
        " => 0: sort is empty",
    ];

    #[test]
    fn sorts() {
        let keys = parse_sort(" (createdAt, desc) ,(name,asc)").unwrap();
        let got: Vec<_> = keys
            .iter()
            .map(|k| (k.field.as_str(), k.descending, k.at))
            .collect();
        assert_eq!(got, [("createdAt", true, 1), ("name", false, 20)]);
        check_errors(SORT_ERRORS, |s| parse_sort(s).map(|_| ()));
        let keys = parse_sort("(lastMessageAt,desc),(createdAt,asc)").unwrap();
        let d = compile_sort(&keys, &RES).unwrap();
        assert_eq!(d, doc! {"lastMessage.createdAt": -1, "createdAt": 1});
        assert_eq!(
            d.keys().collect::<Vec<_>>(),
            ["lastMessage.createdAt", "createdAt"]
        );
        let keys = parse_sort("(createdAt,asc),(name,asc)").unwrap();
        let msg = "cannot sort dialog messages by 'name'; sortable: createdAt, lastMessageAt";
        assert_eq!(compile_sort(&keys, &RES), fail(16, msg));
    }

    #[test]
    fn indexed_and_describe() {
        assert!(uses_only_indexed(
            &p("(senderId,eq,a)&(createdAt,gt,1)"),
            &RES
        ));
        assert!(!uses_only_indexed(&p("(senderId,eq,a)|(name,eq,1)"), &RES));
        assert!(!uses_only_indexed(&p("(meta.a,eq,1)"), &RES));
        let d = RES.describe();
        let parts = [
            "dialog messages: filter by senderId (string: eq ne in nin gt gte lt lte regex exists), ",
            ", isRead (true/false: eq ne in nin exists), ",
            ", status (one of sent|read: eq ne in nin gt gte lt lte exists), ",
            ", meta.<key> (string, number, true/false or null: eq ne in nin gt gte lt lte regex",
            "; sort by createdAt, lastMessageAt",
        ];
        for part in parts {
            assert!(d.contains(part), "{d}");
        }
        assert!(d.starts_with(parts[0]) && d.ends_with(parts[4]), "{d}");
        assert!(NO_META.describe().ends_with("lte exists); sort by nothing"));
    }

    // ---- property tests ----

    fn count(e: &Expr) -> usize {
        match e {
            Expr::Cond(_) => 1,
            Expr::And(v) | Expr::Or(v) => v.iter().map(count).sum(),
        }
    }

    fn field_name() -> impl Strategy<Value = String> {
        let known = [
            "senderId",
            "name",
            "createdAt",
            "isRead",
            "status",
            "meta.k",
            "meta.9",
            "meta.a.b",
        ];
        let known = prop::sample::select(known.to_vec()).prop_map(String::from);
        prop_oneof![
            3 => known,
            1 => "[A-Za-z_][A-Za-z0-9_]{0,5}(\\.[A-Za-z0-9_]{1,5}){0,2}"
        ]
    }

    /// Scalars of every shape, quoted whenever the text needs it (or at random).
    fn scalar() -> impl Strategy<Value = Scalar> {
        let words = [
            "true", "false", "null", "sent", "read", "^ab", "cd$", "$gt", "^$", "1.5",
        ];
        let text = prop_oneof![
            "[a-z0-9]{1,6}",
            "-?[0-9]{1,20}(\\.[0-9]{1,3})?",
            prop::sample::select(words.to_vec()).prop_map(String::from),
            "[ a-z,()\\[\\]\"\\\\$&|.*^é\t]{0,10}",
            any::<String>(),
        ];
        (text, any::<bool>()).prop_map(|(text, q)| {
            let quoted = q || needs_quotes(&text);
            Scalar { text, quoted }
        })
    }

    /// Random trees: 2..=12 operands per group, up to 4 levels of groups, any And/Or mix.
    fn ast() -> impl Strategy<Value = Expr> {
        let ops = prop::sample::select(Op::ALL.to_vec());
        let lists = prop::collection::vec(scalar(), 1..5);
        let leaf = (field_name(), ops, scalar(), lists, any::<bool>());
        let leaf = leaf.prop_map(|(field, op, s, list, b)| {
            let value = match op {
                Op::In | Op::Nin => Value::List(list),
                Op::Exists => one(if b { "true" } else { "false" }, false),
                _ => Value::Scalar(s),
            };
            cond(&field, op, value)
        });
        leaf.prop_recursive(4, 64, 4, |inner| {
            let items = prop_oneof![
                4 => prop::collection::vec(inner.clone(), 2..=3),
                1 => prop::collection::vec(inner, 2..=12),
            ];
            (items, any::<bool>()).prop_map(|(v, and)| if and { Expr::And(v) } else { Expr::Or(v) })
        })
    }

    /// A valid filter's text with a few random edits, to reach deep error paths.
    fn mutated() -> impl Strategy<Value = String> {
        let chars = [
            '(', ')', '[', ']', ',', '&', '|', '"', '\\', ' ', 'a', '.', '$', 'é',
        ];
        let edit = (
            0..3u8,
            any::<prop::sample::Index>(),
            prop::sample::select(chars.to_vec()),
        );
        (ast(), prop::collection::vec(edit, 0..4)).prop_map(|(e, edits)| {
            let mut text: Vec<char> = e.to_string().chars().collect();
            for (kind, at, ch) in edits {
                let i = at.index(text.len() + 1);
                match kind {
                    0 => text.insert(i, ch),
                    _ if i == text.len() => {}
                    1 => drop(text.remove(i)),
                    _ => text[i] = ch,
                }
            }
            text.into_iter().collect()
        })
    }

    fn any_input() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[()\\[\\],&|\"\\\\ a-z.$0-9]{0,300}",
            mutated()
        ]
    }

    /// Every `$` key in the compiled query is one of ours.
    fn dollar_keys_ok(v: &Bson) -> bool {
        const OURS: &str = "$eq $ne $in $nin $gt $gte $lt $lte $regex $exists $and $or";
        match v {
            Bson::Document(d) => d.iter().all(|(k, v)| {
                let key_ok = !k.starts_with('$') || OURS.split(' ').any(|o| o == k);
                key_ok && dollar_keys_ok(v)
            }),
            Bson::Array(a) => a.iter().all(dollar_keys_ok),
            _ => true,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_never_panics_and_reparses(s in any_input()) {
            if let Ok(e) = parse(&s) {
                prop_assert_eq!(parse(&e.to_string()), Ok(e));
            }
            let _ = parse_sort(&s);
        }

        #[test]
        fn round_trip(e in ast()) {
            let text = e.to_string();
            if count(&e) <= MAX_CONDS && text.len() <= MAX_INPUT {
                prop_assert_eq!(parse(&text), Ok(e));
            } else {
                prop_assert!(parse(&text).is_err());
            }
        }

        #[test]
        fn compile_is_safe(s in prop_oneof![any_input(), ast().prop_map(|e| e.to_string())]) {
            let Ok(e) = parse(&s) else { return Ok(()) };
            // Every subtree too, so that the success path is taken often.
            let mut todo = vec![&e];
            while let Some(node) = todo.pop() {
                if let Ok(d) = compile(node, &RES) {
                    prop_assert!(dollar_keys_ok(&Bson::Document(d.clone())), "{:?}", d);
                }
                let _ = uses_only_indexed(node, &RES);
                if let Expr::And(v) | Expr::Or(v) = node {
                    todo.extend(v);
                }
            }
        }
    }
}
