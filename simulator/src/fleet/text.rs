//! cgminer's text reply format, for text requests (`cmd|param`) on firmwares that answer text
//! in text: `STATUS=S,When=..,Code=..,Msg=..,Description=..|VERSION,CGMiner=4.11.1,..|`.
//! Sections are split by `|`, pairs by `,`; `| , = \` inside values are backslash-escaped; a
//! join becomes `CMD=summary|STATUS=..|..|CMD=pools|..`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value that keeps the object key order of the reply.
enum Node {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Node>),
    Obj(Vec<(String, Node)>),
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Num(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Num(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Num(format!("{v:.6}")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some(n) = seq.next_element()? {
            v.push(n);
        }
        Ok(Node::Arr(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some((k, n)) = map.next_entry::<String, Node>()? {
            v.push((k, n));
        }
        Ok(Node::Obj(v))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// Sections cgminer writes with their name first (`VERSION,CGMiner=..`); list sections
/// (`DEVS`, `POOLS`, `STATS`) start with their own index key instead.
const HEADED: &[&str] = &[
    "VERSION", "SUMMARY", "CONFIG", "COIN", "CHECK", "LCD", "ASCS",
];

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, '|' | ',' | '=' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

fn clone_node(n: &Node) -> Node {
    match n {
        Node::Null => Node::Null,
        Node::Bool(b) => Node::Bool(*b),
        Node::Num(s) => Node::Num(s.clone()),
        Node::Str(s) => Node::Str(s.clone()),
        Node::Arr(a) => Node::Arr(a.iter().map(clone_node).collect()),
        Node::Obj(o) => Node::Obj(o.iter().map(|(k, v)| (k.clone(), clone_node(v))).collect()),
    }
}

fn scalar(n: &Node) -> String {
    match n {
        Node::Null => String::new(),
        Node::Bool(b) => b.to_string(),
        Node::Num(s) | Node::Str(s) => s.clone(),
        Node::Arr(_) | Node::Obj(_) => compact(n),
    }
}

fn compact(n: &Node) -> String {
    match n {
        Node::Null => "null".into(),
        Node::Bool(b) => b.to_string(),
        Node::Num(s) => s.clone(),
        Node::Str(s) => serde_json::to_string(s).unwrap_or_default(),
        Node::Arr(a) => format!("[{}]", a.iter().map(compact).collect::<Vec<_>>().join(",")),
        Node::Obj(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!(
                    "{}:{}",
                    serde_json::to_string(k).unwrap_or_default(),
                    compact(v)
                ))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

fn pairs(obj: &[(String, Node)], out: &mut String) {
    for (i, (k, v)) in obj.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        escape(k, out);
        out.push('=');
        escape(&scalar(v), out);
    }
}

fn section(name: &str, v: &Node, out: &mut String) {
    match v {
        Node::Arr(items) => {
            for (i, item) in items.iter().enumerate() {
                if i == 0 && HEADED.contains(&name) {
                    out.push_str(name);
                    out.push(',');
                }
                match item {
                    Node::Obj(o) => pairs(o, out),
                    other => escape(&scalar(other), out),
                }
                out.push('|');
            }
        }
        // `{"STATUS":"RESTART"}` is the bare word in text.
        other => {
            escape(&scalar(other), out);
            out.push('|');
        }
    }
}

/// cgminer writes its status pairs in this order (re-serialized captures have them sorted).
const STATUS_ORDER: &[&str] = &["STATUS", "When", "Code", "Msg", "Description"];

fn status_rank(k: &str) -> usize {
    STATUS_ORDER
        .iter()
        .position(|o| *o == k)
        .unwrap_or(STATUS_ORDER.len())
}

fn reply(obj: &[(String, Node)], out: &mut String) {
    if let Some((_, st)) = obj.iter().find(|(k, _)| k == "STATUS") {
        match st {
            Node::Arr(items) => {
                for item in items {
                    if let Node::Obj(o) = item {
                        let mut o: Vec<&(String, Node)> = o.iter().collect();
                        o.sort_by_key(|(k, _)| status_rank(k));
                        let owned: Vec<(String, Node)> = o
                            .into_iter()
                            .map(|(k, v)| (k.clone(), clone_node(v)))
                            .collect();
                        pairs(&owned, out);
                        out.push('|');
                    }
                }
            }
            other => section("STATUS", other, out),
        }
    }
    for (k, v) in obj.iter().filter(|(k, _)| k != "STATUS" && k != "id") {
        section(k, v, out);
    }
}

/// The text form of a JSON reply; `None` when the reply is not valid JSON (a malformed fixture
/// stays as it is).
pub(crate) fn to_text(json: &str) -> Option<String> {
    let Node::Obj(top) = serde_json::from_str::<Node>(json).ok()? else {
        return None;
    };
    let mut out = String::with_capacity(json.len());
    if top.iter().any(|(k, _)| k == "STATUS") {
        reply(&top, &mut out);
        return Some(out);
    }
    for (cmd, v) in top.iter().filter(|(k, _)| k != "id") {
        out.push_str("CMD=");
        escape(cmd, &mut out);
        out.push('|');
        if let Node::Arr(a) = v {
            if let Some(Node::Obj(o)) = a.first() {
                reply(o, &mut out);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cgminer_text_shapes() {
        let v = r#"{"STATUS":[{"STATUS":"S","When":1,"Code":22,"Msg":"CGMiner versions","Description":"cgminer 4.11.1"}],"VERSION":[{"CGMiner":"4.11.1","PROD":"Avalon Mini3","MAC":"02:00:00:00:00:01"}],"id":1}"#;
        assert_eq!(
            to_text(v).unwrap(),
            "STATUS=S,When=1,Code=22,Msg=CGMiner versions,Description=cgminer 4.11.1|VERSION,CGMiner=4.11.1,PROD=Avalon Mini3,MAC=02:00:00:00:00:01|"
        );
        let devs = r#"{"DEVS":[{"ASC":0,"MHS 5s":1.5},{"ASC":1,"MHS 5s":2.0}],"STATUS":[{"STATUS":"S","Msg":"a,b=c|d"}],"id":1}"#;
        assert_eq!(
            to_text(devs).unwrap(),
            "STATUS=S,Msg=a\\,b\\=c\\|d|ASC=0,MHS 5s=1.500000|ASC=1,MHS 5s=2.000000|"
        );
        let join =
            r#"{"summary":[{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"Elapsed":5}],"id":1}],"id":1}"#;
        assert_eq!(
            to_text(join).unwrap(),
            "CMD=summary|STATUS=S|SUMMARY,Elapsed=5|"
        );
        assert!(to_text("{\"a\":nan}").is_none());
    }
}
