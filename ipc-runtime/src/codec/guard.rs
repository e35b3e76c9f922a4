//! A serde adapter that keeps length fields in hostile input from driving
//! allocations larger than the frame being decoded.
//!
//! bincode 2 decodes an owned `String` or `Vec<u8>` (`deserialize_string`,
//! `deserialize_byte_buf`) by allocating the length it read from the input
//! before checking that the bytes are there, and serde's collection visitors
//! preallocate from [`SeqAccess::size_hint`] / [`MapAccess::size_hint`] (up to
//! 1 MiB). [`GuardSeed`] wraps the deserializer, at every level of nesting, so
//! that:
//!
//! - owned strings and byte buffers are read through bincode's borrowing path
//!   (`deserialize_str`, `deserialize_bytes`), which checks that the bytes are
//!   present before the visitor copies exactly that many;
//! - every size hint is capped at the frame's length. Every element of a
//!   length-prefixed sequence or map takes at least one byte of the frame
//!   (unless it is zero-sized, which needs no allocation), so a frame of `n`
//!   bytes never holds more than `n` of them: a hostile length field makes
//!   serde preallocate no more than a legitimate frame of the same size could.
//!
//! Everything else is forwarded unchanged, including borrowed (zero-copy)
//! strings and byte slices.

use core::fmt;
use core::marker::PhantomData;

use serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, Error, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// The entry point of the adapter: deserializes a `T` through a guarded
/// deserializer whose allocations are bounded by a frame of `budget` bytes.
pub(crate) struct GuardSeed<T> {
    budget: usize,
    marker: PhantomData<fn() -> T>,
}

impl<T> GuardSeed<T> {
    /// Creates a seed for decoding a `T` from a frame of `budget` bytes.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            marker: PhantomData,
        }
    }
}

impl<'de, T: serde::Deserialize<'de>> DeserializeSeed<'de> for GuardSeed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize(Guard::new(deserializer, self.budget))
    }
}

/// Wraps one serde object (deserializer, visitor, access or seed) and keeps
/// whatever it hands out wrapped too, so the guard reaches every nested value.
struct Guard<X> {
    inner: X,
    budget: usize,
}

impl<X> Guard<X> {
    fn new(inner: X, budget: usize) -> Self {
        Self { inner, budget }
    }

    /// Wraps `other` with the same budget.
    fn wrap<Y>(&self, other: Y) -> Guard<Y> {
        Guard::new(other, self.budget)
    }

    /// Caps a size hint at the frame's length.
    fn cap(&self, hint: Option<usize>) -> Option<usize> {
        hint.map(|n| n.min(self.budget))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Guard<S> {
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

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guard<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any(); deserialize_bool(); deserialize_char();
        deserialize_i8(); deserialize_i16(); deserialize_i32(); deserialize_i64(); deserialize_i128();
        deserialize_u8(); deserialize_u16(); deserialize_u32(); deserialize_u64(); deserialize_u128();
        deserialize_f32(); deserialize_f64();
        deserialize_str(); deserialize_bytes();
        deserialize_option(); deserialize_unit(); deserialize_seq(); deserialize_map();
        deserialize_identifier(); deserialize_ignored_any();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
    }

    // The point of the guard: read owned strings and byte buffers by
    // borrowing them, so bincode checks that the bytes are there before
    // anything is allocated; the visitor then copies exactly those bytes.
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

impl<'de, V: Visitor<'de>> Visitor<'de> for Guard<V> {
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
        let deserializer = self.wrap(deserializer);
        self.inner.visit_some(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        let deserializer = self.wrap(deserializer);
        self.inner.visit_newtype_struct(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let seq = self.wrap(seq);
        self.inner.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let map = self.wrap(map);
        self.inner.visit_map(map)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        let data = self.wrap(data);
        self.inner.visit_enum(data)
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Guard<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.cap(self.inner.size_hint())
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Guard<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.cap(self.inner.size_hint())
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Guard<A> {
    type Error = A::Error;
    type Variant = Guard<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Guard<A::Variant>), A::Error> {
        let seed = self.wrap(seed);
        let (value, variant) = self.inner.variant_seed(seed)?;
        Ok((value, Guard::new(variant, self.budget)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Guard<A> {
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
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use proptest::prelude::*;
    use serde::{de::DeserializeOwned, Deserialize, Serialize};
    use serde_bytes::ByteBuf;

    use super::super::{decode, encode_to_vec, CodecError, CONFIG};
    use super::GuardSeed;

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

    /// Asserts that decoding `bytes` as a `T` fails, and fails fast.
    fn assert_refused<T: DeserializeOwned + std::fmt::Debug>(bytes: &[u8]) {
        let start = Instant::now();
        let result = decode::<T>(bytes);
        assert!(result.is_err(), "{bytes:?} decoded as {result:?}");
        assert!(start.elapsed() < Duration::from_secs(2), "too slow");
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
        let seed = GuardSeed::<(&str, &serde_bytes::Bytes, Option<&str>)>::new(input.len());
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
