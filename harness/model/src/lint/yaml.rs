//! A YAML tree that remembers the line of every node, and a cursor over it that
//! knows its key path: the linter points at keys in untyped multi-document YAML.

use std::collections::HashMap;
use std::rc::Rc;

use granit_parser::{Event, Parser, ScalarStyle};

use super::finding::Site;

#[derive(Clone, Debug)]
pub(crate) struct Node {
    /// 1-based line where the node starts.
    pub line: u32,
    pub value: Value,
}

#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// Every scalar as written (after escapes); `plain` when unquoted (null is plain).
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// Where a stream stopped being YAML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: u32,
    pub message: String,
}

enum Frame {
    Seq { line: u32, anchor: usize, items: Vec<Node> },
    Map { line: u32, anchor: usize, entries: Vec<(Node, Node)>, key: Option<Node> },
}

/// Every complete document of the stream, and the first syntax error if there is
/// one (the documents before it are kept; the one it is in is not).
pub(crate) fn parse_stream(text: &str) -> (Vec<Node>, Option<SyntaxError>) {
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    for next in Parser::new_from_str(text) {
        let (event, span) = match next {
            Ok(x) => x,
            Err(e) => {
                let line = u32::try_from(e.marker().line()).unwrap_or(u32::MAX).max(1);
                return (docs, Some(SyntaxError { line, message: e.info() }));
            }
        };
        let line = u32::try_from(span.start.line()).unwrap_or(u32::MAX).max(1);
        let done = match event {
            Event::DocumentStart(..) => {
                root = None;
                anchors.clear();
                None
            }
            Event::DocumentEnd => {
                docs.extend(root.take());
                None
            }
            Event::Scalar(text, style, anchor, _) => {
                let node = Node { line, value: Value::Scalar { text: text.into_owned(), plain: style == ScalarStyle::Plain } };
                if anchor != 0 {
                    anchors.insert(anchor, node.clone());
                }
                Some(node)
            }
            Event::Alias(id) => Some(anchors.get(&id).cloned().unwrap_or(Node { line, value: null() })),
            Event::SequenceStart(_, anchor, _) => {
                stack.push(Frame::Seq { line, anchor, items: Vec::new() });
                None
            }
            Event::MappingStart(_, anchor, _) => {
                stack.push(Frame::Map { line, anchor, entries: Vec::new(), key: None });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { line, anchor, items }) => Some(anchored(&mut anchors, anchor, Node { line, value: Value::Seq(items) })),
                Some(Frame::Map { line, anchor, entries, .. }) => {
                    Some(anchored(&mut anchors, anchor, Node { line, value: Value::Map(entries) }))
                }
                None => None,
            },
            // Stream markers, comments, anchor metadata: no nodes.
            _ => None,
        };
        if let Some(node) = done {
            match stack.last_mut() {
                Some(Frame::Seq { items, .. }) => items.push(node),
                Some(Frame::Map { entries, key, .. }) => match key.take() {
                    Some(k) => entries.push((k, node)),
                    None => *key = Some(node),
                },
                None => root = Some(node),
            }
        }
    }
    (docs, None)
}

fn anchored(anchors: &mut HashMap<usize, Node>, anchor: usize, node: Node) -> Node {
    if anchor != 0 {
        anchors.insert(anchor, node.clone());
    }
    node
}

fn null() -> Value {
    Value::Scalar { text: String::new(), plain: true }
}

impl Node {
    /// The scalar's text; `None` for collections and for null (`~`, `null`, nothing).
    pub fn str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, plain: true, .. } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") => None,
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// A node with the way to it: the file, the object it belongs to (`Deployment/minio`)
/// and the key path inside the object.
#[derive(Clone, Debug)]
pub(crate) struct At<'a> {
    pub node: &'a Node,
    pub file: &'a str,
    pub object: Rc<str>,
    pub path: String,
    /// The line of the key that leads here (for a list item: of the item).
    pub line: u32,
}

