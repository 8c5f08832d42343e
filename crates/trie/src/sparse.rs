//! A sparse Merkle-Patricia trie: the nodes a witness reveals, the rest kept as hashes.
//!
//! The trie starts as the hash of its root. Every read or write walks from the root and reveals
//! the nodes on its path from a [`NodeSet`] (nodes found by their keccak, so a revealed node is
//! the genuine one). Writes rebuild the path: a leaf splits into a branch, an extension splits
//! where a new key leaves it, and a deletion that leaves a branch with one child collapses the
//! branch into that child (merging leaf and extension paths upwards). A collapse must know what
//! the remaining child is; when that sibling is only a hash and the witness lacks its node, the
//! operation fails with [`SparseError::MissingNode`] naming its path and hash. Nothing is
//! guessed.
//!
//! Node encoding and hashing are alloy-trie's (`LeafNodeRef`, `ExtensionNodeRef`,
//! `BranchNodeRef`, `RlpNode`, `TrieNode::decode`). Each revealed or built node caches its
//! reference (`RlpNode`), cleared along a modified path, so recomputing a root rehashes only what
//! changed.

use std::{collections::HashMap, fmt};

use alloy_primitives::{B256, Bytes, keccak256};
use alloy_rlp::{Decodable, EMPTY_STRING_CODE};
use alloy_trie::{
    EMPTY_ROOT_HASH, Nibbles, TrieMask,
    nodes::{BranchNodeRef, ExtensionNodeRef, LeafNodeRef, RlpNode, TrieNode},
};

/// Trie nodes by hash (the keccak of their RLP): the witness a sparse trie reveals from.
#[derive(Debug, Clone, Default)]
pub struct NodeSet {
    nodes: HashMap<B256, Bytes>,
    bytes: usize,
}

impl NodeSet {
    /// Indexes RLP-encoded nodes by their keccak (duplicates count once).
    pub fn new(nodes: impl IntoIterator<Item = Bytes>) -> Self {
        let mut s = Self::default();
        for n in nodes {
            s.insert(n);
        }
        s
    }

    /// Adds a node; returns its hash.
    pub fn insert(&mut self, node: Bytes) -> B256 {
        let h = keccak256(&node);
        let len = node.len();
        if self.nodes.insert(h, node).is_none() {
            self.bytes += len;
        }
        h
    }

    /// The node with this hash.
    pub fn get(&self, hash: &B256) -> Option<&Bytes> {
        self.nodes.get(hash)
    }

    /// Whether a node with this hash is present.
    pub fn contains(&self, hash: &B256) -> bool {
        self.nodes.contains_key(hash)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there is no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Total bytes of the nodes.
    pub const fn bytes(&self) -> usize {
        self.bytes
    }

    /// The nodes, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&B256, &Bytes)> {
        self.nodes.iter()
    }
}

/// What an operation needed a node for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Reading a key.
    Read,
    /// Inserting or updating a key.
    Write,
    /// Deleting a key (a node on its path).
    Delete,
    /// Deleting a key left a branch with one child: the branch collapses into that sibling,
    /// whose kind (leaf, extension or branch) decides the new shape.
    Collapse,
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Delete => "delete",
            Self::Collapse => "delete (collapsing the branch above it onto it)",
        })
    }
}

