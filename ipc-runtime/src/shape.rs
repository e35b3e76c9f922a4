//! The wire shape of a type, traced from its `Deserialize` impl: what the
//! handshake compares besides channel names and kinds, so that a renderer
//! built from another version of a type (a field added, renamed, moved or
//! retyped, a variant added) is refused at connect time instead of having
//! its bytes read as something else.
//!
//! [`trace`] deserializes a `T` from a [`Tracer`], a deserializer that
//! makes up values (numbers 1, strings `"a"`, one item per sequence and
//! map, `Some` for options) and records what `T` asked for at each step:
//! the same requests `T` makes of bincode, so the same shape as on the
//! wire, with the names of struct fields and enum variants. Type names are
//! left out (renaming a type does not change its encoding), but for a
//! recursive type's reference to itself.
//!
//! An enum yields one variant per pass, so `T` is traced again until every
//! variant of every enum met has been seen (at most [`MAX_PASSES`] passes).
//! A value that contains itself (a tree's children, a list's tail) is
//! recorded as a reference to the enclosing type of that name, and its
//! content is made as small as the type allows (`None`, no items, a unit
//! variant or one not already being made), so that tracing ends.
//!
//! Tracing can fail: a type whose `Deserialize` refuses made-up values
//! (validation with `try_from`, say), asks for a self-describing format,
//! nests deeper than [`MAX_DEPTH`] or needs more than [`MAX_PASSES`]
//! passes or [`MAX_NODES`] steps. The caller then falls back to the type's
//! name as written. The result depends only on the type and this
//! algorithm, never on addresses or hash seeds, so two processes built from
//! the same types agree.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

/// How deep a traced value may nest before tracing gives up.
const MAX_DEPTH: usize = 64;
/// How many times a type may be traced to see every variant of its enums.
const MAX_PASSES: usize = 1024;
/// How many steps one pass may take (a `[u8; 4096]` takes 4097).
const MAX_NODES: usize = 100_000;
/// The stack a level of nesting must leave free to go one level deeper.
const STACK_RESERVE: usize = 64 * 1024;

/// The shape of `T`'s encoding as a 64-bit hash, or `None` if it cannot be
/// traced (see the module docs). Runs `T`'s `Deserialize` impl on made-up
/// values; a panic in it counts as "cannot be traced".
pub(crate) fn trace<T: DeserializeOwned>() -> Option<u64> {
    std::panic::catch_unwind(|| {
        let mut state = State::default();
        for _ in 0..MAX_PASSES {
            state.open.clear();
            state.built = vec![Vec::new()];
            state.minimal = 0;
            state.nodes = 0;
            T::deserialize(Tracer { st: &mut state }).ok()?;
            let top = state.built.pop()?.pop()?;
            if state.enums.values().all(EnumSeen::complete) {
                let mut h = Hash::default();
                state.hash(&top, &mut h, &mut Vec::new());
                return Some(h.0);
            }
        }
        None
    })
    .ok()
    .flatten()
}

/// What was recorded of one value.
#[derive(Debug, Clone)]
enum Node {
    /// A primitive, by serde's name for it (`u8`, `str`, `bytes`, …).
    Prim(&'static str),
    /// `()`, a unit struct.
    Unit,
    Option(Box<Node>),
    Seq(Box<Node>),
    Map(Box<Node>, Box<Node>),
    /// A tuple, a tuple struct or an array; a newtype struct is its content.
    Tuple(Vec<Node>),
    Struct(&'static [&'static str], Vec<Node>),
    /// An enum, whose variants are in [`State::enums`].
    Enum(EnumKey),
    /// A value of a type already being traced around it: the type's name.
    Recursive(&'static str),
    /// Not traced: made as small as possible inside a recursive value.
    Skipped,
}

/// An enum by its name and variant names: never by address, so that two
/// builds of the same types agree. (Two enums alike in both, such as
/// `Result<u8, E>` and `Result<u16, E>`, share what is recorded: some of
/// their differences then go unseen, the same way in every build.)
type EnumKey = (&'static str, &'static [&'static str]);

/// The variants of one enum seen so far.
#[derive(Debug, Default)]
struct EnumSeen {
    count: usize,
    /// Each variant's content, once seen.
    variants: BTreeMap<u32, Variant>,
    /// Variants chosen in this or an earlier pass (seen, or being seen).
    claimed: BTreeSet<u32>,
}

impl EnumSeen {
    fn complete(&self) -> bool {
        self.variants.len() >= self.count
    }
}

#[derive(Debug, Clone)]
enum Variant {
    Unit,
    Newtype(Node),
    Tuple(Vec<Node>),
    Struct(&'static [&'static str], Vec<Node>),
}

/// A value being traced, innermost last.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    /// A struct, tuple struct, newtype or unit struct of this name.
    Named(&'static str),
    /// This variant of an enum.
    Variant(EnumKey, u32),
    /// Anything else.
    Anonymous,
}

#[derive(Debug, Default)]
struct State {
    open: Vec<Open>,
    /// What each open value has recorded so far; one more at the bottom for
    /// the top-level value.
    built: Vec<Vec<Node>>,
    /// Above 0 inside a recursive value: options are `None`, sequences and
    /// maps empty, enums take a unit variant if they have one.
    minimal: usize,
    nodes: usize,
    enums: BTreeMap<EnumKey, EnumSeen>,
}

/// Why tracing stopped; never shown (the caller falls back to the type's
/// name), but serde's error trait needs one.
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot trace this type")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Stop
    }
}