impl<'a> At<'a> {
    pub fn root(node: &'a Node, file: &'a str, object: Rc<str>) -> At<'a> {
        At { node, file, object, path: String::new(), line: node.line }
    }

    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<At<'a>> {
        let Value::Map(entries) = &self.node.value else { return None };
        let (k, v) = entries.iter().find(|(k, _)| k.str() == Some(key))?;
        let seg = if key.contains(['.', '/', ' ']) { format!("[{key:?}]") } else { key.to_string() };
        let path = match (self.path.is_empty(), seg.starts_with('[')) {
            (true, _) | (false, true) => format!("{}{seg}", self.path),
            (false, false) => format!("{}.{seg}", self.path),
        };
        Some(At { node: v, file: self.file, object: self.object.clone(), path, line: k.line })
    }

    /// `get` along a dotted path of plain keys: `spec.template.spec`.
    pub fn dig(&self, dotted: &str) -> Option<At<'a>> {
        dotted.split('.').try_fold(self.clone(), |at, key| at.get(key))
    }

    /// The items of a sequence (none for anything else).
    pub fn items(&self) -> Vec<At<'a>> {
        let Value::Seq(items) = &self.node.value else { return Vec::new() };
        items
            .iter()
            .enumerate()
            .map(|(i, n)| At { node: n, file: self.file, object: self.object.clone(), path: format!("{}[{i}]", self.path), line: n.line })
            .collect()
    }

    /// The keys of a mapping with their values (none for anything else).
    pub fn entries(&self) -> Vec<(&'a str, At<'a>)> {
        let Value::Map(entries) = &self.node.value else { return Vec::new() };
        entries.iter().filter_map(|(k, _)| k.str()).filter_map(|k| self.get(k).map(|at| (k, at))).collect()
    }

    pub fn str(&self) -> Option<&'a str> {
        self.node.str()
    }

    /// `get(key)` as text.
    pub fn text(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(|a| a.str())
    }

    /// A mapping or sequence with something in it.
    pub fn is_nonempty(&self) -> bool {
        match &self.node.value {
            Value::Map(e) => !e.is_empty(),
            Value::Seq(i) => !i.is_empty(),
            Value::Scalar { .. } => self.str().is_some(),
        }
    }

    pub fn site(&self) -> Site {
        Site { file: self.file.to_string(), line: self.line, path: self.full_path() }
    }

    /// `Deployment/minio spec.template.spec.containers[0]`.
    pub fn full_path(&self) -> String {
        if self.path.is_empty() {
            self.object.to_string()
        } else {
            format!("{} {}", self.object, self.path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(docs: &[Node], i: usize) -> At<'_> {
        At::root(&docs[i], "f.yaml", Rc::from("X/y"))
    }

    #[test]
    fn lines_and_paths_of_nested_keys_across_documents() {
        let text = "# Source: chart/x.yaml\napiVersion: v1\nkind: A\n---\nkind: B\nspec:\n  env:\n    - name: X\n      value: \"1\"\n    - {name: Y, value: 2}\n";
        let (docs, err) = parse_stream(text);
        assert_eq!(err, None);
        assert_eq!(docs.len(), 2);
        assert_eq!(root(&docs, 0).text("kind"), Some("A"));
        let env = root(&docs, 1).dig("spec.env").unwrap();
        assert_eq!(env.line, 7);
        let items = env.items();
        assert_eq!((items[1].line, items[1].path.as_str()), (10, "spec.env[1]"));
        let v = items[0].get("value").unwrap();
        assert_eq!((v.line, v.str(), v.full_path().as_str()), (9, Some("1"), "X/y spec.env[0].value"));
    }

    #[test]
    fn keys_with_dots_are_quoted_in_paths_and_nulls_are_none() {
        let (docs, _) = parse_stream("metadata:\n  labels:\n    strimzi.io/cluster: my\n  name: ~\n");
        let at = root(&docs, 0);
        let l = at.dig("metadata.labels").unwrap().get("strimzi.io/cluster").unwrap();
        assert_eq!(l.path, "metadata.labels[\"strimzi.io/cluster\"]");
        assert_eq!(l.line, 3);
        assert_eq!(at.dig("metadata.name").unwrap().str(), None);
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let (docs, _) = parse_stream("a: &x\n  k: v\nb: *x\n");
        assert_eq!(root(&docs, 0).dig("b.k").unwrap().str(), Some("v"));
    }

    #[test]
    fn a_syntax_error_has_a_line_and_keeps_the_documents_before_it() {
        let (docs, err) = parse_stream("kind: A\n---\nkind: B\n  bad: [\n");
        assert_eq!(docs.len(), 1);
        let err = err.unwrap();
        assert!(err.line >= 3, "{err:?}");
        assert!(!err.message.is_empty());
    }
}