/// A nibble path, printed as hex nibbles (`0x3f2`), or `(root)` when empty.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Path(pub Nibbles);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(root)");
        }
        f.write_str("0x")?;
        for n in self.0.iter() {
            write!(f, "{n:x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a sparse-trie operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SparseError {
    /// A node the operation must see is only known by its hash, and the witness lacks it.
    #[error("trie node {hash} at path {path} is not in the witness (needed to {need})")]
    MissingNode {
        /// Path of the node from the trie's root.
        path: Path,
        /// Its hash.
        hash: B256,
        /// What it was needed for.
        need: Need,
    },
    /// A node does not decode, or the trie's shape is not one a valid trie has.
    #[error("trie node at path {path} is invalid: {reason}")]
    Invalid {
        /// Path of the node from the trie's root.
        path: Path,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Clone)]
enum Node {
    Empty,
    /// Not revealed: only its hash is known.
    Hash(B256),
    Leaf {
        key: Nibbles,
        value: Vec<u8>,
        rlp: Option<RlpNode>,
    },
    Extension {
        key: Nibbles,
        child: Box<Self>,
        rlp: Option<RlpNode>,
    },
    Branch {
        children: Box<[Self; 16]>,
        rlp: Option<RlpNode>,
    },
}

fn empty_children() -> Box<[Node; 16]> {
    Box::new(std::array::from_fn(|_| Node::Empty))
}

fn nibble(n: u8) -> Nibbles {
    Nibbles::from_nibbles_unchecked([n])
}

impl Node {
    const fn leaf(key: Nibbles, value: Vec<u8>) -> Self {
        Self::Leaf {
            key,
            value,
            rlp: None,
        }
    }

    fn extension(key: Nibbles, child: Self) -> Self {
        if key.is_empty() {
            return child;
        }
        Self::Extension {
            key,
            child: Box::new(child),
            rlp: None,
        }
    }

    const fn is_empty(&self) -> bool {
        matches!(self, Self::Empty)
    }

    /// Decodes a node's RLP. `rlp` is its reference when known (a node revealed by hash).
    fn decode(bytes: &[u8], rlp: Option<RlpNode>, path: Nibbles) -> Result<Self, SparseError> {
        let invalid = |reason: String| SparseError::Invalid {
            path: Path(path),
            reason,
        };
        let mut buf = bytes;
        let node = TrieNode::decode(&mut buf).map_err(|e| invalid(e.to_string()))?;
        if !buf.is_empty() {
            return Err(invalid(format!("{} trailing bytes", buf.len())));
        }
        let child = |r: &RlpNode, at: Nibbles| -> Result<Self, SparseError> {
            match r.as_hash() {
                Some(h) => Ok(Self::Hash(h)),
                // an inline node (its RLP is shorter than a hash) is embedded in its parent
                None => Self::decode(r.as_slice(), Some(r.clone()), at),
            }
        };
        Ok(match node {
            TrieNode::EmptyRoot => Self::Empty,
            TrieNode::Leaf(l) => Self::Leaf {
                key: l.key,
                value: l.value,
                rlp,
            },
            TrieNode::Extension(e) => {
                if e.key.is_empty() {
                    return Err(invalid("extension with an empty key".into()));
                }
                let c = child(&e.child, path.join(&e.key))?;
                if !matches!(c, Self::Hash(_) | Self::Branch { .. }) {
                    return Err(invalid("extension whose child is not a branch".into()));
                }
                Self::Extension {
                    key: e.key,
                    child: Box::new(c),
                    rlp,
                }
            }
            TrieNode::Branch(b) => {
                let mut children = empty_children();
                for (i, c) in b.as_ref().children() {
                    if let Some(c) = c {
                        children[i as usize] = child(c, path.join(&nibble(i)))?;
                    }
                }
                Self::Branch { children, rlp }
            }
        })
    }

    /// Replaces a hash node by the node the witness holds for it.
    fn reveal(&mut self, nodes: &NodeSet, path: Nibbles, need: Need) -> Result<(), SparseError> {
        let Self::Hash(h) = *self else {
            return Ok(());
        };
        if h == EMPTY_ROOT_HASH {
            *self = Self::Empty;
            return Ok(());
        }
        let bytes = nodes.get(&h).ok_or(SparseError::MissingNode {
            path: Path(path),
            hash: h,
            need,
        })?;
        // a node shorter than a hash is referenced inline, except a root: keep no reference then
        let rlp = (bytes.len() >= 32).then(|| RlpNode::word_rlp(&h));
        *self = Self::decode(bytes, rlp, path)?;
        Ok(())
    }

    /// The node's reference in its parent: its RLP when shorter than 32 bytes, else its hash.
    fn rlp(&mut self, buf: &mut Vec<u8>) -> RlpNode {
        match self {
            Self::Empty => RlpNode::from_raw(&[EMPTY_STRING_CODE]).expect("one byte"),
            Self::Hash(h) => RlpNode::word_rlp(h),
            Self::Leaf { key, value, rlp } => {
                if let Some(r) = rlp {
                    return r.clone();
                }
                buf.clear();
                let r = LeafNodeRef::new(key, value).rlp(buf);
                *rlp = Some(r.clone());
                r
            }
            Self::Extension { key, child, rlp } => {
                if let Some(r) = rlp {
                    return r.clone();
                }
                let c = child.rlp(buf);
                buf.clear();
                let r = ExtensionNodeRef::new(key, &c).rlp(buf);
                *rlp = Some(r.clone());
                r
            }
            Self::Branch { children, rlp } => {
                if let Some(r) = rlp {
                    return r.clone();
                }
                let mut stack = Vec::with_capacity(16);
                let mut mask = TrieMask::default();
                for (i, c) in children.iter_mut().enumerate() {
                    if !c.is_empty() {
                        stack.push(c.rlp(buf));
                        mask.set_bit(i as u8);
                    }
                }
                buf.clear();
                let r = BranchNodeRef::new(&stack, mask).rlp(buf);
                *rlp = Some(r.clone());
                r
            }
        }
    }

    fn insert(
        &mut self,
        nodes: &NodeSet,
        key: &Nibbles,
        at: usize,
        value: Vec<u8>,
    ) -> Result<(), SparseError> {
        self.reveal(nodes, key.slice(..at), Need::Write)?;
        let rest = key.slice(at..);
        let invalid = |reason: &str| SparseError::Invalid {
            path: Path(key.slice(..at)),
            reason: reason.into(),
        };
        match self {
            Self::Empty => *self = Self::leaf(rest, value),
            Self::Hash(_) => unreachable!("revealed above"),
            Self::Leaf {
                key: k,
                value: v,
                rlp,
            } => {
                if *k == rest {
                    *v = value;
                    *rlp = None;
                    return Ok(());
                }
                let common = rest.common_prefix_length(k);
                let (Some(old_i), Some(new_i)) = (k.get(common), rest.get(common)) else {
                    return Err(invalid("a leaf's key is a prefix of another key"));
                };
                let mut children = empty_children();
                children[old_i as usize] = Self::leaf(k.slice(common + 1..), std::mem::take(v));
                children[new_i as usize] = Self::leaf(rest.slice(common + 1..), value);
                let branch = Self::Branch {
                    children,
                    rlp: None,
                };
                *self = Self::extension(rest.slice(..common), branch);
            }
            Self::Extension { key: k, child, rlp } => {
                if rest.starts_with(k) {
                    *rlp = None;
                    let n = k.len();
                    return child.insert(nodes, key, at + n, value);
                }
                let common = rest.common_prefix_length(k);
                let (Some(ext_i), Some(new_i)) = (k.get(common), rest.get(common)) else {
                    return Err(invalid("a key ends inside an extension"));
                };
                let old_child = std::mem::replace(child.as_mut(), Self::Empty);
                let mut children = empty_children();
                children[ext_i as usize] = Self::extension(k.slice(common + 1..), old_child);
                children[new_i as usize] = Self::leaf(rest.slice(common + 1..), value);
                let branch = Self::Branch {
                    children,
                    rlp: None,
                };
                *self = Self::extension(rest.slice(..common), branch);
            }
            Self::Branch { children, rlp } => {
                let Some(i) = rest.first() else {
                    return Err(invalid("a key ends at a branch"));
                };
                *rlp = None;
                return children[i as usize].insert(nodes, key, at + 1, value);
            }
        }
        Ok(())
    }

    /// Removes `key`; returns whether it was there.
    fn remove(&mut self, nodes: &NodeSet, key: &Nibbles, at: usize) -> Result<bool, SparseError> {
        self.reveal(nodes, key.slice(..at), Need::Delete)?;
        let rest = key.slice(at..);
        match self {
            Self::Empty => Ok(false),
            Self::Hash(_) => unreachable!("revealed above"),
            Self::Leaf { key: k, .. } => {
                if *k != rest {
                    return Ok(false);
                }
                *self = Self::Empty;
                Ok(true)
            }
            Self::Extension { key: k, child, rlp } => {
                if !rest.starts_with(k) {
                    return Ok(false);
                }
                let k = *k;
                if !child.remove(nodes, key, at + k.len())? {
                    return Ok(false);
                }
                *rlp = None;
                // the child branch may have collapsed: merge its path into this extension's
                match std::mem::replace(child.as_mut(), Self::Empty) {
                    Self::Empty => *self = Self::Empty,
                    Self::Leaf { key: k2, value, .. } => *self = Self::leaf(k.join(&k2), value),
                    Self::Extension { key: k2, child, .. } => {
                        *self = Self::extension(k.join(&k2), *child)
                    }
                    other => **child = other,
                }
                Ok(true)
            }
            Self::Branch { children, rlp } => {
                let Some(i) = rest.first() else {
                    return Err(SparseError::Invalid {
                        path: Path(key.slice(..at)),
                        reason: "a key ends at a branch".into(),
                    });
                };
                if !children[i as usize].remove(nodes, key, at + 1)? {
                    return Ok(false);
                }
                *rlp = None;
                if !children[i as usize].is_empty() {
                    return Ok(true);
                }
                let mut left = (0..16u8).filter(|j| !children[*j as usize].is_empty());
                let (Some(j), None) = (left.next(), left.next()) else {
                    if children.iter().all(Self::is_empty) {
                        *self = Self::Empty;
                    }
                    return Ok(true);
                };
                // one child left: the branch becomes that child, one nibble longer
                let sibling = &mut children[j as usize];
                sibling.reveal(nodes, key.slice(..at).join(&nibble(j)), Need::Collapse)?;
                let prefix = nibble(j);
                *self = match std::mem::replace(sibling, Self::Empty) {
                    Self::Leaf { key: k2, value, .. } => Self::leaf(prefix.join(&k2), value),
                    Self::Extension { key: k2, child, .. } => {
                        Self::extension(prefix.join(&k2), *child)
                    }
                    b @ Self::Branch { .. } => Self::extension(prefix, b),
                    Self::Empty | Self::Hash(_) => unreachable!("non-empty and revealed"),
                };
                Ok(true)
            }
        }
    }
}

/// A sparse trie over hashed (fixed-length) keys.
#[derive(Debug, Clone)]
pub struct SparseTrie {
    root: Node,
}

impl SparseTrie {
    /// A trie known by its root hash only.
    pub const fn new(root: B256) -> Self {
        Self {
            root: Node::Hash(root),
        }
    }

    /// An empty trie.
    pub const fn empty() -> Self {
        Self { root: Node::Empty }
    }

    /// The value under `key` (the leaf's value bytes), `None` when the trie proves it absent.
    /// Reveals the nodes on the path.
    pub fn get(&mut self, nodes: &NodeSet, key: &Nibbles) -> Result<Option<Vec<u8>>, SparseError> {
        let mut node = &mut self.root;
        let mut at = 0;
        loop {
            node.reveal(nodes, key.slice(..at), Need::Read)?;
            match node {
                Node::Empty => return Ok(None),
                Node::Hash(_) => unreachable!("revealed above"),
                Node::Leaf { key: k, value, .. } => {
                    return Ok((key.slice(at..) == *k).then(|| value.clone()));
                }
                Node::Extension { key: k, child, .. } => {
                    if !key.slice(at..).starts_with(k) {
                        return Ok(None);
                    }
                    at += k.len();
                    node = child;
                }
                Node::Branch { children, .. } => {
                    let Some(i) = key.get(at) else {
                        return Err(SparseError::Invalid {
                            path: Path(key.slice(..at)),
                            reason: "a key ends at a branch".into(),
                        });
                    };
                    at += 1;
                    node = &mut children[i as usize];
                }
            }
        }
    }

    /// Sets `key` to `value` (a leaf's value bytes; must not be empty).
    pub fn insert(
        &mut self,
        nodes: &NodeSet,
        key: &Nibbles,
        value: Vec<u8>,
    ) -> Result<(), SparseError> {
        self.root.insert(nodes, key, 0, value)
    }

    /// Deletes `key`; returns whether it was present.
    pub fn remove(&mut self, nodes: &NodeSet, key: &Nibbles) -> Result<bool, SparseError> {
        self.root.remove(nodes, key, 0)
    }

    /// The root hash (hashes only what changed since the last call).
    pub fn root(&mut self) -> B256 {
        match &self.root {
            Node::Empty => return EMPTY_ROOT_HASH,
            Node::Hash(h) => return *h,
            _ => {}
        }
        let r = self.root.rlp(&mut Vec::with_capacity(544));
        // the root is hashed even when its RLP is short enough to be inlined
        r.as_hash().unwrap_or_else(|| keccak256(r.as_slice()))
    }
}