type Result<T> = std::result::Result<T, Stop>;

impl State {
    /// Records a value with nothing inside it.
    fn leaf(&mut self, node: Node) -> Result<()> {
        self.step()?;
        let node = if self.minimal > 0 {
            Node::Skipped
        } else {
            node
        };
        self.built.last_mut().ok_or(Stop)?.push(node);
        Ok(())
    }

    fn step(&mut self) -> Result<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Stop);
        }
        Ok(())
    }

    /// Opens a value with parts; `recursive` if a value of the same type
    /// is already open around it.
    fn open(&mut self, open: Open) -> Result<bool> {
        self.step()?;
        if self.open.len() >= MAX_DEPTH
            || stacker::remaining_stack().is_some_and(|left| left < STACK_RESERVE)
        {
            return Err(Stop);
        }
        let recursive = match open {
            Open::Named(name) => self.open.contains(&Open::Named(name)),
            Open::Variant(key, _) => self
                .open
                .iter()
                .any(|o| matches!(o, Open::Variant(k, _) if *k == key)),
            Open::Anonymous => false,
        };
        if recursive {
            self.minimal += 1;
        }
        self.open.push(open);
        self.built.push(Vec::new());
        Ok(recursive)
    }

    /// Closes the innermost value, returning its parts; records `node` made
    /// of them in the value around it, or, for a recursive value, a
    /// reference to its type.
    fn close(
        &mut self,
        recursive: bool,
        node: impl FnOnce(Vec<Node>) -> Node,
    ) -> Result<Option<Vec<Node>>> {
        self.open.pop();
        let parts = self.built.pop().ok_or(Stop)?;
        let (node, parts) = if recursive {
            self.minimal -= 1;
            (None, None)
        } else if self.minimal > 0 {
            (Some(Node::Skipped), None)
        } else {
            (Some(node(parts.clone())), Some(parts))
        };
        if let Some(node) = node {
            self.built.last_mut().ok_or(Stop)?.push(node);
        }
        Ok(parts)
    }

    /// The variant to make for an enum: one not seen yet, if not inside a
    /// recursive value; otherwise a unit variant, or the first not being
    /// made around it.
    fn choose(&mut self, key: EnumKey, units: Option<u32>) -> u32 {
        let count = key.1.len();
        let open: Vec<u32> = self
            .open
            .iter()
            .filter_map(|o| match o {
                Open::Variant(k, v) if *k == key => Some(*v),
                _ => None,
            })
            .collect();
        let recursive = !open.is_empty();
        if self.minimal == 0 && !recursive {
            let seen = self.enums.entry(key).or_default();
            seen.count = count;
            if let Some(v) = (0..count as u32).find(|v| !seen.claimed.contains(v)) {
                seen.claimed.insert(v);
                return v;
            }
            // Every variant is seen or being seen: head for an enum inside
            // one of them that is not complete yet.
            if let Some(v) = (0..count as u32).find(|v| self.leads_to_unseen(key, *v)) {
                return v;
            }
        }
        units
            .or_else(|| (0..count as u32).find(|v| !open.contains(v)))
            .unwrap_or(0)
    }

    /// Whether variant `v` of `key`, as recorded, holds an enum with a
    /// variant not seen yet.
    fn leads_to_unseen(&self, key: EnumKey, v: u32) -> bool {
        let Some(variant) = self.enums.get(&key).and_then(|s| s.variants.get(&v)) else {
            return false;
        };
        self.variant_holds_unseen(variant, &mut vec![key])
    }

    fn variant_holds_unseen(&self, variant: &Variant, visited: &mut Vec<EnumKey>) -> bool {
        match variant {
            Variant::Unit => false,
            Variant::Newtype(node) => self.holds_unseen(node, visited),
            Variant::Tuple(parts) | Variant::Struct(_, parts) => {
                parts.iter().any(|p| self.holds_unseen(p, visited))
            }
        }
    }

    fn holds_unseen(&self, node: &Node, visited: &mut Vec<EnumKey>) -> bool {
        match node {
            Node::Option(inner) | Node::Seq(inner) => self.holds_unseen(inner, visited),
            Node::Map(k, v) => self.holds_unseen(k, visited) || self.holds_unseen(v, visited),
            Node::Tuple(parts) | Node::Struct(_, parts) => {
                parts.iter().any(|p| self.holds_unseen(p, visited))
            }
            Node::Enum(key) => {
                if visited.contains(key) {
                    return false;
                }
                visited.push(*key);
                let Some(seen) = self.enums.get(key) else {
                    return false;
                };
                !seen.complete()
                    || seen
                        .variants
                        .values()
                        .any(|v| self.variant_holds_unseen(v, visited))
            }
            Node::Prim(_) | Node::Unit | Node::Recursive(_) | Node::Skipped => false,
        }
    }

    /// Feeds `node` into `h`: the hash of the value's shape.
    fn hash(&self, node: &Node, h: &mut Hash, enums: &mut Vec<EnumKey>) {
        match node {
            Node::Prim(name) => h.word(name),
            Node::Unit => h.word("unit"),
            Node::Option(inner) => {
                h.word("option");
                self.hash(inner, h, enums);
            }
            Node::Seq(inner) => {
                h.word("seq");
                self.hash(inner, h, enums);
            }
            Node::Map(key, value) => {
                h.word("map");
                self.hash(key, h, enums);
                self.hash(value, h, enums);
            }
            Node::Tuple(parts) => {
                h.word("tuple");
                self.hash_all(parts, h, enums);
            }
            Node::Struct(fields, parts) => self.hash_struct(fields, parts, h, enums),
            Node::Recursive(name) => {
                h.word("recursive");
                h.word(name);
            }
            Node::Skipped => h.word("skipped"),
            Node::Enum(key) => {
                h.word("enum");
                if let Some(at) = enums.iter().position(|k| k == key) {
                    // An enum inside its own variants: a reference back.
                    h.word("cycle");
                    h.word(&at.to_string());
                    return;
                }
                enums.push(*key);
                let seen = self.enums.get(key);
                h.word(&key.1.len().to_string());
                for (index, name) in key.1.iter().enumerate() {
                    h.word(name);
                    match seen.and_then(|s| s.variants.get(&(index as u32))) {
                        None => h.word("unseen"),
                        Some(Variant::Unit) => h.word("unit"),
                        Some(Variant::Newtype(inner)) => self.hash(inner, h, enums),
                        Some(Variant::Tuple(parts)) => {
                            h.word("tuple");
                            self.hash_all(parts, h, enums);
                        }
                        Some(Variant::Struct(fields, parts)) => {
                            self.hash_struct(fields, parts, h, enums)
                        }
                    }
                }
                enums.pop();
            }
        }
    }

    fn hash_all(&self, parts: &[Node], h: &mut Hash, enums: &mut Vec<EnumKey>) {
        h.word(&parts.len().to_string());
        for part in parts {
            self.hash(part, h, enums);
        }
    }

    fn hash_struct(&self, fields: &[&str], parts: &[Node], h: &mut Hash, enums: &mut Vec<EnumKey>) {
        h.word("struct");
        h.word(&parts.len().to_string());
        for (i, part) in parts.iter().enumerate() {
            h.word(fields.get(i).copied().unwrap_or("?"));
            self.hash(part, h, enums);
        }
    }
}

