//! A serde adapter that keeps hostile input from driving allocations larger
//! than the frame being decoded, from recursing without bound, and from
//! spinning through more items than the frame can hold.
//!
//! bincode 2 decodes an owned `String` or `Vec<u8>` (`deserialize_string`,
//! `deserialize_byte_buf`) by allocating the length it read from the input
//! before checking that the bytes are there, and serde's collection visitors
//! preallocate from [`SeqAccess::size_hint`] / [`MapAccess::size_hint`] (up to
//! 1 MiB). A length field is also trusted as an item count: a `Vec<()>`
//! claiming `u64::MAX` items loops that many times without reading a byte.
//! And each nested value is a nested call, so a recursive type nested deeply
//! enough overflows the stack. [`GuardSeed`] wraps the deserializer, at every
//! level of nesting, so that:
//!
//! - owned strings and byte buffers are read through bincode's borrowing path
//!   (`deserialize_str`, `deserialize_bytes`), which checks that the bytes are
//!   present before the visitor copies exactly that many;
//! - the items of all length-prefixed sequences and maps together (elements,
//!   and map entries) may not outnumber the frame's bytes: a sequence or map
//!   that would yield one item more fails instead, with "the payload claims
//!   more items than its N bytes can hold";
//! - size hints draw on that budget too: a hint is capped at the items the
//!   budget still allows minus those already promised to the hints of the
//!   sequences and maps being decoded around it (each promise is given back
//!   item by item as they arrive, the rest when the collection ends). So the
//!   hints of nested collections together never exceed the frame's bytes,
//!   and a hostile length field at every level makes serde preallocate no
//!   more than a legitimate frame of the same size could (a hint that only
//!   looked at the items decoded so far gave each of 128 nested levels the
//!   whole budget: about 1 MiB each);
//! - the items of all sequences and maps together may not take more than
//!   [`MEMORY_RATIO`] times the frame's bytes, or [`MEMORY_FLOOR`] if that
//!   is more, in memory, counting each item as the size of its type
//!   (`size_of::<T>()`, for a map entry its key's and its value's): one
//!   item more fails, with "the decoded value would take more than N
//!   bytes". Without it a short encoding of a large type (`None` for an
//!   `Option<[[u64; 32]; 32]>`, one byte on the wire and 8 KiB in a `Vec`)
//!   would let a frame of 16 MiB decode into about 128 GiB; with it, such
//!   a frame decodes into at most 512 MiB. Dense but ordinary values stay
//!   within it: empty strings or vectors and `None`s of small types take
//!   16 to 24 times their bytes, and up to 64 MiB any value decodes (100 000
//!   `None`s of a 72-byte struct take 7 MB, 72 times their bytes). Not
//!   counted: what boxes inside an item point to (a `Box` is a pointer's
//!   size in its container, so a `Vec<Box<Option<[[u64; 32]; 32]>>>`
//!   still decodes 8 KiB per byte: keep such types out of what renderers
//!   send), and vectors' spare capacity (up to as much again while they
//!   grow);
//! - values nest at most [`MAX_DEPTH`] levels deep, a level being a
//!   length-prefixed sequence or map, an enum, a `Some` or a newtype struct
//!   (tuples and structs are not levels: their nesting is fixed by the type,
//!   not by the input); one level more fails, with "the value nests deeper
//!   than 128 levels". A level of a type that holds a lot inline (arrays of
//!   arrays, say) takes more stack than a small one, so each level also
//!   checks the stack that is left: under [`STACK_RESERVE`] it fails too,
//!   with "the value nests too deep for the stack left", before the stack
//!   can run out.
//!
//! And when a type asks for a self-describing format (`deserialize_any`,
//! `deserialize_ignored_any`, `deserialize_identifier` outside an enum's
//! variant tag) and bincode refuses, whatever the bytes, the refusal is
//! noted with what the type's visitor expected, so that
//! [`decode`](super::decode) can name the mistake in the types
//! ([`CodecError::NeedsSelfDescribing`](super::CodecError::NeedsSelfDescribing))
//! rather than blame the input. The requests themselves are forwarded:
//! the number deserializer bincode hands a variant tag serves them.
//!
//! Everything else is forwarded unchanged, including borrowed (zero-copy)
//! strings and byte slices.
//!
//! # The item budget and zero-sized items
//!
//! An item that takes at least one byte of the frame has a first byte that
//! no other item starts at (the items nested in it all start after a length
//! prefix inside it), so a legitimate frame of `n` bytes holds at most `n`
//! such items, however they nest. Items that encode as zero bytes — `()`,
//! unit structs, empty tuples and arrays, `PhantomData`, structs made only of
//! such fields — break that argument, and the budget counts them all the
//! same. **This is a limitation: a `Vec<()>` (or a `Vec` of unit structs, or
//! a map of such keys and values) decodes only if the payload has at least as
//! many bytes as all its sequences and maps together hold items**, even
//! though the sender encoded it legitimately. `vec![(); n]` alone encodes as
//! one byte, so it decodes only for `n <= 1`; next to a string of `m` bytes
//! (`m + 2` bytes in all, none of them items), only for `n <= m + 2`.

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;

use serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, Error, Expected, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

/// How many levels deep a decoded value may nest (see the module docs for
/// what counts as a level).
pub(crate) const MAX_DEPTH: usize = 128;

/// The stack a level of nesting must leave free to go one level deeper.
pub(crate) const STACK_RESERVE: usize = 128 * 1024;

/// How many times its frame's bytes the items of a decoded value's
/// sequences and maps may take in memory, besides [`MEMORY_FLOOR`].
pub(crate) const MEMORY_RATIO: usize = 32;

/// What the items of any decoded value may take in memory whatever the
/// frame's length, so that a short frame of large items decodes.
pub(crate) const MEMORY_FLOOR: usize = 64 * 1024 * 1024;

/// The entry point of the adapter: deserializes a `T` through a guarded
/// deserializer whose allocations and item count are bounded by a frame of
/// `budget` bytes, and whose nesting is bounded by [`MAX_DEPTH`].
pub(crate) struct GuardSeed<'s, T> {
    budget: usize,
    /// Set, to what the visitor expected, if a type in `T` asked for a
    /// self-describing format (see [`Limits::self_describing`]).
    wanted_any: &'s Cell<Option<String>>,
    marker: PhantomData<fn() -> T>,
}

