//! Bencode, the encoding of rtpengine's ng control protocol (a request is
//! `<cookie> <bencoded dictionary>`). Only what the protocol uses: integers, byte
//! strings, lists and dictionaries; dictionaries keep their keys sorted as the format
//! requires.

use std::collections::BTreeMap;
use std::fmt;

/// One bencoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(BTreeMap<Vec<u8>, Value>),
}

/// Why a byte string is not one bencoded value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("input ends inside a value at byte {0}")]
    Truncated(usize),
    #[error("unexpected byte {byte:#04x} at {at}")]
    Unexpected { byte: u8, at: usize },
    #[error("malformed integer at byte {0}")]
    BadInt(usize),
    #[error("dictionary key at byte {0} is not a byte string")]
    KeyNotString(usize),
    #[error("{0} bytes left after the value")]
    Trailing(usize),
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// Replies from a relay are small; a deeper nesting is garbage, not a reply.
const MAX_DEPTH: usize = 32;

impl Value {
    pub fn str(s: &str) -> Self {
        Value::Bytes(s.as_bytes().to_vec())
    }

    pub fn list_of_str(items: &[&str]) -> Self {
        Value::List(items.iter().map(|s| Value::str(s)).collect())
    }

    /// A dictionary from `(key, value)` pairs.
    pub fn dict<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Self {
        Value::Dict(
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    /// The value under `key` when this is a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(d) => d.get(key.as_bytes()),
            _ => None,
        }
    }

    /// The byte string as UTF-8 text (lossy).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    #[cfg(test)]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(b) => encode_bytes(b, out),
            Value::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            Value::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    encode_bytes(k, out);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decodes exactly one value; trailing bytes are an error.
    pub fn decode(input: &[u8]) -> Result<Value, DecodeError> {
        let mut parser = Parser { input, pos: 0 };
        let value = parser.value(0)?;
        if parser.pos != input.len() {
            return Err(DecodeError::Trailing(input.len() - parser.pos));
        }
        Ok(value)
    }
}

