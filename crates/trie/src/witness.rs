//! Building a witness from what sources give: keep the nodes reachable from a state root.

use std::collections::HashSet;

use alloy_primitives::{B256, Bytes};
use alloy_rlp::{Decodable, Encodable};
use alloy_trie::{
    EMPTY_ROOT_HASH, TrieAccount,
    nodes::{ExtensionNodeRef, LeafNodeRef, RlpNode, TrieNode},
};

use crate::NodeSet;

/// The nodes of `nodes` reachable from `state_root`: the account trie's nodes, and the storage
/// tries' nodes under the storage roots of the accounts reached. A node nothing reachable refers
/// to is dropped (an unrelated or post-block node that happens to be in the input). Sorted by
/// bytes.
pub fn reachable(state_root: B256, nodes: &NodeSet) -> Vec<Bytes> {
    let mut seen: HashSet<B256> = HashSet::new();
    let mut out = Vec::new();
    // (hash, whether it is a node of the account trie)
    let mut todo = vec![(state_root, true)];
    while let Some((h, accounts)) = todo.pop() {
        if h == EMPTY_ROOT_HASH || !seen.insert(h) {
            continue;
        }
        let Some(bytes) = nodes.get(&h) else {
            continue;
        };
        out.push(bytes.clone());
        walk(bytes, accounts, &mut todo);
    }
    out.sort_unstable();
    out
}

/// Pushes the hashes a node refers to (children, and the storage roots of account leaves).
fn walk(bytes: &[u8], accounts: bool, todo: &mut Vec<(B256, bool)>) {
    let Ok(node) = TrieNode::decode(&mut &bytes[..]) else {
        return;
    };
    let child = |r: &RlpNode, todo: &mut Vec<(B256, bool)>| match r.as_hash() {
        Some(h) => todo.push((h, accounts)),
        None => walk(r.as_slice(), accounts, todo),
    };
    match node {
        TrieNode::EmptyRoot => {}
        TrieNode::Branch(b) => {
            for (_, c) in b.as_ref().children() {
                if let Some(c) = c {
                    child(c, todo);
                }
            }
        }
        TrieNode::Extension(e) => child(&e.child, todo),
        TrieNode::Leaf(l) => {
            if accounts && let Ok(acc) = TrieAccount::decode(&mut l.value.as_slice()) {
                todo.push((acc.storage_root, false));
            }
        }
    }
}

/// The same leaf or extension with its path shortened by 1, 2, ... nibbles from the front
/// (those of 32 bytes or more, the ones a parent refers to by hash).
///
/// After a block deletes a key, the branch that held it may collapse: its remaining child moves
/// up and its path grows by the nibbles of the nodes it replaces. A proof at the next block then
/// holds that child with the longer path; shortened, it is again the node of the parent state.
/// Such a node counts only if a node of the parent state refers to its hash (see
/// [`reachable`]), so adding candidates never changes what the witness proves.
pub fn shortened(node: &[u8]) -> Vec<Bytes> {
    let Ok(node) = TrieNode::decode(&mut &node[..]) else {
        return vec![];
    };
    let mut out = vec![];
    let mut push = |enc: &dyn Fn(&mut Vec<u8>)| {
        let mut buf = Vec::new();
        enc(&mut buf);
        if buf.len() >= 32 {
            out.push(Bytes::from(buf));
        }
    };
    match node {
        TrieNode::Leaf(l) => {
            for i in 1..=l.key.len() {
                let k = l.key.slice(i..);
                push(&|b| LeafNodeRef::new(&k, &l.value).encode(b));
            }
        }
        TrieNode::Extension(e) => {
            for i in 1..e.key.len() {
                let k = e.key.slice(i..);
                push(&|b| ExtensionNodeRef::new(&k, &e.child).encode(b));
            }
        }
        TrieNode::Branch(_) | TrieNode::EmptyRoot => {}
    }
    out
}