impl<'s, T> GuardSeed<'s, T> {
    /// Creates a seed for decoding a `T` from a frame of `budget` bytes;
    /// `wanted_any` is set if the decode fails because a type in `T` needs
    /// a self-describing format.
    pub(crate) fn new(budget: usize, wanted_any: &'s Cell<Option<String>>) -> Self {
        Self {
            budget,
            wanted_any,
            marker: PhantomData,
        }
    }
}

impl<'de, T: serde::Deserialize<'de>> DeserializeSeed<'de> for GuardSeed<'_, T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        let shared = Shared {
            budget: self.budget,
            memory_budget: self.budget.saturating_mul(MEMORY_RATIO).max(MEMORY_FLOOR),
            items: Cell::new(0),
            promised: Cell::new(0),
            memory: Cell::new(0),
            wanted_any: self.wanted_any,
        };
        let limits = Limits {
            shared: &shared,
            depth: 0,
        };
        T::deserialize(limits.guard(deserializer))
    }
}

/// What every [`Guard`] of one decode shares: its budgets and counts.
struct Shared<'a> {
    /// The frame's length in bytes: the most items its sequences and maps
    /// may hold together.
    budget: usize,
    /// The most bytes the items of this decode may take in memory.
    memory_budget: usize,
    /// How many items the sequences and maps of this decode have yielded so
    /// far.
    items: Cell<usize>,
    /// How many items size hints have promised and not yet yielded.
    promised: Cell<usize>,
    /// The bytes the items yielded so far take in memory.
    memory: Cell<usize>,
    /// What the visitor of a type that asked for a self-describing format
    /// expected; read by the caller once the decode failed.
    wanted_any: &'a Cell<Option<String>>,
}

/// The limits of one decode, carried by every [`Guard`] of it: two words,
/// since every value, seed, visitor and access of the decode is wrapped in
/// a guard of its own.
#[derive(Clone, Copy)]
struct Limits<'a> {
    /// The decode's budgets and counts.
    shared: &'a Shared<'a>,
    /// How many levels enclose the wrapped object.
    depth: usize,
}

impl<'a> core::ops::Deref for Limits<'a> {
    type Target = Shared<'a>;

    fn deref(&self) -> &Shared<'a> {
        self.shared
    }
}

impl<'a> Limits<'a> {
    /// Wraps `inner` under these limits.
    fn guard<X>(self, inner: X) -> Guard<'a, X> {
        Guard {
            inner,
            limits: self,
            collection: false,
            hinted: Cell::new(0),
        }
    }

    /// How many more items the budget allows.
    fn items_left(self) -> usize {
        self.budget.saturating_sub(self.items.get())
    }

    /// How many more items a size hint may promise.
    fn hints_left(self) -> usize {
        self.items_left().saturating_sub(self.promised.get())
    }

    /// Notes that bincode refused a type's request for a self-describing
    /// format (`deserialize_any`, `deserialize_ignored_any`,
    /// `deserialize_identifier` outside an enum's variant), if `error` is
    /// that refusal, with what the type expected (`expecting`, made only
    /// then). bincode refuses those whatever the bytes, so the caller can
    /// tell this mistake in the types from bad input. Told apart by
    /// bincode's words, on the error path only.
    fn note_refusal<E: fmt::Display>(self, error: &E, expecting: impl FnOnce() -> String) {
        let text = error.to_string();
        if text.contains("AnyNotSupported") || text.contains("IdentifierNotSupported") {
            self.wanted_any.set(Some(expecting()));
        }
    }
}

/// Wraps one serde object (deserializer, visitor, access or seed) and keeps
/// whatever it hands out wrapped too, so the guard reaches every nested value.
struct Guard<'a, X> {
    inner: X,
    limits: Limits<'a>,
    /// Whether `inner` is the visitor or the access of a length-prefixed
    /// sequence or map (rather than of a tuple or struct, which bincode also
    /// hands out as sequences): such a sequence or map is a level of nesting
    /// and its items count against the budget.
    collection: bool,
    /// Of the items this access's size hint promised, those not yet
    /// yielded.
    hinted: Cell<usize>,
}

impl<'a, X> Guard<'a, X> {
    /// Wraps `other` under the same limits.
    fn wrap<Y>(&self, other: Y) -> Guard<'a, Y> {
        self.limits.guard(other)
    }

    /// Wraps `other` one level deeper, or fails if that is too deep.
    fn nest<Y, E: Error>(&self, other: Y) -> Result<Guard<'a, Y>, E> {
        let depth = self.limits.depth + 1;
        if depth > MAX_DEPTH {
            return Err(E::custom(format_args!(
                "the value nests deeper than {MAX_DEPTH} levels"
            )));
        }
        if stacker::remaining_stack().is_some_and(|left| left < STACK_RESERVE) {
            return Err(E::custom(format_args!(
                "the value nests too deep for the stack left (at level {depth})"
            )));
        }
        Ok(Limits {
            depth,
            ..self.limits
        }
        .guard(other))
    }

    /// Wraps the access a visitor is handed for a sequence or map: one level
    /// deeper, and counting its items, if the visitor is a collection's.
    fn enter<Y, E: Error>(&self, access: Y) -> Result<Guard<'a, Y>, E> {
        if !self.collection {
            return Ok(self.wrap(access));
        }
        let mut access = self.nest(access)?;
        access.collection = true;
        Ok(access)
    }

    /// Counts one item that this access has yielded against the budget, or
    /// fails if the budget is spent.
    fn count<E: Error>(&self) -> Result<(), E> {
        if !self.collection {
            return Ok(());
        }
        if self.hinted.get() > 0 {
            self.hinted.set(self.hinted.get() - 1);
            self.limits.promised.set(self.limits.promised.get() - 1);
        }
        if self.limits.items_left() == 0 {
            return Err(E::custom(format_args!(
                "the payload claims more items than its {} bytes can hold \
                 (an item of a zero-sized type, such as `()`, counts as a byte: see `IpcType`)",
                self.limits.budget
            )));
        }
        self.limits.items.set(self.limits.items.get() + 1);
        Ok(())
    }

    /// Counts the memory an item of type `T` that this access yielded
    /// takes, or fails if that is more than the decode may take.
    fn charge<T, E: Error>(&self) -> Result<(), E> {
        if !self.collection {
            return Ok(());
        }
        let memory = self.limits.memory.get().saturating_add(size_of::<T>());
        let budget = self.limits.memory_budget;
        if memory > budget {
            return Err(E::custom(format_args!(
                "the decoded value would take more than {budget} bytes of memory \
                 ({MEMORY_RATIO} times the payload's {} bytes, or {MEMORY_FLOOR} if that is more)",
                self.limits.budget
            )));
        }
        self.limits.memory.set(memory);
        Ok(())
    }

    /// Caps a size hint at the number of items the budget still allows,
    /// less those promised to other hints, and promises them.
    fn cap(&self, hint: Option<usize>) -> Option<usize> {
        self.release();
        let granted = hint?.min(self.limits.hints_left());
        self.hinted.set(granted);
        self.limits
            .promised
            .set(self.limits.promised.get() + granted);
        Some(granted)
    }

    /// Gives back what this access's size hint promised and did not yield
    /// (the collection ended).
    fn release(&self) {
        let left = self.hinted.replace(0);
        self.limits.promised.set(self.limits.promised.get() - left);
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Guard<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        let deserializer = self.wrap(deserializer);
        self.inner.deserialize(deserializer)
    }
}

