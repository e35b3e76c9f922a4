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
//! variant of every enum met has been seen. Each place an enum occurs (its
//! path of field, item and variant positions from the top) is explored and
//! recorded apart, so `Patch<String>` and `Patch<u32>` in two fields of one
//! struct are both seen. A value nested in two others of the same type
//! (same name, and same fields for a struct) is recorded as a reference to
//! that type, and made as small as the type allows (`None`, no items, a
//! unit variant or one known to end), so that tracing ends; one level of
//! such nesting is traced in full, so `Wrapper<Wrapper<u8>>` and
//! `Wrapper<Wrapper<String>>` differ.
//!
//! Tracing can fail: a type whose `Deserialize` refuses made-up values
//! (validation with `try_from`, say), asks for a self-describing format
//! (which bincode refuses too), nests deeper than [`MAX_DEPTH`], or needs
//! more than [`MAX_PASSES`] passes or [`MAX_STEPS`] steps. The caller then
//! falls back to the type's name as written, and a debug record says so.
//! The macros trace each argument of a method on its own, so such a type
//! costs only its own comparison by shape.
//! The result depends only on the type and this algorithm, never on
//! addresses, hash seeds or the caller's stack (tracing runs on a stack of
//! its own), so two processes built from the same types agree.

use std::collections::BTreeMap;
use std::fmt;

mod desc;

pub(crate) use desc::{diff, Desc, VariantDesc, MAX_NODES};

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

/// How deep a traced value may nest before tracing gives up.
const MAX_DEPTH: usize = 64;
/// How many times a type may be traced to see every variant of its enums.
const MAX_PASSES: usize = 4096;
/// How many steps all passes together may take (a `[u8; 4096]` takes 4097
/// a pass).
const MAX_STEPS: usize = 2_000_000;
/// The stack tracing runs on, whatever the caller's: the same for main and
/// renderers, so that how deep a type may go does not depend on the thread.
const TRACE_STACK: usize = 32 * 1024 * 1024;
/// The stack a level must leave free to go one deeper: a last resort for
/// types whose values take megabytes of stack (bincode could not decode
/// them either), so that tracing fails instead of overflowing.
const STACK_RESERVE: usize = 1024 * 1024;

/// The shape of `T`'s encoding as a 64-bit hash, or `None` if it cannot be
/// traced (see the module docs). Runs `T`'s `Deserialize` impl on made-up
/// values; a panic in it counts as "cannot be traced".
pub(crate) fn trace<T: DeserializeOwned>() -> Option<u64> {
    let shape = traced::<T>().map(|(state, top)| {
        let mut h = Hash::default();
        state.hash(&top, &mut h, &mut Vec::new());
        h.0
    });
    if shape.is_none() {
        tracing::debug!(
            r#type = std::any::type_name::<T>(),
            "compared by its name at the handshake: its wire shape cannot be traced \
             (its Deserialize refuses made-up values, or the type is too large to trace)"
        );
    }
    shape
}

/// The wire shape of `T` as a tree ([`Desc`]), for a handshake mismatch to
/// name what differs; `None` where [`trace`] gives `None`. At most
/// [`desc::MAX_NODES`] nodes are described, the rest is
/// [`Desc::Skipped`].
pub(crate) fn describe<T: DeserializeOwned>() -> Option<Desc> {
    let (state, top) = traced::<T>()?;
    let mut at = Describing {
        budget: desc::MAX_NODES,
        depth: 0,
        defined: Vec::new(),
    };
    Some(state.describe(&top, &mut at))
}

/// `T` traced until every variant of every enum met has been seen: what
/// was recorded, and the top value. Runs on a stack of its own (see the
/// module docs); a panic in `T`'s `Deserialize` counts as "cannot be
/// traced". Hashing or describing the result runs no user code and
/// recurses no deeper than tracing did.
fn traced<T: DeserializeOwned>() -> Option<(State, Node)> {
    stacker::grow(TRACE_STACK, || {
        std::panic::catch_unwind(traced_here::<T>).ok().flatten()
    })
}

fn traced_here<T: DeserializeOwned>() -> Option<(State, Node)> {
    let mut state = State::default();
    for _ in 0..MAX_PASSES {
        state.open.clear();
        state.built = vec![Vec::new()];
        state.minimal = 0;
        state.steered.clear();
        T::deserialize(Tracer { st: &mut state }).ok()?;
        let top = state.built.pop()?.pop()?;
        if state.enums.values().all(EnumSeen::complete) {
            return Some((state, top));
        }
    }
    None
}

