//! A YAML tree that remembers the line of every node, and a cursor over it that
//! knows its key path: the linter points at keys in untyped multi-document YAML.

use std::collections::HashMap;
use std::rc::Rc;

use granit_parser::{ErrorKind, Event, Options, Parser, ScalarStyle};

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

/// Where a stream stopped being read: a syntax error, or one of [`super::bounds`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: u32,
    pub message: String,
    /// A bound was hit (`input-too-large`), not a syntax error (`yaml-syntax`).
    pub bound: bool,
}

enum Frame {
    Seq { line: u32, anchor: usize, items: Vec<Node>, size: Size },
    Map { line: u32, anchor: usize, entries: Vec<(Node, Node)>, key: Option<Node>, size: Size },
}

/// What a node costs in memory: its nodes and its scalars' bytes (an alias copies both).
#[derive(Clone, Copy, Debug, Default)]
struct Size {
    nodes: usize,
    bytes: usize,
}

impl Size {
    fn add(&mut self, other: Size) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// Counts against [`super::bounds`] for one file: a stream past any of them stops there,
/// as at a syntax error, instead of growing without end (aliases are copied into the
/// tree, so nine aliases of nine aliases of … are 9^9 nodes from 600 bytes).
#[derive(Default)]
struct Budget {
    nodes: usize,
    alias: Size,
    documents: usize,
}

impl Budget {
    /// Charges a node (or an alias's copy) of `size`; the bound it passes, if any.
    fn charge(&mut self, size: Size, alias: bool) -> Option<String> {
        use super::bounds::*;
        self.nodes = self.nodes.saturating_add(size.nodes);
        if alias {
            self.alias.add(size);
            if self.alias.nodes > ALIAS_NODES {
                return Some(format!(
                    "its aliases expand to more than {ALIAS_NODES} nodes (the bound on alias expansion: a YAML alias bomb?)"
                ));
            }
            if self.alias.bytes > ALIAS_BYTES {
                return Some(format!("its aliases copy more than {} MiB of text (the bound on alias expansion)", ALIAS_BYTES >> 20));
            }
        }
        (self.nodes > NODES).then(|| format!("it has more than {NODES} nodes (the bound on nodes per file, aliases expanded)"))
    }
}

/// Every complete document of the stream, and the first syntax error or bound hit if
/// there is one (the documents before it are kept; the one it is in is not).
pub(crate) fn parse_stream(text: &str) -> (Vec<Node>, Option<SyntaxError>) {
    use super::bounds::{DEPTH, DOCUMENTS};
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut anchors: HashMap<usize, (Node, Size)> = HashMap::new();
    let mut budget = Budget::default();
    let stop = |line: u32, message: String| Some(SyntaxError { line, message, bound: true });
    // The scanner reads ahead of the events: its own nesting limits are the depth bound
    // too, so 100,000 `[` stop there (as the same finding) before any event says so.
    let mut options = Options::default();
    options.flow_nesting_limit = DEPTH;
    options.block_nesting_limit = DEPTH;
    let depth = || format!("it nests more than {DEPTH} levels deep (the bound on depth)");
    for next in Parser::new_from_str_with_options(text, options) {
        let (event, span) = match next {
            Ok(x) => x,
            Err(e) => {
                let line = u32::try_from(e.marker().line()).unwrap_or(u32::MAX).max(1);
                if matches!(e.kind(), ErrorKind::RecursionLimitExceeded) {
                    return (docs, stop(line, depth()));
                }
                return (docs, Some(SyntaxError { line, message: e.info(), bound: false }));
            }
        };
        let line = u32::try_from(span.start.line()).unwrap_or(u32::MAX).max(1);
        let done = match event {
            Event::DocumentStart(..) => {
                root = None;
                anchors.clear();
                budget.documents += 1;
                if budget.documents > DOCUMENTS {
                    return (docs, stop(line, format!("it has more than {DOCUMENTS} documents (the bound on documents per file)")));
                }
                None
            }
            Event::DocumentEnd => {
                docs.extend(root.take());
                None
            }
            Event::Scalar(text, style, anchor, _) => {
                let size = Size { nodes: 1, bytes: text.len() };
                if let Some(why) = budget.charge(size, false) {
                    return (docs, stop(line, why));
                }
                let node = Node { line, value: Value::Scalar { text: text.into_owned(), plain: style == ScalarStyle::Plain } };
                Some((node, size, anchor))
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some((node, size)) => {
                    if let Some(why) = budget.charge(*size, true) {
                        return (docs, stop(line, why));
                    }
                    Some((node.clone(), *size, 0))
                }
                None => Some((Node { line, value: null() }, Size { nodes: 1, bytes: 0 }, 0)),
            },
            Event::SequenceStart(_, anchor, _) | Event::MappingStart(_, anchor, _) => {
                if stack.len() >= DEPTH {
                    return (docs, stop(line, depth()));
                }
                if let Some(why) = budget.charge(Size { nodes: 1, bytes: 0 }, false) {
                    return (docs, stop(line, why));
                }
                let size = Size { nodes: 1, bytes: 0 };
                stack.push(match event {
                    Event::SequenceStart(..) => Frame::Seq { line, anchor, items: Vec::new(), size },
                    _ => Frame::Map { line, anchor, entries: Vec::new(), key: None, size },
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { line, anchor, items, size }) => Some((Node { line, value: Value::Seq(items) }, size, anchor)),
                Some(Frame::Map { line, anchor, entries, size, .. }) => Some((Node { line, value: Value::Map(entries) }, size, anchor)),
                None => None,
            },
            // Stream markers, comments, anchor metadata: no nodes.
            _ => None,
        };
        if let Some((node, size, anchor)) = done {
            if anchor != 0 {
                // The anchor keeps a copy: charged like the nodes it copies.
                if let Some(why) = budget.charge(size, false) {
                    return (docs, stop(line, why));
                }
                anchors.insert(anchor, (node.clone(), size));
            }
            match stack.last_mut() {
                Some(Frame::Seq { items, size: parent, .. }) => {
                    parent.add(size);
                    items.push(node)
                }
                Some(Frame::Map { entries, key, size: parent, .. }) => {
                    parent.add(size);
                    match key.take() {
                        Some(k) => entries.push((k, node)),
                        None => *key = Some(node),
                    }
                }
                None => root = Some(node),
            }
        }
    }
    (docs, None)
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

    /// Nine levels of nine aliases: 9^9 nodes if copied without a bound.
    fn bomb(levels: usize) -> String {
        let mut text = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_string();
        for i in 1..levels {
            let items = vec![format!("*l{}", i - 1); 9].join(", ");
            text.push_str(&format!("l{i}: &l{i} [{items}]\n"));
        }
        text
    }

    #[test]
    fn an_alias_bomb_stops_at_the_alias_bound_with_the_documents_before_it() {
        let text = format!("kind: A\n---\n{}", bomb(9));
        let (docs, err) = parse_stream(&text);
        assert_eq!(docs.len(), 1);
        let err = err.unwrap();
        assert!(err.bound, "{err:?}");
        // l5 (line 8) is the first level whose copies pass 100,000 nodes.
        assert_eq!(err.line, 8, "{err:?}");
        assert!(err.message.contains("aliases expand to more than 100000 nodes"), "{err:?}");
    }

    #[test]
    fn aliases_within_the_bound_are_copied() {
        let (docs, err) = parse_stream(&bomb(4));
        assert_eq!(err, None);
        let l3 = root(&docs, 0).get("l3").unwrap();
        assert_eq!(l3.items().len(), 9);
        assert_eq!(l3.items()[8].items()[8].items()[8].items()[8].str(), Some("lol"));
    }

    #[test]
    fn an_alias_of_a_large_scalar_stops_at_the_byte_bound() {
        let text = format!("a: &a {}\nb: [{}]\n", "x".repeat(1 << 20), vec!["*a"; 17].join(", "));
        let err = parse_stream(&text).1.unwrap();
        assert!(err.bound && err.line == 2, "{err:?}");
        assert!(err.message.contains("16 MiB"), "{err:?}");
    }

    #[test]
    fn nesting_stops_at_the_depth_bound() {
        let err = parse_stream(&"[".repeat(100_000)).1.unwrap();
        assert!(err.bound, "{err:?}");
        assert_eq!(err.message, "it nests more than 128 levels deep (the bound on depth)");
        // 128 levels are fine.
        let ok = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert_eq!(parse_stream(&ok).1, None);
    }

    #[test]
    fn documents_and_nodes_are_bounded() {
        let err = parse_stream(&"---\na: 1\n".repeat(super::super::bounds::DOCUMENTS + 1)).1.unwrap();
        assert!(err.bound && err.message.contains("more than 50000 documents"), "{err:?}");
        let (docs, err) = parse_stream(&"---\na: 1\n".repeat(10_000));
        assert_eq!((docs.len(), err), (10_000, None));
        let err = parse_stream(&format!("[{}]", "1,".repeat(1_000_001))).1.unwrap();
        assert!(err.bound && err.message.contains("more than 1000000 nodes"), "{err:?}");
    }
}