/// Forwards `deserialize_*` methods to the inner deserializer, wrapping the
/// visitor.
macro_rules! forward_deserialize {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $name<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let visitor = self.wrap(visitor);
            self.inner.$name($($arg,)* visitor)
        }
    )*};
}

impl<'a, D> Guard<'a, D> {
    /// Forwards a request that bincode may refuse (one for a
    /// self-describing format) with `visitor` wrapped, and notes a refusal
    /// with what the type expected (`expecting`, made only then).
    fn forward_noting_refusal<V, T, E: fmt::Display>(
        self,
        visitor: V,
        expecting: impl FnOnce() -> String,
        forward: impl FnOnce(D, Guard<'a, V>) -> Result<T, E>,
    ) -> Result<T, E> {
        let limits = self.limits;
        let visitor = self.wrap(visitor);
        forward(self.inner, visitor).inspect_err(|e| limits.note_refusal(e, expecting))
    }
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guard<'_, D> {
    type Error = D::Error;

    // Forwarded (bincode refuses them, but the number deserializer it hands
    // an enum's variant tag may serve them), and the refusal noted.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        // Only types that do not suit bincode ask: the text costs nothing
        // to the others.
        let expecting = (&visitor as &dyn Expected).to_string();
        self.forward_noting_refusal(visitor, || expecting, D::deserialize_any)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let expecting = (&visitor as &dyn Expected).to_string();
        self.forward_noting_refusal(visitor, || expecting, D::deserialize_ignored_any)
    }