/// Where [`State::describe`] is: the nodes it may still describe, how
/// deep it is, and the enum occurrences it is inside.
struct Describing<'s> {
    budget: usize,
    depth: usize,
    defined: Vec<&'s Site>,
}

/// What was recorded of one value.
#[derive(Debug, Clone, PartialEq)]
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
    Enum(Site),
    /// A value of a type already being traced twice around it: its name.
    Recursive(&'static str),
    /// Not traced: made as small as possible inside a recursive value.
    Skipped,
}

/// An enum type, by its name and variant names.
type EnumType = (&'static str, &'static [&'static str]);

/// One place an enum occurs in the definitions of the types traced: its
/// type, the nearest struct or enum variant around it (`None` at the top),
/// and its position there, through any tuples, options, sequences and maps
/// in between. So `Patch<String>` and `Patch<u32>` in two fields of a
/// struct are two places, but the same field of a struct met twice (as in
/// a tree) is one. Never an address, so that two builds of the same types
/// agree.
type Site = (EnumType, Option<Open>, Vec<u32>);

/// The variants of one enum occurrence seen so far.
#[derive(Debug, Default)]
struct EnumSeen {
    count: usize,
    /// Each variant's content, once seen.
    variants: BTreeMap<u32, Variant>,
    /// Variants chosen in this or an earlier pass (seen, or being seen).
    claimed: Vec<u32>,
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

/// What tells two struct-like types of the same name apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layout {
    Fields(&'static [&'static str]),
    Tuple(usize),
    Newtype,
}

/// A value being traced, innermost last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Open {
    /// A struct, tuple struct or newtype struct.
    Named(&'static str, Layout),
    /// This variant of an enum.
    Variant(EnumType, u32),
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
    /// maps empty, enums take a variant known to end.
    minimal: usize,
    steps: usize,
    enums: BTreeMap<Site, EnumSeen>,
    /// Places whose variant was chosen to reach an enum not complete yet,
    /// in this pass: one value a pass goes that way, the others end.
    steered: Vec<Site>,
    /// For each enum type, a variant known to end (a unit variant if one
    /// has been seen): what a recursive value takes.
    ends: BTreeMap<EnumType, (bool, u32)>,
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
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(Stop);
        }
        Ok(())
    }

    /// How many values like `open` are open around the next one.
    fn repeats(&self, open: Open) -> usize {
        self.open
            .iter()
            .filter(|o| match (o, open) {
                (Open::Variant(a, _), Open::Variant(b, _)) => *a == b,
                (a, b) => **a == b,
            })
            .count()
    }

    /// Opens a value with parts; `recursive` if it is nested in two others
    /// of the same type.
    fn open(&mut self, open: Open) -> Result<bool> {
        self.step()?;
        if self.open.len() >= MAX_DEPTH
            || stacker::remaining_stack().is_some_and(|left| left < STACK_RESERVE)
        {
            return Err(Stop);
        }
        let recursive = open != Open::Anonymous && self.repeats(open) >= 2;
        if recursive {
            self.minimal += 1;
        }
        self.open.push(open);
        self.built.push(Vec::new());
        Ok(recursive)
    }

    /// Closes the innermost value, returning its parts; records `node` made
    /// of them in the value around it, or, for a recursive value, a
    /// reference to its type (`name`).
    fn close(
        &mut self,
        recursive: bool,
        name: &'static str,
        node: impl FnOnce(Vec<Node>) -> Node,
    ) -> Result<Option<Vec<Node>>> {
        self.open.pop();
        let parts = self.built.pop().ok_or(Stop)?;
        if recursive {
            self.minimal -= 1;
            self.leaf(Node::Recursive(name))?;
            return Ok(None);
        }
        if self.minimal > 0 {
            self.leaf(Node::Skipped)?;
            return Ok(None);
        }
        self.built.last_mut().ok_or(Stop)?.push(node(parts.clone()));
        Ok(Some(parts))
    }

    /// Where the next value, an enum of type `ty`, goes: see [`Site`].
    fn site(&self, ty: EnumType) -> Site {
        // `built[j + 1]` holds the parts of `open[j]` made so far, so the
        // next value's position in it is its length.
        let mut path = vec![self.built.last().map_or(0, Vec::len) as u32];
        for j in (0..self.open.len()).rev() {
            if self.open[j] != Open::Anonymous {
                path.reverse();
                return (ty, Some(self.open[j]), path);
            }
            path.push(self.built[j].len() as u32);
        }
        path.reverse();
        (ty, None, path)
    }

    /// The variant to make for an enum at `site`: one not seen there yet,
    /// or one leading to an enum not complete yet, if not inside a
    /// recursive value; otherwise one known to end, or the first not
    /// being made around this value.
    fn choose(&mut self, site: &Site) -> u32 {
        let ty = site.0;
        let count = ty.1.len() as u32;
        let open: Vec<u32> = self
            .open
            .iter()
            .filter_map(|o| match o {
                Open::Variant(t, v) if *t == ty => Some(*v),
                _ => None,
            })
            .collect();
        if self.minimal == 0 && open.len() < 2 {
            let seen = self.enums.entry(site.clone()).or_default();
            seen.count = count as usize;
            if let Some(v) = (0..count).find(|v| !seen.claimed.contains(v)) {
                seen.claimed.push(v);
                return v;
            }
            if !self.steered.contains(site) {
                if let Some(v) = (0..count).find(|v| self.leads_to_unseen(site, *v)) {
                    self.steered.push(site.clone());
                    return v;
                }
            }
        }
        match self.ends.get(&ty) {
            Some((_, v)) if !open.contains(v) => *v,
            _ => (0..count).find(|v| !open.contains(v)).unwrap_or(0),
        }
    }

    /// Notes that variant `v` of `ty` ended; a unit variant is preferred.
    fn ended(&mut self, ty: EnumType, v: u32, unit: bool) {
        let best = self.ends.entry(ty).or_insert((unit, v));
        if unit && !best.0 {
            *best = (true, v);
        }
    }

    /// Whether variant `v` at `site`, as recorded, holds an enum with a
    /// variant not seen yet.
    fn leads_to_unseen(&self, site: &Site, v: u32) -> bool {
        let Some(variant) = self.enums.get(site).and_then(|s| s.variants.get(&v)) else {
            return false;
        };
        self.variant_holds_unseen(variant, &mut Vec::new())
    }

    fn variant_holds_unseen<'s>(
        &'s self,
        variant: &'s Variant,
        visited: &mut Vec<&'s Site>,
    ) -> bool {
        match variant {
            Variant::Unit => false,
            Variant::Newtype(node) => self.holds_unseen(node, visited),
            Variant::Tuple(parts) | Variant::Struct(_, parts) => {
                parts.iter().any(|p| self.holds_unseen(p, visited))
            }
        }
    }

    fn holds_unseen<'s>(&'s self, node: &'s Node, visited: &mut Vec<&'s Site>) -> bool {
        match node {
            Node::Option(inner) | Node::Seq(inner) => self.holds_unseen(inner, visited),
            Node::Map(k, v) => self.holds_unseen(k, visited) || self.holds_unseen(v, visited),
            Node::Tuple(parts) | Node::Struct(_, parts) => {
                parts.iter().any(|p| self.holds_unseen(p, visited))
            }
            Node::Enum(site) => {
                if visited.contains(&site) {
                    return false;
                }
                visited.push(site);
                let Some(seen) = self.enums.get(site) else {
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

    /// Feeds `node` into `h`: the hash of the value's shape. Each enum
    /// occurrence is spelled out the first time it is met and referred to
    /// by number after, so hashing takes as long as what was recorded.
    fn hash<'s>(&'s self, node: &'s Node, h: &mut Hash, defined: &mut Vec<&'s Site>) {
        match node {
            // Bincode writes a `Vec<u8>` and a byte buffer alike.
            Node::Prim("bytes") => {
                h.word("seq");
                h.word("u8");
            }
            Node::Prim(name) => h.word(name),
            Node::Unit => h.word("unit"),
            Node::Option(inner) => {
                h.word("option");
                self.hash(inner, h, defined);
            }
            Node::Seq(inner) => {
                h.word("seq");
                self.hash(inner, h, defined);
            }
            Node::Map(key, value) => {
                h.word("map");
                self.hash(key, h, defined);
                self.hash(value, h, defined);
            }
            Node::Tuple(parts) => {
                h.word("tuple");
                self.hash_all(parts, h, defined);
            }
            Node::Struct(fields, parts) => self.hash_struct(fields, parts, h, defined),
            Node::Recursive(name) => {
                h.word("recursive");
                h.word(name);
            }
            Node::Skipped => h.word("skipped"),
            Node::Enum(site) => {
                if let Some(at) = defined.iter().position(|s| *s == site) {
                    h.word("enum-ref");
                    h.word(&at.to_string());
                    return;
                }
                defined.push(site);
                h.word("enum");
                let names = site.0 .1;
                h.word(&names.len().to_string());
                let seen = self.enums.get(site);
                for (index, name) in names.iter().enumerate() {
                    h.word(name);
                    match seen.and_then(|s| s.variants.get(&(index as u32))) {
                        None => h.word("unseen"),
                        Some(Variant::Unit) => h.word("unit"),
                        Some(Variant::Newtype(inner)) => self.hash(inner, h, defined),
                        Some(Variant::Tuple(parts)) => {
                            h.word("tuple");
                            self.hash_all(parts, h, defined);
                        }
                        Some(Variant::Struct(fields, parts)) => {
                            self.hash_struct(fields, parts, h, defined)
                        }
                    }
                }
            }
        }
    }

    /// `node` as a [`Desc`], spending one of `at.budget` per node, and
    /// [`Desc::Skipped`] past [`desc::MAX_DEPTH`] levels; an enum
    /// occurrence met again inside itself is a reference to its type, as
    /// in [`State::hash`].
    fn describe<'s>(&'s self, node: &'s Node, at: &mut Describing<'s>) -> Desc {
        if at.budget == 0 || at.depth >= desc::MAX_DEPTH {
            return Desc::Skipped;
        }
        at.budget -= 1;
        at.depth += 1;
        let described = self.describe_here(node, at);
        at.depth -= 1;
        described
    }

    fn describe_here<'s>(&'s self, node: &'s Node, at: &mut Describing<'s>) -> Desc {
        let all = |parts: &'s [Node], at: &mut Describing<'s>| -> Vec<Desc> {
            parts.iter().map(|p| self.describe(p, at)).collect()
        };
        match node {
            // Bincode writes a `Vec<u8>` and a byte buffer alike.
            Node::Prim("bytes") => Desc::Seq(Box::new(Desc::Prim("u8".into()))),
            Node::Prim(name) => Desc::Prim(name.to_string()),
            Node::Unit => Desc::Unit,
            Node::Option(inner) => Desc::Option(Box::new(self.describe(inner, at))),
            Node::Seq(inner) => Desc::Seq(Box::new(self.describe(inner, at))),
            Node::Map(key, value) => Desc::Map(
                Box::new(self.describe(key, at)),
                Box::new(self.describe(value, at)),
            ),
            // Elements all alike (an array): described once. Two enums are
            // alike only as the same occurrence, so elements of an array of
            // enums are not (each is a place of its own, see `Site`).
            Node::Tuple(parts) if parts.len() > 1 && parts.iter().all(|p| *p == parts[0]) => {
                Desc::Array(Box::new(self.describe(&parts[0], at)), parts.len() as u32)
            }
            Node::Tuple(parts) => Desc::Tuple(all(parts, at)),
            Node::Struct(fields, parts) => Desc::Struct(self.describe_fields(fields, parts, at)),
            Node::Recursive(name) => Desc::Recursive(name.to_string()),
            Node::Skipped => Desc::Skipped,
            Node::Enum(site) => {
                let (name, variants) = site.0;
                if at.defined.contains(&site) {
                    return Desc::Recursive(name.to_string());
                }
                at.defined.push(site);
                let seen = self.enums.get(site);
                let described = variants
                    .iter()
                    .enumerate()
                    .map(|(index, variant)| {
                        let content = match seen.and_then(|s| s.variants.get(&(index as u32))) {
                            None => VariantDesc::Unseen,
                            Some(Variant::Unit) => VariantDesc::Unit,
                            Some(Variant::Newtype(inner)) => {
                                VariantDesc::Newtype(self.describe(inner, at))
                            }
                            Some(Variant::Tuple(parts)) => VariantDesc::Tuple(all(parts, at)),
                            Some(Variant::Struct(fields, parts)) => {
                                VariantDesc::Struct(self.describe_fields(fields, parts, at))
                            }
                        };
                        (variant.to_string(), content)
                    })
                    .collect();
                at.defined.pop();
                Desc::Enum(name.to_string(), described)
            }
        }
    }

    fn describe_fields<'s>(
        &'s self,
        fields: &[&str],
        parts: &'s [Node],
        at: &mut Describing<'s>,
    ) -> Vec<(String, Desc)> {
        parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let name = fields.get(i).copied().unwrap_or("?").to_string();
                (name, self.describe(part, at))
            })
            .collect()
    }

    fn hash_all<'s>(&'s self, parts: &'s [Node], h: &mut Hash, defined: &mut Vec<&'s Site>) {
        h.word(&parts.len().to_string());
        for part in parts {
            self.hash(part, h, defined);
        }
    }

    fn hash_struct<'s>(
        &'s self,
        fields: &[&str],
        parts: &'s [Node],
        h: &mut Hash,
        defined: &mut Vec<&'s Site>,
    ) {
        h.word("struct");
        h.word(&parts.len().to_string());
        for (i, part) in parts.iter().enumerate() {
            h.word(fields.get(i).copied().unwrap_or("?"));
            self.hash(part, h, defined);
        }
    }
}

