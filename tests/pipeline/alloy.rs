//! A reader for the part of Grafana Alloy's configuration syntax that `loki/config.alloy` uses
//! (https://grafana.com/docs/alloy/latest/get-started/configuration-syntax/syntax/): blocks with
//! an optional string label, attributes, strings, numbers, booleans, lists, objects, references
//! and function calls. Enough to check the file's structure; anything else is an error.

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
    List(Vec<Value>),
    Object(Vec<(String, Value)>),
    /// `local.file_match.x.targets`
    Ref(String),
    /// `sys.env("X")`
    Call(String, Vec<Value>),
}

impl Value {
    pub fn str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn object(&self) -> &[(String, Value)] {
        match self {
            Value::Object(o) => o,
            other => panic!("not an object: {other:?}"),
        }
    }

    pub fn list(&self) -> &[Value] {
        match self {
            Value::List(l) => l,
            other => panic!("not a list: {other:?}"),
        }
    }
}

#[derive(Debug, Default)]
pub struct Block {
    pub name: String,
    pub label: Option<String>,
    pub attrs: Vec<(String, Value)>,
    pub blocks: Vec<Block>,
}

impl Block {
    pub fn attr(&self, name: &str) -> Option<&Value> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn blocks(&self, name: &str) -> Vec<&Block> {
        self.blocks.iter().filter(|b| b.name == name).collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(f64),
    Punct(char),
}

fn tokens(src: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '/' if src[at..].starts_with("//") => {
                while chars.next_if(|&(_, c)| c != '\n').is_some() {}
            }
            '/' if src[at..].starts_with("/*") => {
                let end = src[at..].find("*/").ok_or("unterminated comment")?;
                while chars.next_if(|&(i, _)| i < at + end + 2).is_some() {}
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated string at byte {at}")),
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => s.push('\n'),
                            Some((_, 't')) => s.push('\t'),
                            Some((_, c @ ('"' | '\\'))) => s.push(c),
                            other => return Err(format!("escape {other:?} at byte {at}")),
                        },
                        Some((_, c)) => s.push(c),
                    }
                }
                out.push(Token::Str(s));
            }
            c if c.is_ascii_digit() => {
                let mut s = String::new();
                while let Some((_, c)) = chars.next_if(|&(_, c)| c.is_ascii_digit() || c == '.') {
                    s.push(c);
                }
                out.push(Token::Num(s.parse().map_err(|e| format!("{s}: {e}"))?));
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut s = String::new();
                while let Some((_, c)) =
                    chars.next_if(|&(_, c)| c.is_alphanumeric() || c == '_' || c == '.')
                {
                    s.push(c);
                }
                out.push(Token::Ident(s));
            }
            '{' | '}' | '[' | ']' | '(' | ')' | '=' | ',' => {
                chars.next();
                out.push(Token::Punct(c));
            }
            other => return Err(format!("unexpected {other:?} at byte {at}")),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Result<Token, String> {
        let t = self.peek().cloned().ok_or("unexpected end")?;
        self.at += 1;
        Ok(t)
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(&Token::Punct(c));
        self.at += usize::from(hit);
        hit
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        match self.next()? {
            Token::Punct(p) if p == c => Ok(()),
            other => Err(format!("expected {c:?}, found {other:?}")),
        }
    }

    /// Statements up to `}` (nested) or the end (top level).
    fn body(&mut self, nested: bool) -> Result<Block, String> {
        let mut block = Block::default();
        loop {
            match self.peek() {
                None if !nested => return Ok(block),
                Some(Token::Punct('}')) if nested => {
                    self.at += 1;
                    return Ok(block);
                }
                _ => {}
            }
            let Token::Ident(name) = self.next()? else {
                return Err(format!("expected a name at token {}", self.at - 1));
            };
            if self.eat('=') {
                let value = self.value()?;
                block.attrs.push((name, value));
                continue;
            }
            let label = match self.peek() {
                Some(Token::Str(s)) => {
                    let s = s.clone();
                    self.at += 1;
                    Some(s)
                }
                _ => None,
            };
            self.expect('{')?;
            let mut inner = self.body(true)?;
            inner.name = name;
            inner.label = label;
            block.blocks.push(inner);
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        Ok(match self.next()? {
            Token::Str(s) => Value::Str(s),
            Token::Num(n) => Value::Num(n),
            Token::Ident(i) if i == "true" || i == "false" => Value::Bool(i == "true"),
            Token::Ident(i) if self.eat('(') => {
                let mut args = Vec::new();
                while !self.eat(')') {
                    args.push(self.value()?);
                    self.eat(',');
                }
                Value::Call(i, args)
            }
            Token::Ident(i) => Value::Ref(i),
            Token::Punct('[') => {
                let mut items = Vec::new();
                while !self.eat(']') {
                    items.push(self.value()?);
                    self.eat(',');
                }
                Value::List(items)
            }
            Token::Punct('{') => {
                let mut fields = Vec::new();
                while !self.eat('}') {
                    let key = match self.next()? {
                        Token::Ident(k) | Token::Str(k) => k,
                        other => return Err(format!("object key expected, found {other:?}")),
                    };
                    self.expect('=')?;
                    fields.push((key, self.value()?));
                    self.eat(',');
                }
                Value::Object(fields)
            }
            other => return Err(format!("unexpected {other:?}")),
        })
    }
}

/// The file's top-level blocks and attributes.
pub fn parse(src: &str) -> Result<Block, String> {
    Parser {
        tokens: tokens(src)?,
        at: 0,
    }
    .body(false)
}

#[test]
fn the_reader_reads_blocks_labels_values_and_rejects_what_it_does_not_know() {
    let doc = parse(
        r#"// c
        a.b "x" { n = 1 s = "q\"" /* c */ l = [1, "2",] o = {"k" = true, j = r.f} c = sys.env("E")
          inner { v = {} } }"#,
    )
    .unwrap();
    let b = &doc.blocks[0];
    assert_eq!((b.name.as_str(), b.label.as_deref()), ("a.b", Some("x")));
    assert_eq!(b.attr("s"), Some(&Value::Str("q\"".into())));
    assert_eq!(b.attr("l").unwrap().list().len(), 2);
    assert_eq!(
        b.attr("o").unwrap().object()[1],
        ("j".into(), Value::Ref("r.f".into()))
    );
    assert_eq!(
        b.attr("c"),
        Some(&Value::Call("sys.env".into(), vec![Value::Str("E".into())]))
    );
    assert_eq!(b.blocks("inner").len(), 1);
    for bad in ["a {", "a = ", "a = \"x", "a = 1 +", "{}"] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}