/// FNV-1a over words, each ended by a byte no UTF-8 text holds.
struct Hash(u64);

impl Default for Hash {
    fn default() -> Self {
        Hash(0xcbf2_9ce4_8422_2325)
    }
}

impl Hash {
    fn word(&mut self, word: &str) {
        for b in word.bytes().chain([0xff]) {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The deserializer that makes up values and records what was asked.
struct Tracer<'a> {
    st: &'a mut State,
}

impl Tracer<'_> {
    /// `len` parts, each traced by `visitor` through a [`Parts`] access.
    fn parts<'de, V: Visitor<'de>>(
        self,
        open: Open,
        len: usize,
        visitor: V,
        node: impl FnOnce(Vec<Node>) -> Node,
    ) -> Result<V::Value> {
        let recursive = self.st.open(open)?;
        let value = visitor.visit_seq(Parts {
            st: self.st,
            left: len,
        })?;
        self.st.close(recursive, node)?;
        Ok(value)
    }

    /// A sequence or map: one item, or none inside a recursive value.
    fn items(&self) -> usize {
        usize::from(self.st.minimal == 0)
    }
}

macro_rules! made_up {
    ($($method:ident => $visit:ident($value:expr), $name:literal;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                self.st.leaf(Node::Prim($name))?;
                visitor.$visit($value)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Tracer<'_> {
    type Error = Stop;

    made_up! {
        deserialize_bool => visit_bool(false), "bool";
        deserialize_i8 => visit_i8(1), "i8";
        deserialize_i16 => visit_i16(1), "i16";
        deserialize_i32 => visit_i32(1), "i32";
        deserialize_i64 => visit_i64(1), "i64";
        deserialize_i128 => visit_i128(1), "i128";
        deserialize_u8 => visit_u8(1), "u8";
        deserialize_u16 => visit_u16(1), "u16";
        deserialize_u32 => visit_u32(1), "u32";
        deserialize_u64 => visit_u64(1), "u64";
        deserialize_u128 => visit_u128(1), "u128";
        deserialize_f32 => visit_f32(1.0), "f32";
        deserialize_f64 => visit_f64(1.0), "f64";
        deserialize_char => visit_char('a'), "char";
        deserialize_str => visit_str("a"), "str";
        deserialize_string => visit_str("a"), "str";
        deserialize_bytes => visit_bytes(b"a"), "bytes";
        deserialize_byte_buf => visit_bytes(b"a"), "bytes";
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        // bincode refuses it too: such a type cannot be in a contract.
        Err(Stop)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(Stop)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(Stop)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.st.minimal > 0 {
            self.st.leaf(Node::Skipped)?;
            return visitor.visit_none();
        }
        let recursive = self.st.open(Open::Anonymous)?;
        let value = visitor.visit_some(Tracer { st: self.st })?;
        self.st.close(recursive, |mut parts| {
            Node::Option(Box::new(parts.pop().unwrap_or(Node::Skipped)))
        })?;
        Ok(value)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.st.leaf(Node::Unit)?;
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.st.leaf(Node::Unit)?;
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        let recursive = self.st.open(Open::Named(name))?;
        let value = visitor.visit_newtype_struct(Tracer { st: self.st })?;
        // Encoded as its content, and recorded so.
        self.st
            .close(recursive, |mut parts| parts.pop().unwrap_or(Node::Skipped))?;
        if recursive {
            self.st.leaf(Node::Recursive(name))?;
        }
        Ok(value)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let items = self.items();
        self.parts(Open::Anonymous, items, visitor, |mut parts| {
            Node::Seq(Box::new(parts.pop().unwrap_or(Node::Skipped)))
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        self.parts(Open::Anonymous, len, visitor, Node::Tuple)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.named(name, len, visitor, Node::Tuple)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let entries = self.items();
        let recursive = self.st.open(Open::Anonymous)?;
        let value = visitor.visit_map(Parts {
            st: self.st,
            left: entries * 2,
        })?;
        self.st.close(recursive, |mut parts| {
            let value = parts.pop().unwrap_or(Node::Skipped);
            let key = parts.pop().unwrap_or(Node::Skipped);
            Node::Map(Box::new(key), Box::new(value))
        })?;
        Ok(value)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.named(name, fields.len(), visitor, |parts| {
            Node::Struct(fields, parts)
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let key = (name, variants);
        // Which variant is unit is only known once seen; until then the
        // first one not being made around this value is taken.
        let units = self.st.enums.get(&key).and_then(|seen| {
            seen.variants
                .iter()
                .find(|(_, v)| matches!(v, Variant::Unit))
                .map(|(i, _)| *i)
        });
        let variant = self.st.choose(key, units);
        let recursive = self.st.open(Open::Variant(key, variant))?;
        let fresh = self.st.minimal == 0
            && self
                .st
                .enums
                .get(&key)
                .is_some_and(|seen| !seen.variants.contains_key(&variant));
        let value = visitor.visit_enum(Choice {
            st: self.st,
            variant,
        })?;
        let parts = self.st.close(recursive, |_| Node::Enum(key))?;
        if recursive {
            self.st.leaf(Node::Recursive(name))?;
        }
        if let (true, Some(mut parts)) = (fresh, parts) {
            // What the variant access recorded: its kind, then its parts.
            let recorded = match parts.first() {
                Some(Node::Prim("unit-variant")) => Some(Variant::Unit),
                Some(Node::Prim("newtype-variant")) => parts.pop().map(Variant::Newtype),
                Some(Node::Prim("tuple-variant")) => Some(Variant::Tuple(parts.split_off(1))),
                Some(Node::Struct(fields, _)) => {
                    let fields = *fields;
                    Some(Variant::Struct(fields, parts.split_off(1)))
                }
                _ => None,
            };
            if let (Some(seen), Some(recorded)) = (self.st.enums.get_mut(&key), recorded) {
                seen.variants.insert(variant, recorded);
            }
        }
        Ok(value)
    }

    fn is_human_readable(&self) -> bool {
        // As bincode: `IpAddr` and the like take their compact form.
        false
    }
}

impl Tracer<'_> {
    /// A struct or tuple struct of `len` fields, by name.
    fn named<'de, V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
        node: impl FnOnce(Vec<Node>) -> Node,
    ) -> Result<V::Value> {
        let st = self.st;
        let recursive_before = st.open.contains(&Open::Named(name));
        let value = Tracer { st }.parts(Open::Named(name), len, visitor, node)?;
        if recursive_before {
            st.leaf(Node::Recursive(name))?;
        }
        Ok(value)
    }
}

/// The parts of a tuple, struct, sequence or map, made up one by one.
struct Parts<'a> {
    st: &'a mut State,
    left: usize,
}

impl<'de> SeqAccess<'de> for Parts<'_> {
    type Error = Stop;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(Tracer { st: self.st }).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> MapAccess<'de> for Parts<'_> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        self.next_element_seed(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.left = self.left.saturating_sub(1);
        seed.deserialize(Tracer { st: self.st })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left / 2)
    }
}

/// The variant [`State::choose`] picked, handed to an enum's visitor.
struct Choice<'a> {
    st: &'a mut State,
    variant: u32,
}

impl<'de, 'a> EnumAccess<'de> for Choice<'a> {
    type Error = Stop;
    type Variant = Choice<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant)> {
        // As bincode: the variant's index, as a u32.
        let tag = seed.deserialize(de::value::U32Deserializer::<Stop>::new(self.variant))?;
        Ok((tag, self))
    }
}