/// The fingerprints' FNV-1a over words, each ended by a separator.
struct Hash(u64);

impl Default for Hash {
    fn default() -> Self {
        Hash(crate::contract::FNV_OFFSET)
    }
}

impl Hash {
    fn word(&mut self, word: &str) {
        self.0 = crate::contract::fnv(self.0, word.as_bytes());
    }
}

/// The deserializer that makes up values and records what was asked.
struct Tracer<'a> {
    st: &'a mut State,
}

impl Tracer<'_> {
    /// A value of `len` parts, each traced by `visitor` through a [`Parts`]
    /// access.
    fn parts<'de, V: Visitor<'de>>(
        self,
        open: Open,
        name: &'static str,
        len: usize,
        visitor: V,
        node: impl FnOnce(Vec<Node>) -> Node,
    ) -> Result<V::Value> {
        let recursive = self.st.open(open)?;
        let value = visitor.visit_seq(Parts {
            st: self.st,
            left: len,
        })?;
        self.st.close(recursive, name, node)?;
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
        self.st.close(recursive, "", |mut parts| {
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
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        let recursive = self.st.open(Open::Named(name, Layout::Newtype))?;
        let value = visitor.visit_newtype_struct(Tracer { st: self.st })?;
        // Encoded as its content, and recorded so.
        self.st.close(recursive, name, |mut parts| {
            parts.pop().unwrap_or(Node::Skipped)
        })?;
        Ok(value)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let items = self.items();
        self.parts(Open::Anonymous, "", items, visitor, |mut parts| {
            Node::Seq(Box::new(parts.pop().unwrap_or(Node::Skipped)))
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        self.parts(Open::Anonymous, "", len, visitor, Node::Tuple)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        let open = Open::Named(name, Layout::Tuple(len));
        self.parts(open, name, len, visitor, Node::Tuple)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let entries = self.items();
        let recursive = self.st.open(Open::Anonymous)?;
        let value = visitor.visit_map(Parts {
            st: self.st,
            left: entries * 2,
        })?;
        self.st.close(recursive, "", |mut parts| {
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
        let open = Open::Named(name, Layout::Fields(fields));
        self.parts(open, name, fields.len(), visitor, |parts| {
            Node::Struct(fields, parts)
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let ty = (name, variants);
        let site = self.st.site(ty);
        let variant = self.st.choose(&site);
        let recursive = self.st.open(Open::Variant(ty, variant))?;
        let fresh = self.st.minimal == 0
            && self
                .st
                .enums
                .get(&site)
                .is_some_and(|seen| !seen.variants.contains_key(&variant));
        let value = visitor.visit_enum(Choice {
            st: self.st,
            ty,
            variant,
        })?;
        let recorded_site = site.clone();
        let parts = self
            .st
            .close(recursive, name, move |_| Node::Enum(recorded_site))?;
        self.st.ended(ty, variant, false);
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
            if let (Some(seen), Some(recorded)) = (self.st.enums.get_mut(&site), recorded) {
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
    ty: EnumType,
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
        self.st.ended(self.ty, self.variant, true);
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

    /// Described, the versions of `Transfer` differ where they were
    /// changed, and the diff says where.
    #[test]
    fn a_description_names_the_field_that_changed() {
        let v1 = super::describe::<v1::Transfer>().unwrap();
        assert_eq!(v1.render(), "{from: String, to: String, cents: u64}");
        let retyped = super::describe::<v2_retyped::Transfer>().unwrap();
        assert_eq!(
            super::diff("transfer", &v1, &retyped).as_deref(),
            Some("at `transfer.cents`, main's is `u64` and this renderer's `i64`")
        );
        let swapped = super::describe::<v2_swapped::Transfer>().unwrap();
        assert!(super::diff("transfer", &v1, &swapped)
            .unwrap()
            .contains("the fields are in another order"));
        let renamed = super::describe::<v2_renamed_type::Payment>().unwrap();
        assert_eq!(super::diff("transfer", &v1, &renamed), None);
        // Bytes are a sequence of `u8`, however declared.
        assert_eq!(
            super::describe::<serde_bytes::ByteBuf>(),
            super::describe::<Vec<u8>>()
        );
    }

    /// Arrays are described once per element type, so that one does not
    /// spend the node budget before the fields after it are reached.
    #[test]
    fn an_array_does_not_hide_the_fields_after_it() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Image<C> {
            pixels: [[u8; 32]; 20],
            cents: C,
        }
        let main = super::describe::<Image<u64>>().unwrap();
        assert!(main.nodes() < 10, "{main:?}");
        assert_eq!(main.render(), "{pixels: [[u8; 32]; 20], cents: u64}");
        let here = super::describe::<Image<i64>>().unwrap();
        assert_eq!(
            super::diff("image", &main, &here).as_deref(),
            Some("at `image.cents`, main's is `u64` and this renderer's `i64`")
        );
    }

    /// However deep a type nests, its description stops at `MAX_DEPTH`, so
    /// that main's notes always decode on the renderer (whose decoder
    /// refuses values nested more than 128 levels).
    #[test]
    fn a_deep_type_is_described_to_a_depth_the_renderer_can_decode() {
        // `Option<Vec<` once per `1`.
        macro_rules! nest {
            ($t:ty;) => { $t };
            ($t:ty; 1 $($rest:tt)*) => { nest!(Option<Vec<$t>>; $($rest)*) };
        }
        // 60 levels of options and sequences.
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Deep(nest!(u8; 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1));
        let described = super::describe::<Deep>().unwrap();
        fn depth(d: &super::Desc) -> usize {
            match d {
                super::Desc::Option(inner) | super::Desc::Seq(inner) => 1 + depth(inner),
                super::Desc::Skipped => 0,
                _ => 1,
            }
        }
        assert_eq!(depth(&described), super::desc::MAX_DEPTH);
        let note = crate::contract::ShapeNote {
            line: 0,
            channel: "deep:channel".into(),
            arg_names: vec!["deep".into()],
            args: vec![Some(described.clone())],
            output: Some(described.clone()),
            error: Some(described),
        };
        let wire = crate::codec::encode_to_vec(&vec![note.clone()]).unwrap();
        let back: Vec<crate::contract::ShapeNote> = crate::codec::decode(&wire).unwrap();
        assert_eq!(back, [note]);
    }

    /// Every variant of an enum is described, and a recursive type ends.
    #[test]
    fn enums_and_recursive_types_are_described() {
        let Some(super::Desc::Enum(name, variants)) = super::describe::<Value>() else {
            panic!("not an enum");
        };
        assert_eq!(name, "Value");
        assert_eq!(variants.len(), 10);
        assert!(variants
            .iter()
            .all(|(_, v)| !matches!(v, super::VariantDesc::Unseen)));
        let changed = super::describe::<ValueV2>().unwrap();
        let found = super::diff("value", &super::describe::<Value>().unwrap(), &changed).unwrap();
        assert!(found.starts_with("at `value::J"), "{found}");
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
        // Bincode writes bytes and a `Vec<u8>` alike, so either side may
        // use either.
        let bytes = [1u8, 2, 3];
        assert_eq!(
            crate::codec::encode_to_vec(&crate::Blob::from(bytes.to_vec())).unwrap(),
            crate::codec::encode_to_vec(&bytes.to_vec()).unwrap()
        );
        let blob = trace::<crate::Blob>().unwrap();
        assert_eq!(trace::<serde_bytes::ByteBuf>().unwrap(), blob);
        assert_eq!(trace::<Vec<u8>>().unwrap(), blob);
        assert_ne!(trace::<Vec<u16>>().unwrap(), blob);
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

    /// A generic enum in two places, each checked.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Patch<T> {
        Keep,
        Set(T),
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Update<A, B> {
        name: Patch<A>,
        age: Patch<B>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Wrapper<T>(T);

    #[allow(dead_code)]
    mod db {
        #[derive(serde::Deserialize)]
        pub struct User {
            pub id: u64,
            pub name: String,
        }
    }

    #[allow(dead_code)]
    mod db_v2 {
        #[derive(serde::Deserialize)]
        pub struct User {
            pub name: String,
            pub id: u64,
        }
    }

    #[allow(dead_code)]
    mod api {
        #[derive(serde::Deserialize)]
        pub struct User<Inner> {
            pub display: String,
            pub inner: Inner,
        }
    }

    #[test]
    fn the_same_type_name_in_two_places_is_checked_in_both() {
        assert_ne!(
            trace::<Update<String, u8>>().unwrap(),
            trace::<Update<u32, u8>>().unwrap()
        );
        assert_ne!(
            trace::<(Result<u8, String>, Result<u16, String>)>().unwrap(),
            trace::<(Result<u8, String>, Result<u64, String>)>().unwrap()
        );
        assert_ne!(
            trace::<Wrapper<Wrapper<u8>>>().unwrap(),
            trace::<Wrapper<Wrapper<String>>>().unwrap()
        );
        assert_ne!(
            trace::<Vec<Result<Result<u8, String>, String>>>().unwrap(),
            trace::<Vec<Result<Result<u16, String>, String>>>().unwrap()
        );
        assert_ne!(
            trace::<api::User<db::User>>().unwrap(),
            trace::<api::User<db_v2::User>>().unwrap()
        );
    }

    macro_rules! ast {
        ($($op:ident),*) => {
            #[derive(Deserialize)]
            #[allow(dead_code)]
            enum Ast {
                $($op(Box<Ast>, Box<Ast>),)*
                Num(i64),
                Var(String),
            }
        };
    }
    ast!(A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17, A18, A19);

    macro_rules! nested {
        ($outer:ident: $($v:ident),*) => {
            #[derive(Deserialize)]
            #[allow(dead_code)]
            enum $outer {
                $($v(Inner),)*
            }
        };
    }
    macro_rules! inner {
        ($($v:ident),*) => {
            #[derive(Deserialize)]
            #[allow(dead_code)]
            enum Inner {
                $($v,)*
                Last(u8),
            }
        };
    }
    nested!(Outer: O0, O1, O2, O3, O4, O5, O6, O7, O8, O9, O10, O11, O12, O13, O14, O15, O16, O17,
        O18, O19, O20, O21, O22, O23, O24, O25, O26, O27, O28, O29, O30, O31, O32, O33, O34, O35,
        O36, O37, O38, O39);
    inner!(
        I0, I1, I2, I3, I4, I5, I6, I7, I8, I9, I10, I11, I12, I13, I14, I15, I16, I17, I18, I19,
        I20, I21, I22, I23, I24, I25, I26, I27, I28
    );

    #[test]
    fn large_and_recursive_enums_are_traced() {
        // Twenty binary operators before the leaves: each value made
        // inside a recursive one takes a variant known to end.
        assert!(trace::<Ast>().is_some());
        // 40 variants each holding a 30-variant enum: 1200 to see.
        assert!(trace::<Outer>().is_some());
    }

    /// Nested inline, each level holding four of the one below.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Level0 {
        Z,
        A(u8),
    }
    macro_rules! level {
        ($name:ident, $below:ident) => {
            #[derive(Deserialize)]
            #[allow(dead_code)]
            enum $name {
                Z,
                A(Box<$below>, Box<$below>, Box<$below>, Box<$below>),
            }
        };
    }
    level!(Level1, Level0);
    level!(Level2, Level1);
    level!(Level3, Level2);
    level!(Level4, Level3);
    level!(Level5, Level4);
    level!(Level6, Level5);
    level!(Level7, Level6);
    level!(Level8, Level7);

    #[test]
    fn the_result_does_not_depend_on_the_callers_stack() {
        let here = (trace::<Level8>(), trace::<Tree>(), trace::<Ast>());
        assert!(here.0.is_some());
        let small = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| (trace::<Level8>(), trace::<Tree>(), trace::<Ast>()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(here, small);
    }
}