impl fmt::Display for Value {
    /// Compact, JSON-like rendering for error messages and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Bytes(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Value::List(items) => {
                f.write_str("[")?;
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Dict(d) => {
                f.write_str("{")?;
                for (n, (k, v)) in d.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{:?}: {v}", String::from_utf8_lossy(k))?;
                }
                f.write_str("}")
            }
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated(self.pos))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.integer(b'e')?;
                Ok(Value::Int(n))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.bytes()?)),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut dict = BTreeMap::new();
                while self.peek()? != b'e' {
                    let at = self.pos;
                    if !self.peek()?.is_ascii_digit() {
                        return Err(DecodeError::KeyNotString(at));
                    }
                    let key = self.bytes()?;
                    let value = self.value(depth + 1)?;
                    dict.insert(key, value);
                }
                self.pos += 1;
                Ok(Value::Dict(dict))
            }
            byte => Err(DecodeError::Unexpected { byte, at: self.pos }),
        }
    }

    /// A decimal integer up to `end`, which is consumed.
    fn integer(&mut self, end: u8) -> Result<i64, DecodeError> {
        let start = self.pos;
        let rel = self.input[start..]
            .iter()
            .position(|&b| b == end)
            .ok_or(DecodeError::Truncated(self.input.len()))?;
        let digits = &self.input[start..start + rel];
        let text = std::str::from_utf8(digits).map_err(|_| DecodeError::BadInt(start))?;
        // Bencode forbids leading zeros and "-0"; be strict so garbage is noticed.
        let unsigned = text.strip_prefix('-').unwrap_or(text);
        let canonical = !unsigned.is_empty()
            && unsigned.bytes().all(|b| b.is_ascii_digit())
            && (unsigned == "0" || !unsigned.starts_with('0'))
            && text != "-0";
        if !canonical {
            return Err(DecodeError::BadInt(start));
        }
        let n = text.parse().map_err(|_| DecodeError::BadInt(start))?;
        self.pos = start + rel + 1;
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let at = self.pos;
        let len = self.integer(b':')?;
        let len = usize::try_from(len).map_err(|_| DecodeError::BadInt(at))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.input.len())
            .ok_or(DecodeError::Truncated(self.input.len()))?;
        let out = self.input[self.pos..end].to_vec();
        self.pos = end;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_each_kind() {
        assert_eq!(Value::Int(42).encode(), b"i42e");
        assert_eq!(Value::Int(-7).encode(), b"i-7e");
        assert_eq!(Value::str("spam").encode(), b"4:spam");
        assert_eq!(Value::str("").encode(), b"0:");
        assert_eq!(Value::list_of_str(&["a", "bc"]).encode(), b"l1:a2:bce");
    }

    #[test]
    fn dictionary_keys_are_sorted() {
        let d = Value::dict([
            ("sdp", Value::str("v=0")),
            ("command", Value::str("offer")),
            ("call-id", Value::str("c1")),
        ]);
        assert_eq!(
            d.encode(),
            b"d7:call-id2:c17:command5:offer3:sdp3:v=0e".to_vec()
        );
    }

    #[test]
    fn round_trips_an_ng_request() {
        let req = Value::dict([
            ("command", Value::str("offer")),
            (
                "replace",
                Value::list_of_str(&["origin", "session-connection"]),
            ),
            ("ICE", Value::str("remove")),
            ("n", Value::Int(0)),
            ("nested", Value::dict([("x", Value::List(vec![]))])),
        ]);
        let bytes = req.encode();
        assert_eq!(Value::decode(&bytes), Ok(req));
    }

    #[test]
    fn decodes_an_rtpengine_reply() {
        let reply = b"d3:sdp10:v=0\r\nm=x\r\n6:result2:oke";
        let v = Value::decode(reply).unwrap();
        assert_eq!(
            v.get("result").and_then(Value::as_text).as_deref(),
            Some("ok")
        );
        assert_eq!(
            v.get("sdp").and_then(Value::as_text).as_deref(),
            Some("v=0\r\nm=x\r\n")
        );
        assert_eq!(v.get("missing"), None);
    }

    #[test]
    fn binary_strings_survive() {
        let v = Value::Bytes(vec![0, 255, b':', b'e']);
        assert_eq!(Value::decode(&v.encode()), Ok(v));
    }

    #[test]
    fn rejects_malformed_input() {
        assert_eq!(Value::decode(b""), Err(DecodeError::Truncated(0)));
        assert_eq!(Value::decode(b"i12"), Err(DecodeError::Truncated(3)));
        assert_eq!(Value::decode(b"5:abc"), Err(DecodeError::Truncated(5)));
        assert_eq!(Value::decode(b"i03e"), Err(DecodeError::BadInt(1)));
        assert_eq!(Value::decode(b"i-0e"), Err(DecodeError::BadInt(1)));
        assert_eq!(Value::decode(b"ie"), Err(DecodeError::BadInt(1)));
        assert_eq!(Value::decode(b"i1x2e"), Err(DecodeError::BadInt(1)));
        assert_eq!(
            Value::decode(b"di1ei2ee"),
            Err(DecodeError::KeyNotString(1))
        );
        assert_eq!(Value::decode(b"l1:a"), Err(DecodeError::Truncated(4)));
        assert_eq!(Value::decode(b"i1ei2e"), Err(DecodeError::Trailing(3)));
        assert_eq!(
            Value::decode(b"x"),
            Err(DecodeError::Unexpected { byte: b'x', at: 0 })
        );
        assert_eq!(Value::decode(&[b'l'; 100]), Err(DecodeError::TooDeep));
        // A length that would overflow must not panic.
        assert!(Value::decode(b"99999999999999999999:x").is_err());
    }

    #[test]
    fn displays_compactly() {
        let v = Value::dict([("a", Value::Int(1)), ("b", Value::list_of_str(&["x"]))]);
        assert_eq!(v.to_string(), r#"{"a": 1, "b": ["x"]}"#);
    }
}