impl<'de> VariantAccess<'de> for Choice<'_> {
    type Error = Stop;

    fn unit_variant(self) -> Result<()> {
        self.st.leaf(Node::Prim("unit-variant"))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        self.st.leaf(Node::Prim("newtype-variant"))?;
        seed.deserialize(Tracer { st: self.st })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        self.st.leaf(Node::Prim("tuple-variant"))?;
        visitor.visit_seq(Parts {
            st: self.st,
            left: len,
        })
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.st.leaf(Node::Struct(fields, Vec::new()))?;
        visitor.visit_seq(Parts {
            st: self.st,
            left: fields.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde::Deserialize;

    use super::trace;

    // The same type, in versions of a contract.
    #[allow(dead_code)]
    mod v1 {
        #[derive(serde::Deserialize)]
        pub struct Transfer {
            pub from: String,
            pub to: String,
            pub cents: u64,
        }
    }
    #[allow(dead_code)]
    mod v2_swapped {
        #[derive(serde::Deserialize)]
        pub struct Transfer {
            pub to: String,
            pub from: String,
            pub cents: u64,
        }
    }
    #[allow(dead_code)]
    mod v2_retyped {
        #[derive(serde::Deserialize)]
        pub struct Transfer {
            pub from: String,
            pub to: String,
            pub cents: i64,
        }
    }
    #[allow(dead_code)]
    mod v2_renamed_type {
        #[derive(serde::Deserialize)]
        pub struct Payment {
            pub from: String,
            pub to: String,
            pub cents: u64,
        }
    }

    #[test]
    fn a_struct_changed_in_any_field_traces_differently() {
        let v1 = trace::<v1::Transfer>().unwrap();
        assert_eq!(trace::<v1::Transfer>(), Some(v1));
        assert_ne!(trace::<v2_swapped::Transfer>().unwrap(), v1);
        assert_ne!(trace::<v2_retyped::Transfer>().unwrap(), v1);
        // The encoding does not carry the type's name.
        assert_eq!(trace::<v2_renamed_type::Payment>().unwrap(), v1);
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Value {
        A,
        B(u8),
        C { x: String },
        D(u8, u8),
        E,
        F,
        G,
        H,
        I,
        J(Option<Vec<u32>>),
    }

    /// `Value` with a different last variant.
    #[derive(Deserialize)]
    #[serde(rename = "Value")]
    #[allow(dead_code)]
    enum ValueV2 {
        A,
        B(u8),
        C { x: String },
        D(u8, u8),
        E,
        F,
        G,
        H,
        I,
        J(Option<Vec<u64>>),
    }

    macro_rules! command {
        ($name:ident, $value:ty) => {
            #[derive(Deserialize)]
            #[serde(rename = "Command")]
            #[allow(dead_code)]
            enum $name {
                C0,
                C1,
                C2,
                C3,
                C4,
                C5,
                C6,
                C7,
                C8,
                C9,
                C10,
                C11,
                C12,
                C13,
                C14,
                C15,
                C16,
                C17,
                C18,
                C19,
                C20,
                C21,
                C22,
                C23,
                C24,
                C25,
                C26,
                C27,
                C28,
                Set { key: String, value: $value },
            }
        };
    }
    command!(Command, Value);
    command!(CommandV2, ValueV2);

    #[test]
    fn every_variant_of_nested_enums_is_traced() {
        let v1 = trace::<Vec<Command>>().unwrap();
        assert_ne!(trace::<Vec<CommandV2>>().unwrap(), v1);
        assert_ne!(trace::<Value>().unwrap(), trace::<ValueV2>().unwrap());
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum List {
        Cons(u8, Box<List>),
        Nil,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Expr {
        Add(Box<Expr>, Box<Expr>),
        Neg { inner: Box<Expr> },
        Num(i64),
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Tree {
        label: String,
        children: Vec<Tree>,
        parent: Option<Box<Tree>>,
        index: HashMap<String, Tree>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Ping {
        Pong(Box<Pong>),
        Stop,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Pong {
        Ping(Box<Ping>),
        Halt(u8),
    }

    /// No finite value of it exists.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Endless {
        More(Box<Endless>),
    }

    #[test]
    fn recursive_types_are_traced_and_tracing_ends() {
        for shape in [
            trace::<List>(),
            trace::<Expr>(),
            trace::<Tree>(),
            trace::<Ping>(),
            trace::<(Pong, Ping)>(),
        ] {
            assert!(shape.is_some());
        }
        assert_ne!(trace::<List>().unwrap(), trace::<Expr>().unwrap());
        assert_eq!(trace::<Endless>(), None);
    }

    #[derive(Deserialize)]
    #[serde(try_from = "String")]
    struct Strict(#[allow(dead_code)] String);

    impl TryFrom<String> for Strict {
        type Error = String;
        fn try_from(s: String) -> Result<Self, String> {
            if s.len() > 3 {
                Ok(Strict(s))
            } else {
                Err("too short".into())
            }
        }
    }

    struct Panics;

    impl<'de> Deserialize<'de> for Panics {
        fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
            panic!("a Deserialize impl that panics");
        }
    }

    #[test]
    fn what_cannot_be_traced_is_none() {
        assert_eq!(trace::<Strict>(), None);
        assert_eq!(trace::<(u8, Strict)>(), None);
        assert_eq!(trace::<serde_json::Value>(), None);
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let panics = trace::<Panics>();
        std::panic::set_hook(hook);
        assert_eq!(panics, None);
    }

    #[test]
    fn common_types_are_traced() {
        let blob = trace::<crate::Blob>().unwrap();
        assert_eq!(trace::<serde_bytes::ByteBuf>().unwrap(), blob);
        assert_ne!(trace::<Vec<u8>>().unwrap(), blob);
        assert!(trace::<std::num::NonZeroU32>().is_some());
        assert!(trace::<std::net::IpAddr>().is_some());
        assert!(trace::<std::time::Duration>().is_some());
        assert!(trace::<std::path::PathBuf>().is_some());
        assert!(trace::<[u8; 32]>().is_some());
        assert!(trace::<Result<u8, String>>().is_some());
        assert!(trace::<HashMap<u64, Vec<Option<String>>>>().is_some());
        assert_ne!(trace::<u32>().unwrap(), trace::<u64>().unwrap());
        assert_ne!(trace::<Option<u32>>().unwrap(), trace::<u32>().unwrap());
        assert!(trace::<()>().is_some());
    }
}