    // Asked of every enum's variant tag (bincode hands it a number's
    // deserializer, which serves it): the visitor's text is not made
    // unless bincode refused, where a type wants a field's name (a map, as
    // `#[serde(flatten)]` reads one).
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let expecting = || "a field name".into();
        self.forward_noting_refusal(visitor, expecting, D::deserialize_identifier)
    }

    forward_deserialize! {
        deserialize_bool(); deserialize_char();
        deserialize_i8(); deserialize_i16(); deserialize_i32(); deserialize_i64(); deserialize_i128();
        deserialize_u8(); deserialize_u16(); deserialize_u32(); deserialize_u64(); deserialize_u128();
        deserialize_f32(); deserialize_f64();
        deserialize_str(); deserialize_bytes();
        deserialize_option(); deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
    }

    // Length-prefixed sequences and maps: their visitors are marked, so that
    // the accesses they are handed nest a level deeper and count their items.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let mut visitor = self.wrap(visitor);
        visitor.collection = true;
        self.inner.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let mut visitor = self.wrap(visitor);
        visitor.collection = true;
        self.inner.deserialize_map(visitor)
    }

    // Read owned strings and byte buffers by borrowing them, so bincode
    // checks that the bytes are there before anything is allocated; the
    // visitor then copies exactly those bytes.
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.deserialize_bytes(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Forwards `visit_*` methods that carry a plain value to the inner visitor.
macro_rules! forward_visit {
    ($($name:ident($($v:ident: $ty:ty)?);)*) => {$(
        fn $name<E: Error>(self $(, $v: $ty)?) -> Result<V::Value, E> {
            self.inner.$name($($v)?)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Guard<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(v: bool); visit_char(v: char); visit_f32(v: f32); visit_f64(v: f64);
        visit_i8(v: i8); visit_i16(v: i16); visit_i32(v: i32); visit_i64(v: i64);
        visit_i128(v: i128); visit_u8(v: u8); visit_u16(v: u16); visit_u32(v: u32);
        visit_u64(v: u64); visit_u128(v: u128);
        visit_str(v: &str); visit_borrowed_str(v: &'de str); visit_string(v: String);
        visit_bytes(v: &[u8]); visit_borrowed_bytes(v: &'de [u8]); visit_byte_buf(v: Vec<u8>);
        visit_none(); visit_unit();
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        let deserializer = self.nest(deserializer)?;
        self.inner.visit_some(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        let deserializer = self.nest(deserializer)?;
        self.inner.visit_newtype_struct(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let seq = self.enter(seq)?;
        self.inner.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let map = self.enter(map)?;
        self.inner.visit_map(map)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        let data = self.nest(data)?;
        self.inner.visit_enum(data)
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Guard<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let seed = self.wrap(seed);
        let element = self.inner.next_element_seed(seed)?;
        if element.is_some() {
            self.count()?;
            self.charge::<T::Value, _>()?;
        } else {
            self.release();
        }
        Ok(element)
    }

    fn size_hint(&self) -> Option<usize> {
        self.cap(self.inner.size_hint())
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Guard<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = self.wrap(seed);
        let key = self.inner.next_key_seed(seed)?;
        if key.is_some() {
            self.count()?;
            self.charge::<K::Value, _>()?;
        } else {
            self.release();
        }
        Ok(key)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap(seed);
        let value = self.inner.next_value_seed(seed)?;
        self.charge::<T::Value, _>()?;
        Ok(value)
    }

    fn size_hint(&self) -> Option<usize> {
        self.cap(self.inner.size_hint())
    }
}

impl<'a, 'de, A: EnumAccess<'de>> EnumAccess<'de> for Guard<'a, A> {
    type Error = A::Error;
    type Variant = Guard<'a, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let seed = self.wrap(seed);
        let (value, variant) = self.inner.variant_seed(seed)?;
        Ok((value, self.limits.guard(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Guard<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.tuple_variant(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.struct_variant(fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::time::{Duration, Instant};

    use proptest::prelude::*;
    use serde::{de::DeserializeOwned, Deserialize, Serialize};
    use serde_bytes::ByteBuf;

    use super::super::{decode, encode_to_vec, CodecError, CONFIG};
    use super::{Cell, GuardSeed, MAX_DEPTH};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Empty,
        Named(String),
        Pair(i32, Vec<u8>),
        Labelled { label: String, tags: Vec<String> },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Inner {
        id: u128,
        shapes: Vec<Shape>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Sample {
        text: String,
        raw: Vec<u8>,
        buf: ByteBuf,
        numbers: Vec<u64>,
        index: HashMap<String, Vec<String>>,
        maybe: Option<String>,
        tuple: (u8, i64, char, bool),
        shape: Shape,
        inner: Option<Inner>,
    }

    fn sample() -> Sample {
        Sample {
            text: "héllo, wörld".into(),
            raw: vec![0, 1, 2, 255],
            buf: ByteBuf::from(vec![9; 300]),
            numbers: vec![0, 1, 250, 251, u64::from(u32::MAX) + 1, u64::MAX],
            index: HashMap::from([
                ("a".to_string(), vec!["x".to_string(), String::new()]),
                (String::new(), vec![]),
            ]),
            maybe: Some("present".into()),
            tuple: (7, -3, '✓', true),
            shape: Shape::Labelled {
                label: "l".into(),
                tags: vec!["t1".into(), "t2".into()],
            },
            inner: Some(Inner {
                id: u128::MAX,
                shapes: vec![
                    Shape::Empty,
                    Shape::Named("n".into()),
                    Shape::Pair(-1, vec![1, 2, 3]),
                ],
            }),
        }
    }

    /// bincode's encoding of a length (or any `u64`) as a varint.
    fn len_prefix(len: u64) -> Vec<u8> {
        encode_to_vec(&len).expect("a u64 encodes")
    }

    /// A payload whose first length field claims `len` but which holds only
    /// `rest` after it.
    fn hostile(len: u64, rest: &[u8]) -> Vec<u8> {
        let mut bytes = len_prefix(len);
        bytes.extend_from_slice(rest);
        bytes
    }

    /// Longer than a refusal takes on any machine however loaded, far
    /// shorter than looping through the items a hostile length claims
    /// (years): not a timing, a way to tell "refused" from "hangs".
    const HANG: Duration = Duration::from_secs(60);

    /// Asserts that decoding `bytes` as a `T` fails, without looping
    /// through what it claims ([`HANG`]).
    fn assert_refused<T: DeserializeOwned + std::fmt::Debug>(bytes: &[u8]) {
        let start = Instant::now();
        let result = decode::<T>(bytes);
        assert!(result.is_err(), "{bytes:?} decoded as {result:?}");
        assert!(start.elapsed() < HANG, "looped through the claimed items");
    }

    #[test]
    fn round_trips_a_varied_value() {
        let value = sample();
        let bytes = encode_to_vec(&value).unwrap();
        assert_eq!(decode::<Sample>(&bytes), Ok(value));
        for shape in [
            Shape::Empty,
            Shape::Named("x".into()),
            Shape::Pair(1, vec![2]),
        ] {
            let bytes = encode_to_vec(&shape).unwrap();
            assert_eq!(decode::<Shape>(&bytes), Ok(shape));
        }
    }

    #[test]
    fn capping_size_hints_still_preallocates_legitimate_vectors() {
        let numbers: Vec<u64> = (0..1000).collect();
        let decoded = decode::<Vec<u64>>(&encode_to_vec(&numbers).unwrap()).unwrap();
        assert_eq!(decoded, numbers);
        assert_eq!(decoded.capacity(), numbers.len());
    }

    #[test]
    fn borrowed_strings_and_bytes_stay_zero_copy() {
        let value = ("borrowed", serde_bytes::Bytes::new(b"raw"), Some("some"));
        let input = encode_to_vec(&value).unwrap();
        let wanted_any = Cell::new(None);
        let seed =
            GuardSeed::<(&str, &serde_bytes::Bytes, Option<&str>)>::new(input.len(), &wanted_any);
        let (decoded, read) = bincode::serde::seed_decode_from_slice(seed, &input, CONFIG).unwrap();
        assert_eq!((decoded, read), (value, input.len()));
        let range = input.as_ptr_range();
        let (text, raw, some) = decoded;
        for ptr in [
            text.as_ptr(),
            raw.as_ptr(),
            some.unwrap_or_default().as_ptr(),
        ] {
            assert!(range.contains(&ptr), "copied instead of borrowed");
        }
    }

    #[test]
    fn refuses_huge_length_fields_in_tiny_payloads() {
        for len in [1 << 40, 1 << 31, u64::MAX] {
            assert_refused::<String>(&hostile(len, b"abc"));
            assert_refused::<Vec<u8>>(&hostile(len, b"abc"));
            assert_refused::<ByteBuf>(&hostile(len, b"abc"));
            assert_refused::<Vec<u64>>(&hostile(len, &[1, 2, 3]));
            assert_refused::<Vec<String>>(&hostile(len, b"\x01a"));
            assert_refused::<HashMap<String, Vec<String>>>(&hostile(len, b"\x01a\x01\x01b"));
            // The same fields nested inside a larger value.
            let mut sample = encode_to_vec(&(String::from("ok"), vec![1u8])).unwrap();
            sample.extend(hostile(len, b"xyz"));
            assert_refused::<Sample>(&sample);
            assert_refused::<Option<Shape>>(&[&[1, 1][..], &hostile(len, b"n")].concat());
        }
    }

    #[test]
    fn reports_truncation_and_trailing_bytes() {
        let bytes = encode_to_vec(&sample()).unwrap();
        assert!(matches!(
            decode::<Sample>(&bytes[..bytes.len() - 1]),
            Err(CodecError::Decode(_))
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            decode::<Sample>(&longer),
            Err(CodecError::TrailingBytes { extra: 1, .. })
        ));
    }

    /// The error `decode` gives for `bytes` as a `T`, refused without
    /// looping through what it claims ([`HANG`]).
    fn decode_error<T: DeserializeOwned + std::fmt::Debug>(bytes: &[u8]) -> String {
        let start = Instant::now();
        let result = decode::<T>(bytes);
        assert!(start.elapsed() < HANG, "looped through the claimed items");
        match result {
            Err(CodecError::Decode(message)) => message,
            other => panic!("{bytes:?} decoded as {other:?}"),
        }
    }

    /// Runs `f` on a thread with a 512 KiB stack (a quarter of a test
    /// thread's), on which decoding 100_000 levels without the depth limit
    /// overflows at once. Decoding `MAX_DEPTH` levels takes about 230 KiB
    /// of stack in a debug build (under 64 KiB in release): the margin is
    /// there for other targets and compilers.
    fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(f)
            .expect("the thread starts")
            .join()
            .expect("the thread does not panic")
    }

    /// A level that holds 4 KiB inline: 128 of them would take more stack
    /// than a tokio worker thread has (2 MiB) in a debug build.
    #[derive(Debug, Serialize, Deserialize)]
    struct Page {
        samples: [[u64; 32]; 16],
        next: Option<Box<Page>>,
    }

    #[test]
    fn a_deep_value_of_large_levels_fails_before_the_stack_runs_out() {
        // 200 pages: 512 zero bytes of samples, then `Some`.
        let mut link = vec![0u8; 512];
        link.push(1);
        let mut bytes = link.repeat(200);
        bytes.push(0);
        let message = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || decode_error::<Page>(&bytes))
            .expect("the thread starts")
            .join()
            .expect("the thread does not panic");
        assert!(
            message.contains("too deep for the stack left")
                || message.contains("deeper than 128 levels"),
            "{message}"
        );
    }

    /// One level per node: an enum.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Tree {
        Leaf,
        Node(Box<Tree>),
    }

    /// Two levels per link: a newtype struct and a `Some`.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Chain(Option<Box<Chain>>);

    /// Two levels per nest: a newtype struct and a sequence.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Nest(Vec<Nest>);

    /// Two levels per nest: a newtype struct and a map.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct MapNest(BTreeMap<u8, MapNest>);

    /// Hand-crafted encodings of the recursive types above, `links` links
    /// deep, built without recursion: one byte per link (a `Tree::Node`
    /// tag, a `Some` tag, a length of 1), then the end of the chain (a
    /// `Tree::Leaf` tag, a `None` tag, a length of 0).
    fn chain_of(links: usize, byte_per_link: &[u8]) -> Vec<u8> {
        let mut bytes = byte_per_link.repeat(links);
        bytes.push(0);
        bytes
    }

    const DEPTH_ERROR: &str = "the value nests deeper than 128 levels";

    #[test]
    fn max_depth_is_128() {
        assert_eq!(MAX_DEPTH, 128);
    }

    #[test]
    fn refuses_values_nested_100_000_deep_without_overflowing_the_stack() {
        on_small_stack(|| {
            let depth = 100_000;
            let message = decode_error::<Tree>(&chain_of(depth, &[1]));
            assert!(message.contains(DEPTH_ERROR), "{message}");
            let message = decode_error::<Chain>(&chain_of(depth, &[1]));
            assert!(message.contains(DEPTH_ERROR), "{message}");
            let message = decode_error::<Nest>(&chain_of(depth, &[1]));
            assert!(message.contains(DEPTH_ERROR), "{message}");
            // A map entry is a length of 1 and a `u8` key.
            let message = decode_error::<MapNest>(&chain_of(depth, &[1, 7]));
            assert!(message.contains(DEPTH_ERROR), "{message}");
            // The depth is counted through every kind of level at once.
            let message =
                decode_error::<Vec<Option<Tree>>>(&[&[1, 1][..], &chain_of(depth, &[1])].concat());
            assert!(message.contains(DEPTH_ERROR), "{message}");
        });
    }

    #[test]
    fn accepts_exactly_max_depth_levels_of_each_kind() {
        on_small_stack(|| {
            // A tree of `n` nodes has `n + 1` enum levels (the leaf is one
            // too); a chain of `n` links has `n + 1` newtype levels and `n`
            // option levels; a nest `n` deep has `n + 1` newtype levels and
            // `n + 1` sequence (or map) levels. So the deepest accepted are
            // 127 nodes (128 levels), 63 links (127 levels: 64 make 129) and
            // 63 nests (128 levels).
            assert_eq!(decode::<Tree>(&chain_of(127, &[1])).map(|_| ()), Ok(()));
            let message = decode_error::<Tree>(&chain_of(128, &[1]));
            assert!(message.contains(DEPTH_ERROR), "{message}");

            assert_eq!(decode::<Chain>(&chain_of(63, &[1])).map(|_| ()), Ok(()));
            let message = decode_error::<Chain>(&chain_of(64, &[1]));
            assert!(message.contains(DEPTH_ERROR), "{message}");

            assert_eq!(decode::<Nest>(&chain_of(63, &[1])).map(|_| ()), Ok(()));
            let message = decode_error::<Nest>(&chain_of(64, &[1]));
            assert!(message.contains(DEPTH_ERROR), "{message}");

            assert_eq!(
                decode::<MapNest>(&chain_of(63, &[1, 7])).map(|_| ()),
                Ok(())
            );
            let message = decode_error::<MapNest>(&chain_of(64, &[1, 7]));
            assert!(message.contains(DEPTH_ERROR), "{message}");
        });
    }

    #[test]
    fn values_nested_100_deep_round_trip() {
        on_small_stack(|| {
            let mut tree = Tree::Leaf;
            let mut chain = Chain(None);
            let mut nest = Nest(vec![]);
            for _ in 0..100 {
                tree = Tree::Node(Box::new(tree));
            }
            for _ in 0..50 {
                chain = Chain(Some(Box::new(chain)));
                nest = Nest(vec![nest]);
            }
            let bytes = encode_to_vec(&tree).unwrap();
            assert_eq!(bytes, chain_of(100, &[1]));
            assert_eq!(decode::<Tree>(&bytes), Ok(tree));
            let bytes = encode_to_vec(&chain).unwrap();
            assert_eq!(decode::<Chain>(&bytes), Ok(chain));
            let bytes = encode_to_vec(&nest).unwrap();
            assert_eq!(decode::<Nest>(&bytes), Ok(nest));
        });
    }

    /// `prefix`, then a length field claiming `len`, then zeros up to
    /// `total` bytes.
    fn padded(prefix: &[u8], len: u64, total: usize) -> Vec<u8> {
        let mut bytes = [prefix, &len_prefix(len)].concat();
        assert!(bytes.len() <= total);
        bytes.resize(total, 0);
        bytes
    }

    #[test]
    fn refuses_more_zero_sized_items_than_payload_bytes_fast() {
        #[derive(Debug, Serialize, Deserialize)]
        struct Unit;

        let ten = "the payload claims more items than its 10 bytes can hold";
        for len in [1 << 28, u64::MAX] {
            let bytes = padded(&[], len, 10);
            for message in [
                decode_error::<Vec<()>>(&bytes),
                decode_error::<Vec<Unit>>(&bytes),
                decode_error::<Vec<((), [u8; 0])>>(&bytes),
                decode_error::<BTreeMap<(), ()>>(&bytes),
                decode_error::<HashMap<(), Unit>>(&bytes),
            ] {
                assert!(message.contains(ten), "{message}");
            }
            // Nested: `Some` of a vector of one vector claiming `len`.
            let message = decode_error::<Option<Vec<Vec<()>>>>(&padded(&[1, 1], len, 11));
            assert!(
                message.contains("more items than its 11 bytes"),
                "{message}"
            );
        }
    }

    #[test]
    fn zero_sized_items_are_limited_to_the_payload_length() {
        // The documented limitation: `vec![(); n]` encodes as one byte, so it
        // decodes alone only up to one item...
        let one = encode_to_vec(&vec![(); 1]).unwrap();
        assert_eq!(decode::<Vec<()>>(&one), Ok(vec![(); 1]));
        let two = encode_to_vec(&vec![(); 2]).unwrap();
        assert_eq!(two.len(), 1);
        let message = decode_error::<Vec<()>>(&two);
        assert!(message.contains("more items than its 1 bytes"), "{message}");

        // ...and in general up to as many items as the payload has bytes;
        // the string's bytes count, not being items.
        for pad in [0, 5, 200] {
            let fits = (vec![(); pad + 2], "x".repeat(pad));
            let bytes = encode_to_vec(&fits).unwrap();
            assert_eq!(bytes.len(), pad + 2);
            assert_eq!(decode::<(Vec<()>, String)>(&bytes), Ok(fits));

            let over = (vec![(); pad + 3], "x".repeat(pad));
            let bytes = encode_to_vec(&over).unwrap();
            let message = decode_error::<(Vec<()>, String)>(&bytes);
            let expected = format!(
                "the payload claims more items than its {} bytes can hold",
                pad + 2
            );
            assert!(message.contains(&expected), "{message}");
        }
    }

    /// A large type (8 KiB) whose `None` encodes as one byte.
    type Sparse = Option<[[u64; 32]; 32]>;

    #[test]
    fn items_may_not_take_more_memory_than_32_times_the_payload_or_64_mib() {
        use super::{MEMORY_FLOOR, MEMORY_RATIO};
        assert_eq!((MEMORY_RATIO, MEMORY_FLOOR), (32, 64 << 20));
        // 10 000 `None`s: 10 003 bytes on the wire, 82 MB in a `Vec`.
        let nones = encode_to_vec(&vec![None::<[[u64; 32]; 32]>; 10_000]).unwrap();
        assert_eq!(nones.len(), 10_003);
        let expected = format!(
            "the decoded value would take more than {MEMORY_FLOOR} bytes of memory \
             (32 times the payload's 10003 bytes, or {MEMORY_FLOOR} if that is more)"
        );
        let message = decode_error::<Vec<Sparse>>(&nones);
        assert!(message.contains(&expected), "{message}");
        // The same in maps, as keys or values, and nested in other
        // collections: the budget is shared.
        let map: Vec<(u16, Sparse)> = (0..10_000).map(|k| (k, None)).collect();
        let bytes = encode_to_vec(&map).unwrap();
        let message = decode_error::<HashMap<u16, Sparse>>(&bytes);
        assert!(message.contains("would take more than"), "{message}");
        let nested = vec![vec![None::<[[u64; 32]; 32]>; 100]; 100];
        let bytes = encode_to_vec(&nested).unwrap();
        let message = decode_error::<Vec<Vec<Sparse>>>(&bytes);
        assert!(message.contains("would take more than"), "{message}");

        // Up to the floor, anything decodes; one item more does not.
        type Huge = Option<[[[u64; 32]; 32]; 8]>;
        let huge = |n: usize| encode_to_vec(&vec![None::<[[[u64; 32]; 32]; 8]>; n]).unwrap();
        let most = MEMORY_FLOOR / size_of::<Huge>();
        assert_eq!(decode::<Vec<Huge>>(&huge(most)).unwrap().len(), most);
        let message = decode_error::<Vec<Huge>>(&huge(most + 1));
        assert!(message.contains("would take more than"), "{message}");

        // Past the floor, 32 times the payload: 3 000 000 `None`s of 40
        // bytes (120 MB) from 3 MB, where 32 times is 96 MB.
        let nones = encode_to_vec(&vec![None::<[u64; 4]>; 3_000_000]).unwrap();
        let budget = nones.len() * 32;
        assert!(budget > MEMORY_FLOOR);
        let message = decode_error::<Vec<Option<[u64; 4]>>>(&nones);
        assert!(
            message.contains(&format!("would take more than {budget} bytes")),
            "{message}"
        );
    }

    #[test]
    fn dense_legitimate_values_stay_within_the_memory_budget() {
        // The densest common encodings, well past the floor: empty strings
        // and vectors (24 bytes for one on the wire), `None`s of small types
        // (16), small integers (8), structs of empty fields.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        struct Note {
            id: u64,
            title: String,
            tags: Vec<String>,
            pinned: Option<u64>,
        }
        let n = 200_000;
        let strings = vec![String::new(); n];
        let bytes = encode_to_vec(&strings).unwrap();
        assert_eq!(decode::<Vec<String>>(&bytes).unwrap(), strings);
        let vecs = vec![Vec::<u64>::new(); n];
        let bytes = encode_to_vec(&vecs).unwrap();
        assert_eq!(decode::<Vec<Vec<u64>>>(&bytes).unwrap(), vecs);
        let nones = vec![None::<u64>; n];
        let bytes = encode_to_vec(&nones).unwrap();
        assert_eq!(decode::<Vec<Option<u64>>>(&bytes).unwrap(), nones);
        let map: HashMap<u32, String> = (0..n as u32).map(|k| (k, String::new())).collect();
        let bytes = encode_to_vec(&map).unwrap();
        assert_eq!(decode::<HashMap<u32, String>>(&bytes).unwrap(), map);
        let notes: Vec<Note> = (0..n as u64)
            .map(|id| Note {
                id: id % 100,
                title: String::new(),
                tags: Vec::new(),
                pinned: None,
            })
            .collect();
        let bytes = encode_to_vec(&notes).unwrap();
        assert_eq!(decode::<Vec<Note>>(&bytes).unwrap(), notes);
        // Sparse rows of a larger type: 72 times their bytes, under the
        // 64 MiB floor.
        let sparse = vec![None::<Note>; 100_000];
        let bytes = encode_to_vec(&sparse).unwrap();
        assert_eq!(decode::<Vec<Option<Note>>>(&bytes).unwrap(), sparse);
    }

    #[test]
    fn the_item_budget_is_shared_by_all_sequences_and_maps() {
        // 7 bytes: two lengths, a length and 4 bytes of text.
        let fits = (vec![(); 3], BTreeMap::from([((), ())]), "abcd");
        let bytes = encode_to_vec(&fits).unwrap();
        assert_eq!(bytes.len(), 7);
        let decoded = decode::<(Vec<()>, BTreeMap<(), ()>, String)>(&bytes).unwrap();
        assert_eq!(
            (&decoded.0, &decoded.1, decoded.2.as_str()),
            (&fits.0, &fits.1, fits.2)
        );

        // Each collection fits on its own, but not both together.
        let over = (vec![(); 7], BTreeMap::from([((), ())]), "abcd");
        let bytes = encode_to_vec(&over).unwrap();
        assert_eq!(bytes.len(), 7);
        let message = decode_error::<(Vec<()>, BTreeMap<(), ()>, String)>(&bytes);
        assert!(message.contains("more items than its 7 bytes"), "{message}");
    }

    #[test]
    fn size_hints_are_capped_at_the_items_left() {
        // Two vectors in 20 bytes: the first takes 4 items, so the second,
        // claiming 2^40, is hinted at most the 16 items left.
        let bytes = padded(&encode_to_vec(&vec![0u8; 4]).unwrap(), 1 << 40, 20);
        /// Fails with the size hint its sequence was handed.
        #[derive(Debug)]
        struct Probe;
        impl<'de> serde::Deserialize<'de> for Probe {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Probe;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a sequence")
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        seq: A,
                    ) -> Result<Probe, A::Error> {
                        let hint = seq.size_hint();
                        Err(serde::de::Error::custom(format_args!("hinted {hint:?}")))
                    }
                }
                d.deserialize_seq(V)
            }
        }
        let message = decode_error::<(Vec<u8>, Probe)>(&bytes);
        assert!(message.contains("hinted Some(16)"), "{message}");
    }

    #[test]
    fn the_size_hints_of_nested_sequences_together_stay_within_the_budget() {
        thread_local! {
            static HINTS: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        /// A sequence of itself: records its hint, then decodes one element.
        #[derive(Debug)]
        struct Nest;
        impl<'de> serde::Deserialize<'de> for Nest {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Nest;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a sequence")
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<Nest, A::Error> {
                        HINTS.with(|h| h.borrow_mut().push(seq.size_hint().unwrap_or(0)));
                        seq.next_element::<Nest>()?;
                        Ok(Nest)
                    }
                }
                d.deserialize_seq(V)
            }
        }
        // 100 levels each claiming 2^32 items, padded to 10 000 bytes.
        let mut bytes = len_prefix(1 << 32).repeat(100);
        bytes.resize(10_000, 0);
        let _ = decode::<Nest>(&bytes);
        let hints = HINTS.with(|h| h.take());
        assert!(hints.len() > 50, "{} levels", hints.len());
        let total: usize = hints.iter().sum();
        assert!(
            total <= 10_000,
            "the hints of {} nested sequences add up to {total} items for 10 000 bytes",
            hints.len()
        );
    }

    /// Types that need a self-describing format fail whatever the bytes,
    /// with an error that names the type and the serde feature, not one
    /// that blames the input.
    #[test]
    fn types_that_need_a_self_describing_format_are_named() {
        #[derive(Debug, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        enum Tagged {
            Circle { r: u32 },
        }
        #[derive(Debug, Serialize, Deserialize)]
        #[serde(untagged)]
        enum Untagged {
            Number(u32),
        }
        #[derive(Debug, Serialize, Deserialize)]
        struct Flat {
            id: u32,
            #[serde(flatten)]
            rest: HashMap<String, u32>,
        }
        fn refused<T: DeserializeOwned + std::fmt::Debug>(bytes: &[u8], expecting: &str) {
            match decode::<T>(bytes) {
                Err(e @ CodecError::NeedsSelfDescribing { .. }) => {
                    let text = e.to_string();
                    let CodecError::NeedsSelfDescribing {
                        type_name,
                        expecting: got,
                    } = e
                    else {
                        unreachable!()
                    };
                    assert_eq!(type_name, std::any::type_name::<T>());
                    assert_eq!(got, expecting);
                    assert!(text.contains("`#[serde(flatten)]`"), "{text}");
                }
                other => panic!("{}: {other:?}", std::any::type_name::<T>()),
            }
        }
        let tagged = encode_to_vec(&Tagged::Circle { r: 2 }).unwrap();
        refused::<Tagged>(&tagged, "internally tagged enum Tagged");
        refused::<(u8, Option<Tagged>)>(&[7, 1, 1, 2], "internally tagged enum Tagged");
        refused::<Untagged>(&encode_to_vec(&Untagged::Number(2)).unwrap(), "any value");
        // A flattened struct does not even encode (its map has no length
        // up front); read as the map it stands for, it asks for field names.
        let flat = Flat {
            id: 1,
            rest: HashMap::new(),
        };
        let e = encode_to_vec(&flat).unwrap_err().to_string();
        assert!(
            e.contains("`#[serde(flatten)]`") && e.contains("length first"),
            "{e}"
        );
        let map: HashMap<String, u32> = [("id".to_string(), 1)].into();
        refused::<Flat>(&encode_to_vec(&map).unwrap(), "a field name");
    }

    /// `deserialize_any` is served where bincode can serve it: an enum
    /// whose variant tag is read that way (to accept a name or an index)
    /// decodes.
    #[test]
    fn a_variant_tag_read_with_deserialize_any_decodes() {
        #[derive(Debug, PartialEq, Serialize)]
        enum Level {
            Low,
            High,
        }
        impl<'de> Deserialize<'de> for Level {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Tag;
                impl<'de> Deserialize<'de> for Tag {
                    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        struct V;
                        impl serde::de::Visitor<'_> for V {
                            type Value = Tag;
                            fn expecting(
                                &self,
                                f: &mut std::fmt::Formatter<'_>,
                            ) -> std::fmt::Result {
                                f.write_str("a level's name or index")
                            }
                            fn visit_u64<E>(self, _: u64) -> Result<Tag, E> {
                                Ok(Tag)
                            }
                        }
                        d.deserialize_any(V)
                    }
                }
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Level;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a level")
                    }
                    fn visit_enum<A: serde::de::EnumAccess<'de>>(
                        self,
                        a: A,
                    ) -> Result<Level, A::Error> {
                        use serde::de::VariantAccess;
                        let (Tag, variant) = a.variant::<Tag>()?;
                        variant.unit_variant()?;
                        Ok(Level::High)
                    }
                }
                d.deserialize_enum("Level", &["Low", "High"], V)
            }
        }
        let bytes = encode_to_vec(&Level::High).unwrap();
        assert_eq!(decode::<Level>(&bytes), Ok(Level::High));
        let _ = Level::Low;
    }

    /// A type that swallows bincode's refusal (a field falling back to its
    /// default) would decode a wrong value from bytes it leaves unread: it
    /// is refused as a type that needs a self-describing format all the
    /// same.
    #[test]
    fn a_refusal_the_type_swallows_still_names_the_type() {
        #[derive(Debug, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        enum Tagged {
            A { n: u8 },
        }
        fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Tagged>, D::Error> {
            Ok(Tagged::deserialize(d).ok())
        }
        #[derive(Debug, Deserialize)]
        struct Lenient {
            #[serde(deserialize_with = "lenient")]
            _tagged: Option<Tagged>,
            _count: u8,
        }
        let e = decode::<Lenient>(&[1, 5, 9]).unwrap_err();
        assert!(
            matches!(&e, CodecError::NeedsSelfDescribing { expecting, .. } if expecting == "internally tagged enum Tagged"),
            "{e:?}"
        );
    }

    /// A field skipped when encoding shifts the others: the error says
    /// that this may be why.
    #[test]
    fn a_field_skipped_when_encoding_is_refused_and_named_as_a_likely_cause() {
        #[derive(Debug, Serialize, Deserialize)]
        struct Sparse {
            #[serde(skip_serializing_if = "Option::is_none")]
            note: Option<String>,
            count: u8,
        }
        // Refused when encoding, naming the field.
        let sparse = Sparse {
            note: None,
            count: 9,
        };
        match encode_to_vec(&sparse).unwrap_err() {
            CodecError::Encode(why) => assert!(
                why.starts_with("field `note` of `Sparse` was skipped when encoding"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
        // What a sender without that check writes: the count alone.
        let bytes = encode_to_vec(&9u8).unwrap();
        let e = decode::<Sparse>(&bytes).unwrap_err();
        assert!(matches!(e, CodecError::Decode(_)), "{e:?}");
        assert!(
            e.to_string()
                .contains("skipped on one side only (`skip_serializing`"),
            "{e}"
        );
    }

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            Just(Shape::Empty),
            any::<String>().prop_map(Shape::Named),
            (any::<i32>(), any::<Vec<u8>>()).prop_map(|(n, v)| Shape::Pair(n, v)),
            (
                any::<String>(),
                prop::collection::vec(any::<String>(), 0..4)
            )
                .prop_map(|(label, tags)| Shape::Labelled { label, tags }),
        ]
    }

    prop_compose! {
        fn arb_sample()(
            text in any::<String>(),
            raw in any::<Vec<u8>>(),
            buf in any::<Vec<u8>>(),
            numbers in any::<Vec<u64>>(),
            index in prop::collection::hash_map(
                any::<String>(), prop::collection::vec(any::<String>(), 0..4), 0..4),
            maybe in any::<Option<String>>(),
            tuple in any::<(u8, i64, char, bool)>(),
            shape in shape(),
            inner in prop::option::of((any::<u128>(), prop::collection::vec(shape(), 0..4))),
        ) -> Sample {
            let inner = inner.map(|(id, shapes)| Inner { id, shapes });
            Sample { text, raw, buf: ByteBuf::from(buf), numbers, index, maybe, tuple, shape, inner }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_values_round_trip(value in arb_sample()) {
            let bytes = encode_to_vec(&value).unwrap();
            prop_assert_eq!(decode::<Sample>(&bytes), Ok(value));
        }

        #[test]
        fn arbitrary_nested_collections_round_trip(
            value in (
                prop::collection::vec(prop::collection::vec(any::<Vec<u8>>(), 0..4), 0..4),
                any::<Vec<Option<()>>>(),
                prop::collection::btree_map(any::<u8>(), any::<Vec<bool>>(), 0..8),
                prop::collection::vec(prop::collection::vec(any::<String>(), 0..4), 0..4),
            )
        ) {
            let bytes = encode_to_vec(&value).unwrap();
            prop_assert_eq!(decode(&bytes), Ok(value));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<Sample>(&bytes);
        }

        #[test]
        fn corrupted_encodings_never_panic(
            value in arb_sample(),
            cut in any::<prop::sample::Index>(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = encode_to_vec(&value).unwrap();
            for (at, byte) in flips {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            let _ = decode::<Sample>(&bytes);
            let _ = decode::<Sample>(&bytes[..cut.index(bytes.len())]);
        }
    }
}
